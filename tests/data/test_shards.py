"""Reading tar shards: their index, patterns, pipes, real HTTP and S3 servers, truncated shards, dropped connections."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from imagenet_trainer.data import shards
from imagenet_trainer.data.shards import (SampleIndex, Sample, ShardReadError, Unread, is_shard_data,
                                          load_shard_splits, read_samples)
from imagenet_trainer.errors import UsageError
from imagenet_trainer.tools.shard import shard_dataset


@pytest.fixture
def shard_dir(tiny_tree, tmp_path) -> Path:
    """The tiny tree as shards of about 5 samples: 4 train shards, 2 val shards."""
    shard_dataset(tiny_tree, tmp_path / "shards", shard_size=16384, workers=1)
    return tmp_path / "shards"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(shard_dir):
    """``python -m http.server`` over the shards, in a thread: its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(shard_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_folder_of_shards_reads_as_its_index_says(shard_dir):
    assert is_shard_data(shard_dir) and not is_shard_data(shard_dir.parent / "data")
    train, val = load_shard_splits(str(shard_dir))
    assert train.classes == ["cat", "dog", "fox"] and len(train) == 18 and len(val) == 6
    assert len(train.urls) >= 3
    got = [s for url in train.urls for s in read_samples(url)]
    assert len(got) == 18 and all(isinstance(s, Sample) and s.image[:2] == b"\xff\xd8" for s in got)


def test_a_pattern_finds_the_index_beside_its_shards_or_scans_them(shard_dir, tmp_path, capsys):
    n = len(list((shard_dir / "train").glob("*.tar")))
    pattern = str(shard_dir / "train" / f"shard-{{000000..{n - 1:06d}}}.tar")
    train, val = load_shard_splits(pattern)
    assert len(train) == 18 and val is None and train.classes == ["cat", "dog", "fox"]
    bare = tmp_path / "bare"
    shutil.copytree(shard_dir / "train", bare)
    (bare / "index.json").unlink()
    scanned, _ = load_shard_splits(str(bare / f"shard-{{000000..{n - 1:06d}}}.tar"))
    assert len(scanned) == 18 and scanned.classes == ["0", "1", "2"]
    assert "reading" in capsys.readouterr().err
    again, _ = load_shard_splits(str(bare / f"shard-{{000000..{n - 1:06d}}}.tar"))  # cached: no note
    assert list(again.counts) == list(scanned.counts) and capsys.readouterr().err == ""
    (shard_dir / "train" / "index.json").unlink()  # the val split keeps its index: the lost one is named
    with pytest.raises(UsageError, match=f"^{shard_dir / 'train'}: has no index.json, so its classes are numbers"):
        load_shard_splits(str(shard_dir))


def test_a_part_of_a_shard_and_a_pipe(shard_dir, tmp_path, monkeypatch):
    url = str(sorted((shard_dir / "train").glob("*.tar"))[0])
    whole = list(read_samples(url))
    assert [s.key for s in read_samples(url, 2, 2)] == [s.key for s in whole[2:4]]
    piped = list(read_samples(f"pipe:cat {url}", 1))
    assert [s.image for s in piped] == [s.image for s in whole[1:]]
    monkeypatch.setattr(shards, "BACKOFF", 0.01)
    monkeypatch.setattr(shards, "RETRIES", 2)
    with pytest.raises(ShardReadError, match="pipe:exit 3: the command exited with status 3.*tried 3 times"):
        list(read_samples("pipe:exit 3"))
    flaky = f"pipe:test -e {tmp_path}/again && cat {url} || {{ touch {tmp_path}/again; exit 1; }}"
    assert [s.image for s in read_samples(flaky, 0, len(whole))] == [s.image for s in whole]  # the second try


def test_a_truncated_shard_yields_what_it_lacked(shard_dir, tmp_path):
    url = sorted((shard_dir / "train").glob("*.tar"))[0]
    whole = list(read_samples(str(url)))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(url.read_bytes()[: url.stat().st_size // 2])
    got = list(read_samples(str(cut), 0, len(whole)))
    assert isinstance(got[-1], Unread) and got[-1].first + got[-1].count == len(whole)
    assert all(isinstance(s, Sample) for s in got[:-1]) and len(got) - 1 == got[-1].first >= 1


def test_missing_shards_and_bad_indexes_are_one_line_errors(shard_dir, tmp_path):
    with pytest.raises(ShardReadError, match="no such file"):
        list(read_samples(str(tmp_path / "gone.tar")))
    (tmp_path / "bad" / "train").mkdir(parents=True)
    (tmp_path / "bad" / "train" / "index.json").write_text("{not json")
    with pytest.raises(UsageError, match="not a shard index"):
        load_shard_splits(str(tmp_path / "bad"))
    with pytest.raises(UsageError, match="no shards found"):
        load_shard_splits(str(tmp_path / "nothing.tar").replace(".tar", "/"))


def test_over_http(http_root, shard_dir):
    train, val = load_shard_splits(http_root)
    assert len(train) == 18 and len(val) == 6 and train.urls[0].startswith("http://")
    local = [s.image for url in load_shard_splits(str(shard_dir))[0].urls for s in read_samples(url)]
    assert [s.image for url in train.urls for s in read_samples(url)] == local
    few = SampleIndex.first(train, 7)
    assert len(few) == 7 and few.read(0) == local[0]


def test_over_the_benchmarks_sendfile_server(shard_dir):
    """``benchmarks/serve.py`` (the HTTP shard benchmark's server) sends the bodies that ``http.server`` sends."""
    spec = importlib.util.spec_from_file_location("serve", Path(__file__).parents[2] / "benchmarks" / "serve.py")
    serve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(serve.SendfileHandler, directory=str(shard_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        train, _ = load_shard_splits(f"http://127.0.0.1:{server.server_address[1]}")
        local = [s.image for url in load_shard_splits(str(shard_dir))[0].urls for s in read_samples(url)]
        assert [s.image for url in train.urls for s in read_samples(url)] == local
    finally:
        server.shutdown()
        server.server_close()


class _Dropping(http.server.BaseHTTPRequestHandler):
    """Sends the first ``drops`` answers half-way, then closes the connection (a dropped connection)."""

    body: bytes = b""
    drops = 0
    served = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = type(self)
        cls.served += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(cls.body)))
        self.end_headers()
        if cls.served <= cls.drops:
            self.wfile.write(cls.body[: len(cls.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(cls.body)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(type(self).body)))
        self.end_headers()


@pytest.mark.parametrize("drops", [2, 100])
def test_a_dropped_connection_is_retried_then_named(shard_dir, monkeypatch, drops):
    monkeypatch.setattr(shards, "BACKOFF", 0.01)
    monkeypatch.setattr(shards, "RETRIES", 3)
    tar = sorted((shard_dir / "train").glob("*.tar"))[0]
    handler = type("H", (_Dropping,), {"body": tar.read_bytes(), "drops": drops, "served": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/shard.tar"
    whole = [s.image for s in read_samples(str(tar))]
    try:
        if drops < 3:
            assert [s.image for s in read_samples(url, 0, len(whole))] == whole
        else:
            with pytest.raises(ShardReadError, match="tried 4 times"):
                list(read_samples(url, 0, len(whole)))
    finally:
        server.shutdown()
        server.server_close()


def test_over_s3(shard_dir, monkeypatch):
    """Through a real S3 API server (moto's, over HTTP), with s3fs as a user has it."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_address[1]}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="data")
        for f in shard_dir.rglob("*"):
            if f.is_file() and not f.name.startswith("."):
                s3.upload_file(str(f), "data", f"in1k/{f.relative_to(shard_dir)}")
        train, val = load_shard_splits("s3://data/in1k")
        assert len(train) == 18 and len(val) == 6 and train.urls[0].startswith("s3://data/in1k/train/")
        assert len([s for url in train.urls for s in read_samples(url) if isinstance(s, Sample)]) == 18
        with pytest.raises(ShardReadError, match="no such file"):
            list(read_samples("s3://data/in1k/train/missing.tar"))
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):  # no credentials anywhere
            monkeypatch.delenv(k, raising=False)
        for k, v in {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                     "AWS_EC2_METADATA_DISABLED": "true"}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(shards, "BACKOFF", 10.0)  # none of it is retried: one line at once
        t0 = time.monotonic()
        with pytest.raises(ShardReadError, match=r"^s3://data/in1k/train/index.json: .*AWS_ACCESS_KEY_ID.*FSSPEC_S3_ANON"):
            load_shard_splits("s3://data/in1k")
        with pytest.raises(ShardReadError, match="FSSPEC_S3_ANON"):
            list(read_samples(train.urls[0]))
        assert time.monotonic() - t0 < 5
    finally:
        server.stop()


def test_a_server_that_is_down_is_retried_and_named_not_called_missing(http_root, monkeypatch):
    monkeypatch.setattr(shards, "BACKOFF", 0.01)
    monkeypatch.setattr(shards, "RETRIES", 1)
    with pytest.raises(ShardReadError, match="no such file"):
        list(read_samples(f"{http_root}/train/missing.tar"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ShardReadError, match="tried 2 times"):
        list(read_samples(f"http://127.0.0.1:{closed}/train/shard-000000.tar"))


def test_a_folder_tree_with_a_tar_in_it_is_still_a_folder(tiny_tree, tmp_path):
    (tiny_tree / "train" / "leftover.tar").write_bytes(b"")
    assert not is_shard_data(tiny_tree)
    (tmp_path / "only" / "train").mkdir(parents=True)
    (tmp_path / "only" / "train" / "a.tar").write_bytes(b"")
    assert is_shard_data(tmp_path / "only")


def test_a_damaged_header_is_a_logged_skip_at_once(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(bytes(range(256)) * 400)
    got = list(read_samples(str(junk), 0, 3))
    assert len(got) == 1 and isinstance(got[0], Unread) and got[0].count == 3


def _tar(path: Path, fmt: int, keys: list[str]) -> list[tuple[str, bytes, int]]:
    """A shard written by Python's tarfile in ``fmt``, with a folder entry: each sample's (key, image, label)."""
    import io
    import tarfile

    want = []
    with tarfile.open(path, "w", format=fmt) as tar:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for i, key in enumerate(keys):
            image = bytes([i]) * (700 + 300 * i)  # sizes off the 512-byte blocks
            for ext, data in (("jpg", image), ("cls", str(i % 3).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime = len(data), 1_700_000_000.25  # a fraction: a PAX header in PAX format
                tar.addfile(info, io.BytesIO(data))
            want.append((key, image, i % 3))
    return want


@pytest.mark.parametrize("fmt", ["ustar", "gnu", "pax"])
def test_a_shard_reads_the_same_from_a_file_a_pipe_and_a_server(tmp_path, fmt, monkeypatch):
    """Streams read through the hand-written ustar reader too (tarfile's stream mode copied its buffer on every
    read), PAX headers included (Python's and webdataset's writers add them); a member it does not know (a GNU
    long name) hands the rest of the shard to tarfile."""
    import tarfile

    fallbacks = []
    real = shards._tarfile_members
    monkeypatch.setattr(shards, "_tarfile_members", lambda *a: fallbacks.append(1) or real(*a))

    keys = ["d/a", "d/b", "d/" + "long" * 40, "d/c", "d/e"]
    want = _tar(tmp_path / "s.tar", {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT,
                                     "pax": tarfile.PAX_FORMAT}[fmt], keys if fmt != "ustar" else keys[:2] + keys[3:])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for url in (str(tmp_path / "s.tar"), f"pipe:cat {tmp_path / 's.tar'}",
                    f"http://127.0.0.1:{server.server_address[1]}/s.tar"):
            got = [(s.key, s.image, s.label) for s in read_samples(url)]
            assert got == want, url
            assert [s.key for s in read_samples(url, 2, 2)] == [k for k, _, _ in want[2:4]], url
        assert len(fallbacks) == (6 if fmt == "gnu" else 0)  # GNU: from the long name on, each read of each source
    finally:
        server.shutdown()
        server.server_close()
