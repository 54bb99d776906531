"""Tar shards in the WebDataset layout: finding a split's shards, their index, and reading their samples from a
disk, HTTP, S3 (or any fsspec URL) or a command's output.

A shard is a tar file of samples. A sample's members share a key and sit side by side: ``KEY.jpg`` (or another
image extension) and ``KEY.cls``, its class number as text. ``imagenet-trainer shard`` writes them, with
``index.json`` beside each split's shards: a wids shard index (``"__kind__": "wids-shard-index-v1"``, a shard
list of ``{"url", "nsamples"}``, URLs relative to the index) with the class names and the total added. Shards
written by other tools are read too; without an index they are scanned once for their sample counts and
classes, and the result is cached.

``--data`` takes a split's shards as:

- a folder (or a URL prefix: ``https://host/path``, ``s3://bucket/prefix``) that holds ``train/`` and ``val/``,
  each with its shards and ``index.json``;
- a brace pattern of shard files or URLs, ``/data/in21k/train-{000000..000999}.tar`` (train only; ``--val-dir``
  takes the val shards the same ways);
- ``pipe:CMD``: a command that writes one shard to its standard output.

Reading is sequential: each reader opens a shard once and goes through it in order (``read_samples``); the
stream's plan (``data.stream``) decides which samples of which shards each reader takes. A hand-written ustar
parser reads them (``_plain_members``), and Python's ``tarfile`` what it does not know. webdataset's own
pipeline is not used to read them: it deals whole shards to ranks and workers, so ranks get unequal numbers of
samples (distributed training needs the same number of steps on every rank, and validation must count every
image once), while here a reader may start and stop inside a shard at a sample boundary the plan gives.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagenet_trainer.errors import MissingExtra, UsageError, reason

INDEX_NAME = "index.json"
INDEX_KIND = "wids-shard-index-v1"
BUFFER = 1 << 20  # bytes read at a time from a shard
RETRIES = 5  # a dropped connection: tries after the first, waiting BACKOFF x 1, 2, 4, 8, 16 s
BACKOFF = 1.0
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "ppm", "pgm", "bmp", "tif", "tiff")


class ShardReadError(UsageError):
    """A shard could not be read (no such file, or a connection that kept dropping): the message names it."""


@dataclass
class ShardIndex:
    """The shards of one split: ``urls[s]`` holds ``counts[s]`` samples, labelled with ``classes``' positions.

    ``root`` says where the split is, as the user gave it (for messages and cache keys). ``storage_options`` go
    to fsspec for every URL (an S3 endpoint, credentials); ``filesystem`` is an fsspec filesystem a Python user
    gave, which opens every URL instead.
    """

    root: str
    classes: list[str]
    urls: list[str]
    counts: np.ndarray
    storage_options: dict | None = None
    filesystem: object = None
    label_map: np.ndarray | None = field(default=None, repr=False)  # a model's class for each of the shards'

    def __len__(self) -> int:
        return int(self.counts.sum())

    @property
    def starts(self) -> np.ndarray:
        """The number of each shard's first sample in the split (shards in index order)."""
        return np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)

    def path(self, i: int) -> str:
        """Sample ``i`` named as its shard and its place there (for messages)."""
        s = int(np.searchsorted(np.cumsum(self.counts), i, side="right"))
        return f"{self.urls[s]} (sample {i - int(self.starts[s])})"

    def identity(self) -> str:
        """What the run's caches (loader probe, dataset statistics) are keyed by: where the shards are, and which."""
        listed = hashlib.sha1(json.dumps([self.urls, self.counts.tolist()]).encode()).hexdigest()[:12]
        return f"{self.root} {listed}"


@dataclass
class Sample:
    key: str
    image: bytes | None  # None: the sample has no image member
    label: int | None  # None: it has no .cls member
    ext: str = ""


@dataclass
class Unread:
    """Samples a shard promised and did not hold: it ended early (truncated)."""

    url: str
    first: int  # the first sample missing, counted in the shard
    count: int
    why: str


# --------------------------------------------------------------------------- where the data is

def is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def local_path(text: str) -> str:
    return text[len("file://"):] if text.startswith("file://") else text


def is_shard_data(data: str | os.PathLike) -> bool:
    """Whether ``--data`` names shards rather than a folder tree of images."""
    text = str(data)
    if is_url(text) or text.startswith("pipe:") or "{" in text or text.endswith(".tar"):
        return True
    train = Path(local_path(text)) / "train"
    if (train / INDEX_NAME).is_file():
        return True
    if not train.is_dir():
        return False
    entries = list(os.scandir(train))  # shards alone, no class folders (a class's tar left from extraction)
    return any(e.name.endswith(".tar") for e in entries) and not any(
        e.is_dir() and not e.name.startswith(".") for e in entries)


def join(base: str, name: str) -> str:
    """``name`` (a URL or path; relative ones are relative to ``base``, a folder or URL prefix)."""
    if is_url(name) or name.startswith(("pipe:", "/")):
        return name
    return posixpath.join(base, name) if is_url(base) else os.path.join(local_path(base), name)


def expand(pattern: str) -> list[str]:
    """The shard URLs of a brace pattern (``train-{000000..000099}.tar``, ``{a,b}``), in order."""
    from braceexpand import braceexpand

    return list(braceexpand(pattern))


# --------------------------------------------------------------------------- reading

class PipeFailed(OSError):
    """A ``pipe:`` command ended with a non-zero status (a download that failed, say): tried again, as a dropped
    connection is."""


class _Pipe(io.RawIOBase):
    """``pipe:CMD``: the command's standard output as a file; closing it stops the command, and a command that
    fails raises ``PipeFailed``."""

    def __init__(self, command: str):
        self.command = command
        self.proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, bufsize=BUFFER)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.proc.stdout.readinto(b)
        if n == 0 and self.proc.wait() != 0:
            raise PipeFailed(f"the command exited with status {self.proc.returncode}")
        return n

    def close(self) -> None:
        if not self.closed:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdout.close()
            self.proc.wait()
        super().close()


def open_url(url: str, filesystem=None, storage_options: dict | None = None):
    """A binary file reading ``url`` from its start: a local path, ``pipe:CMD``, or an fsspec URL (``https://``
    is streamed; S3 and the other object stores read in large blocks)."""
    if url.startswith("pipe:"):
        return io.BufferedReader(_Pipe(url[len("pipe:"):]), BUFFER)
    if filesystem is not None:
        return filesystem.open(url, "rb")
    if not is_url(url):
        return open(local_path(url), "rb", buffering=BUFFER)
    try:
        import fsspec
    except ImportError:
        raise MissingExtra(f"{url}: reading URLs needs fsspec; pip install 'imagenet-trainer[stream]'") from None
    protocol = url.split("://", 1)[0]
    extra = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}.get(protocol, "stream")
    options = dict(storage_options or {})
    if protocol in ("http", "https"):
        options.setdefault("block_size", 0)  # a stream: plain servers (python -m http.server) take no range requests
    try:
        return fsspec.open(url, "rb", **options).open()
    except ImportError as e:
        raise MissingExtra(f"{url}: {reason(e)}; pip install 'imagenet-trainer[{extra}]'") from None
    except ValueError as e:
        if "protocol" in str(e).lower():
            raise UsageError(f"{url}: {reason(e)}") from None
        raise
    except Exception as e:
        if _no_credentials(e):  # not the network's fault: no try again would find them
            raise ShardReadError(f"{url}: {reason(e)}; {CREDENTIALS.get(extra, 'set the store credentials')}") from None
        raise


# What to do when an object store finds no credentials (fsspec reads FSSPEC_<PROTOCOL>_<OPTION> variables).
CREDENTIALS = {
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); for a public bucket, FSSPEC_S3_ANON=true",
    "gcs": "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS; for a public bucket, "
           "FSSPEC_GCS_TOKEN=anon",
}


def _no_credentials(e: BaseException) -> bool:
    """Whether an object store's client found no credentials (botocore's NoCredentialsError, google-auth's
    DefaultCredentialsError, ...)."""
    return any("Credentials" in t.__name__ for t in type(e).__mro__)


def _split_name(name: str) -> tuple[str, str]:
    """(key, extension) of a member, as WebDataset groups them: the key is the path up to the first dot of the
    file name, the extension the rest, lower case."""
    folder, base = posixpath.split(name)
    stem, dot, ext = base.partition(".")
    return posixpath.join(folder, stem), ext.lower()


def _sample(key: str, parts: dict[str, bytes]) -> Sample:
    ext = next((e for e in IMAGE_EXTS if e in parts), None)
    label = None
    if "cls" in parts:
        try:
            label = int(parts["cls"].strip())
        except ValueError:
            label = None
    return Sample(key, parts.get(ext) if ext else None, label, ext or "")


class _NotPlain(Exception):
    """A member that ``_plain_members`` leaves to tarfile (long names, pax headers, links)."""


def _plain_members(f):
    """(key, extension, read) of each member of a plain ustar file read from ``f`` (a file, or a stream through
    ``_Forward``): ``read()`` gives the member's bytes, and a member not read is skipped over. PAX extended headers
    are followed for the next member's path and size (Python's tarfile and webdataset's writer put one before
    every member whose time has a fraction).

    Written by hand because tarfile's own header parsing took 35 us a member on one core (2 members a sample: 3x
    the open and read of a folder's file), which is 4-5% of a worker's time per ImageNet image. Anything else
    (GNU long names, global PAX headers, links) raises ``_NotPlain``, and the reader goes on from that sample with
    tarfile.
    """
    pax: dict[str, str] = {}
    while True:
        header = f.read(512)
        if not header or header == bytes(512):
            return
        if len(header) < 512:
            raise tarfile.ReadError("unexpected end of data")
        kind = header[156:157]
        if kind not in (b"0", b"\0", b"5", b"x") or header[124] & 0x80:
            raise _NotPlain
        try:
            plain = int(header[148:156].rstrip(b"\0 "), 8) == sum(header[:148]) + 256 + sum(header[156:])
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            plain = False
        if not plain:  # tarfile's checks decide (signed checksums; or a damaged header, its ReadError)
            raise _NotPlain
        if kind == b"x":  # records for the next member: "<length> <key>=<value>\n" ...
            start = f.tell()
            pax = _pax_records(f.read(size))
            f.seek(start + size + -size % 512)
            continue
        name = header[:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar" and header[345]:
            name = header[345:500].split(b"\0", 1)[0] + b"/" + name
        name = name.decode("utf-8", "surrogateescape")
        if pax:
            name, size = pax.get("path", name), int(pax.get("size", size))
            pax = {}
        if kind == b"5":
            continue
        if name.endswith("/"):  # an old-style folder entry, as tarfile reads it
            f.seek(size + -size % 512, 1)
            continue
        start = f.tell()

        def read(size=size):
            data = f.read(size)
            if len(data) < size:
                raise tarfile.ReadError("unexpected end of data")
            return data

        yield (*_split_name(name), read)
        f.seek(start + size + -size % 512)


def _pax_records(data: bytes) -> dict[str, str]:
    """A PAX extended header's records; one that does not parse leaves the shard to tarfile (``_NotPlain``)."""
    out, pos = {}, 0
    try:
        while pos < len(data) and data[pos]:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            key, eq, value = data[space + 1:pos + length - 1].partition(b"=")
            if not eq or length <= 0:
                raise ValueError
            out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            pos += length
    except ValueError:
        raise _NotPlain from None
    if out.get("hdrcharset") or "GNU.sparse.name" in out:  # names not in UTF-8, sparse files: tarfile's
        raise _NotPlain
    return out


class _Forward:
    """A stream (HTTP, a command's output) as ``_plain_members`` reads a file: through a ``BUFFER``-byte buffer, with
    ``tell`` and forward-only ``seek`` (by reading). Written because tarfile's stream mode ("r|") copies the rest of
    its buffer on every read, up to a megabyte three times a sample: 120 us a sample on one core, six times the
    plain reader's 18 us."""

    def __init__(self, f):
        self.f = f if isinstance(f, io.BufferedReader) else io.BufferedReader(f, BUFFER)
        self.pos = 0

    def read(self, size: int) -> bytes:
        data = self.f.read(size)
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        target = self.pos + offset if whence == 1 else offset
        if target < self.pos:
            raise io.UnsupportedOperation("a stream seeks forward only")
        while self.pos < target and self.read(min(target - self.pos, BUFFER)):
            pass
        return self.pos


def _tarfile_members(f, seekable: bool):
    """As ``_plain_members``, through tarfile: any tar, from a file or from a stream that cannot seek."""
    with tarfile.open(fileobj=f, mode="r:" if seekable else "r|", bufsize=BUFFER) as tar:
        for member in tar:
            if member.isfile():
                yield (*_split_name(member.name), tar.extractfile(member).read)
            if seekable:
                tar.members.clear()  # "r:" keeps every member it read; a shard holds thousands


def _tar_samples(f, skip: int, seekable: bool, plain: bool = True):
    """The samples of one open shard, from its ``skip``-th on (the members of skipped samples are not read)."""
    useful = {"cls", *IMAGE_EXTS}
    key, parts, n = None, {}, -1
    members = _tarfile_members(f, seekable) if not plain else _plain_members(f if seekable else _Forward(f))
    for k, ext, read in members:
        if k != key:
            if key is not None and n >= skip:
                yield _sample(key, parts)
            key, parts, n = k, {}, n + 1
        if n >= skip and ext in useful:
            parts[ext] = read()
    if key is not None and n >= skip:
        yield _sample(key, parts)


def _missing(e: BaseException) -> bool:
    """Whether an error says that the file or object is not there. fsspec's HTTP files turn every failure of their
    first request into FileNotFoundError, a refused connection too: only a 404 (or no cause at all, as on a disk)
    means missing."""
    if not isinstance(e, FileNotFoundError):
        return False
    cause = e.__cause__
    code = getattr(cause, "status", None) or (getattr(cause, "response", None) or {}).get("Error", {}).get("Code")
    return cause is None or str(code) in ("404", "NoSuchKey", "NoSuchBucket")


def _transient(e: BaseException) -> bool:
    """Errors that another try may not meet: the network's and the object stores' (aiohttp's, botocore's, the
    OS's), not a refused permission or a file that is a folder."""
    if isinstance(e, (PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(e, (OSError, TimeoutError, ConnectionError, EOFError)):
        return True
    return type(e).__module__.split(".")[0] in ("aiohttp", "botocore", "aiobotocore", "urllib3", "requests",
                                                 "fsspec", "s3fs", "gcsfs", "google", "asyncio")


def read_samples(url: str, first: int = 0, count: int | None = None, filesystem=None,
                 storage_options: dict | None = None):
    """Samples ``first`` .. ``first + count`` of the shard at ``url`` (to its end when ``count`` is None), in order.

    A shard that ends early (truncated) yields one ``Unread`` for the samples it lacked, and the caller logs them
    as skipped. A connection that drops is opened again at the sample it stopped at, after 1, 2, 4 ... s; after
    ``RETRIES`` such tries, ``ShardReadError`` names the URL. A missing file or URL is that error at once.
    """
    done, tries, retries, backoff = 0, 0, RETRIES, BACKOFF
    seekable = not is_url(url) and not url.startswith("pipe:") and filesystem is None
    plain = True
    while count is None or done < count:
        try:
            with open_url(url, filesystem, storage_options) as f:
                for sample in _tar_samples(f, first + done, seekable, plain):
                    yield sample
                    done, tries = done + 1, 0
                    if done == count:  # no look past the last sample asked for: it may be damaged, or far
                        return
            if count is not None and done < count:
                yield Unread(url, first + done, count - done, "the shard ends early")
            return
        except _NotPlain:  # from this sample on, through tarfile
            plain = False
            continue
        except tarfile.ReadError as e:  # a truncated or damaged tar: what is left of it cannot be found
            if count is None:
                print(f"warning: {url}: {reason(e)} after {first + done} samples; the rest is skipped", file=sys.stderr)
                return
            yield Unread(url, first + done, count - done, f"the shard is damaged ({reason(e)})")
            return
        except Exception as e:
            if isinstance(e, ShardReadError):
                raise
            if _missing(e):
                raise ShardReadError(f"{url}: no such file or URL") from None
            if not _transient(e):
                raise ShardReadError(f"{url}: {reason(e)}") from None
            tries += 1
            if tries > retries:
                check = "the command" if url.startswith("pipe:") else "the server and the network"
                raise ShardReadError(f"{url}: {reason(e)} (sample {first + done}; tried {retries + 1} times over "
                                     f"{backoff * (2 ** retries - 1):.0f} s); check {check}") from None
            time.sleep(backoff * 2 ** (tries - 1))


# --------------------------------------------------------------------------- the index

def _read_json(url: str, filesystem=None, storage_options: dict | None = None) -> dict | None:
    """The JSON document at ``url``, or None when there is none."""
    try:
        with open_url(url, filesystem, storage_options) as f:
            text = f.read()
    except (IsADirectoryError, NotADirectoryError):
        return None
    except FileNotFoundError as e:
        if _missing(e):
            return None
        raise ShardReadError(f"{url}: {reason(e.__cause__)}; check the server and the network") from None
    except PermissionError as e:
        raise ShardReadError(f"{url}: {reason(e)}; check that these credentials may read it") from None
    except OSError as e:
        raise ShardReadError(f"{url}: {reason(e)}; check the server and the network") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{url}: not a shard index ({reason(e)}); write one with `imagenet-trainer shard`") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("shardlist"), list):
        raise UsageError(f"{url}: not a shard index (no shardlist); write one with `imagenet-trainer shard`")
    return doc


def index_from_doc(doc: dict, where: str, root: str, storage_options=None, filesystem=None) -> ShardIndex:
    """A ``ShardIndex`` from an index document found at ``where`` (shard URLs are relative to its folder)."""
    base = posixpath.dirname(where) if is_url(where) else os.path.dirname(local_path(where))
    try:
        urls = [join(base, s["url"]) for s in doc["shardlist"]]
        counts = np.array([int(s["nsamples"]) for s in doc["shardlist"]], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{where}: each shard needs a url and nsamples") from None
    classes = doc.get("classes")
    if not classes:
        classes = [str(c) for c in range(int(doc.get("num_classes") or 0))]
    if not urls or not classes:
        raise UsageError(f"{where}: lists no shards or no classes")
    return ShardIndex(root, [str(c) for c in classes], urls, counts, storage_options, filesystem)


def scan_shards(urls: list[str], root: str, storage_options=None, filesystem=None, cache_dir: Path | None = None,
                classes: list[str] | None = None) -> ShardIndex:
    """The index of shards that came without one: every shard read once for its sample count and classes (the
    class names are the class numbers), cached under ``cache_dir`` by the shard list."""
    from imagenet_trainer.data.index import default_cache_dir

    def stamp(url: str) -> list:  # a local shard rewritten under its name is counted again
        try:
            st = os.stat(local_path(url))
            return [st.st_size, st.st_mtime_ns]
        except OSError:
            return []

    key = hashlib.sha1(json.dumps([(u, stamp(u)) for u in urls]).encode()).hexdigest()[:20]
    cache = (cache_dir or default_cache_dir()) / "shards" / f"{key}.json"
    try:
        doc = json.loads(cache.read_text())
        if doc.get("urls") == urls:
            return ShardIndex(root, classes or doc["classes"], urls, np.array(doc["counts"], dtype=np.int64),
                              storage_options, filesystem)
    except (OSError, ValueError, KeyError):
        pass
    print(f"note: {root}: no {INDEX_NAME} beside the shards; reading {len(urls)} shard(s) once to count their "
          "samples (cached)", file=sys.stderr)

    def count(url: str) -> tuple[int, int]:
        n, top = 0, -1
        for s in read_samples(url, filesystem=filesystem, storage_options=storage_options):
            n += 1
            top = max(top, s.label if s.label is not None else -1)
        return n, top

    with ThreadPoolExecutor(min(16, len(urls))) as pool:
        found = list(pool.map(count, urls))
    counts = [n for n, _ in found]
    if classes is None:
        top = max(t for _, t in found)
        if top < 0:
            raise UsageError(f"{root}: no sample has a .cls member (its class number); write the shards with "
                             "`imagenet-trainer shard`")
        classes = [str(c) for c in range(top + 1)]
    from imagenet_trainer.files import atomic_write

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, lambda f: f.write(json.dumps({"urls": urls, "counts": counts, "classes": classes}).encode()))
    except OSError:  # a read-only cache folder only costs another scan
        pass
    return ShardIndex(root, classes, urls, np.array(counts, dtype=np.int64), storage_options, filesystem)


def _split_index(where: str, storage_options=None, filesystem=None, cache_dir=None,
                 classes: list[str] | None = None) -> ShardIndex | None:
    """The shards of one split at ``where``: a pattern, a shard, ``pipe:``, or a folder/prefix holding
    ``index.json`` (or bare ``*.tar`` files, locally); None when a folder/prefix holds neither."""
    if "{" in where or where.endswith(".tar") or where.startswith("pipe:"):
        urls = expand(where) if "{" in where else [where]
        folder = where.rsplit("/", 1)[0] if "/" in where and not where.startswith("pipe:") else None
        doc = _read_json(join(folder, INDEX_NAME), filesystem, storage_options) if folder else None
        if doc is not None:
            index = index_from_doc(doc, join(folder, INDEX_NAME), where, storage_options, filesystem)
            known = dict(zip(index.urls, index.counts))
            if all(u in known for u in urls):
                return ShardIndex(where, index.classes, urls, np.array([known[u] for u in urls], dtype=np.int64),
                                  storage_options, filesystem)
        return scan_shards(urls, where, storage_options, filesystem, cache_dir, classes)
    doc = _read_json(join(where, INDEX_NAME), filesystem, storage_options)
    if doc is not None:
        return index_from_doc(doc, join(where, INDEX_NAME), where, storage_options, filesystem)
    folder = Path(local_path(where))
    if not is_url(where) and folder.is_dir():
        tars = sorted(str(p) for p in folder.glob("*.tar"))
        if tars:
            return scan_shards(tars, where, storage_options, filesystem, cache_dir, classes)
    return None


def load_shard_splits(data: str, val_dir: str | None = None, storage_options: dict | None = None,
                      filesystem=None, cache_dir: Path | None = None) -> tuple[ShardIndex, ShardIndex | None]:
    """(train, val or None) shards of ``--data`` and ``--val-dir`` (see the module's docstring)."""
    from imagenet_trainer.data.index import VAL_DIR_NAMES

    data = str(data)
    if not is_url(data) and not data.startswith("pipe:"):
        data = os.path.abspath(local_path(data))  # the caches know it wherever the run starts
    if val_dir is not None and not is_url(str(val_dir)) and not str(val_dir).startswith("pipe:"):
        val_dir = os.path.abspath(local_path(str(val_dir)))
    single = "{" in data or data.endswith(".tar") or data.startswith("pipe:")
    train = _split_index(data if single else join(data, "train"), storage_options, filesystem, cache_dir)
    if train is None:
        raise UsageError(f"--data {data}: no shards found (expected {join(data, 'train')}/{INDEX_NAME}, written by "
                         "`imagenet-trainer shard`, or a pattern such as train-{000000..000099}.tar)")
    if val_dir is not None:
        val = _split_index(str(val_dir), storage_options, filesystem, cache_dir, train.classes)
        if val is None:
            raise UsageError(f"--val-dir {val_dir}: no shards found there")
    else:
        val = None
        for name in ([] if single else VAL_DIR_NAMES):
            val = _split_index(join(data, name), storage_options, filesystem, cache_dir, train.classes)
            if val is not None:
                break
    if val is not None and val.classes != train.classes:
        if len(val.classes) > len(train.classes) or val.classes != train.classes[:len(val.classes)]:
            numbered = [ix for ix in (train, val) if all(c.isdigit() for c in ix.classes)]
            if len(numbered) == 1:  # one split was scanned for want of its index: its classes have no names
                other = val if numbered[0] is train else train
                raise UsageError(f"{numbered[0].root}: has no index.json, so its classes are numbers, where "
                                 f"{other.root}'s index names them; put back the index.json that `imagenet-trainer "
                                 "shard` wrote there, or shard again")
            raise UsageError(f"{val.root}: its classes differ from the train shards' ({len(val.classes)} against "
                             f"{len(train.classes)}); shard both splits with one `imagenet-trainer shard` run")
    return train, val


# --------------------------------------------------------------------------- a few samples in memory

@dataclass
class SampleIndex:
    """The first ``n`` samples of a shard split, in memory, read as a folder's files are (``read``, ``path``):
    what needs only a few images (the median image side, the mean and std, the loader probe) takes them here."""

    root: str
    classes: list[str]
    labels: np.ndarray
    names: list[str]
    data: list[bytes]

    def __len__(self) -> int:
        return len(self.data)

    def path(self, i: int) -> str:
        return self.names[i]

    def read(self, i: int, size: int = -1) -> bytes:
        return self.data[i] if size < 0 else self.data[i][:size]

    def identity(self) -> str:
        return self.root

    @classmethod
    def first(cls, index: ShardIndex, n: int) -> "SampleIndex":
        labels, names, data = [], [], []
        for url, count in zip(index.urls, index.counts):
            for s in read_samples(url, 0, int(min(count, n - len(data))), index.filesystem, index.storage_options):
                if isinstance(s, Sample) and s.image is not None and s.label is not None:
                    labels.append(s.label)
                    names.append(f"{url} ({s.key})")
                    data.append(s.image)
            if len(data) >= n:
                break
        return cls(index.root, index.classes, np.array(labels, dtype=np.int64), names, data)
