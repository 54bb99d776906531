"""``shard``: a folder tree of images written as tar shards in the WebDataset layout, with their index.

``DST/train/shard-000000.tar`` ... and ``DST/val/...``, each split with its ``index.json`` (``data.shards``
reads them). A sample is ``KEY.jpg`` (the file's own extension and bytes, or the image shrunk with
``--resize``) and ``KEY.cls``, its class number; the key is the sample's place in its split. Each split's images
are dealt to the shards in an order drawn from ``--shuffle-seed``, so that every shard is a random sample of the
classes, and a shard holds about ``--shard-size`` bytes.

Every image is checked as ``verify`` checks it; unreadable ones are reported and left out, other faults only
reported. Shards are written by every core, each to a temporary file renamed when whole, and the index last. A
rerun with the same settings keeps the shards already written and writes the rest; other settings are an error,
as is a DST inside SRC.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagenet_trainer.data.index import build_index, claim_folder, find_split_dirs
from imagenet_trainer.data.shards import INDEX_KIND, INDEX_NAME, read_samples
from imagenet_trainer.errors import UsageError
from imagenet_trainer.files import atomic_write
from imagenet_trainer.processes import worker_pool

DEFAULT_SHARD_SIZE = 256 * 2**20
MEMBER_OVERHEAD = 3 * 512  # per sample: two tar headers and the .cls block
_RECORD = ".shard.json"  # the settings of the run that writes DST (a rerun must match them)


@dataclass(frozen=True)
class ShardJob:
    path: str  # the shard's final path
    files: tuple  # ((source path, label, key), ...)
    resize: int | None
    quality: int


def _image_bytes(src: str, data: bytes, resize: int | None, quality: int) -> tuple[bytes, str]:
    """(bytes, extension) of a sample's image: the file as it is, or shrunk so that its shorter side is ``resize``
    (never enlarged)."""
    ext = os.path.splitext(src)[1].lower().lstrip(".") or "jpg"
    if resize is None:
        return data, ext
    from imagenet_trainer.tools.images import open_upright, shrunk, to_rgb

    img = shrunk(open_upright(io.BytesIO(data), shorter=resize), resize)
    if img is None:
        return data, ext
    out = io.BytesIO()
    to_rgb(img).save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue(), "jpg"


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # the same files give the same shard
    tar.addfile(info, io.BytesIO(data))


def _count(path: str) -> int:
    return sum(1 for _ in read_samples(path))


def write_shard(job: ShardJob) -> tuple[str, int, int, list[dict]]:
    """(path, samples, bytes, problems) of one shard, written unless it is there from an earlier run."""
    from imagenet_trainer.tools.verify import FATAL, check_bytes

    path = Path(job.path)
    if path.exists():
        return job.path, _count(job.path), path.stat().st_size, []
    problems, n = [], 0

    def write(f) -> None:
        nonlocal n
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for src, label, key in job.files:
                try:
                    data = Path(src).read_bytes()
                except OSError as e:
                    problems.append({"path": src, "fault": f"undecodable: cannot read ({e.strerror}); left out"})
                    continue
                _, _, faults = check_bytes(src, data)
                fatal = [x for x in faults if x.startswith(FATAL)]
                problems.extend({"path": src, "fault": x + ("; left out" if x in fatal else "")} for x in faults)
                if fatal:
                    continue
                try:
                    image, ext = _image_bytes(src, data, job.resize, job.quality)
                except Exception as e:  # Pillow's errors, on a file the checks passed
                    problems.append({"path": src, "fault": f"undecodable: {type(e).__name__}: {e}; left out"})
                    continue
                _member(tar, f"{key}.{ext}", image)
                _member(tar, f"{key}.cls", str(label).encode())
                n += 1

    atomic_write(path, write)
    return job.path, n, path.stat().st_size, problems


def _per_shard(files: list[str], shard_size: int, resize: int | None, quality: int, seed: int) -> int:
    """Samples per shard for about ``shard_size`` bytes: from the mean size of up to 200 files (of 32 shrunk ones
    with ``--resize``)."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(files))[:32 if resize else 200]
    sizes = []
    for i in pick:
        try:
            data = Path(files[i]).read_bytes()
            sizes.append(len(_image_bytes(files[i], data, resize, quality)[0]) if resize else len(data))
        except Exception:  # an unreadable file: the writer reports it
            continue
    mean = (sum(sizes) / len(sizes) if sizes else 100_000) + MEMBER_OVERHEAD
    return max(1, int(shard_size // mean))


def shard_dataset(src: str | os.PathLike, dst: str | os.PathLike, shard_size: int = DEFAULT_SHARD_SIZE,
                  shuffle_seed: int = 0, resize: int | None = None, quality: int = 90, workers: int | None = None,
                  progress=None) -> dict:
    """Write ``src``'s train and val splits as shards under ``dst``; returns the report: per split its shards,
    samples and bytes, and the problems found."""
    from imagenet_trainer.tools.images import _check_not_inside

    src, dst = Path(src), Path(dst)
    train_dir, val_dir = find_split_dirs(src, option="")
    _check_not_inside(src, dst, "DST")
    if shard_size < 4096:
        raise UsageError(f"--shard-size {shard_size}: too small; give at least 4k (default 256M)")
    if resize is not None and resize < 8:
        raise UsageError(f"--resize {resize}: too small; use at least 8")
    settings = {"source": str(src.resolve()), "shard_size": shard_size, "shuffle_seed": shuffle_seed,
                "resize": resize, "quality": quality if resize else None}
    claim_folder(dst, f"DST {dst}", "shard", _RECORD, settings)
    train = build_index(train_dir, use_cache=False)
    splits = {"train": train}
    if val_dir is not None:
        splits[val_dir.name if val_dir.name != "validation" else "val"] = build_index(
            val_dir, classes=train.classes, use_cache=False)
    report = {"data": str(src), "shards": str(dst), "classes": len(train.classes), "splits": {}, "problems": []}
    jobs = {}
    for split, index in splits.items():
        files = [index.path(i) for i in range(len(index))]
        order = np.random.default_rng(shuffle_seed).permutation(len(files))
        per = _per_shard(files, shard_size, resize, quality, shuffle_seed)
        (dst / split).mkdir(parents=True, exist_ok=True)
        for s, start in enumerate(range(0, len(order), per)):
            chunk = tuple((files[i], int(index.labels[i]), f"{pos:09d}")
                          for pos, i in enumerate(order[start:start + per], start))
            path = str(dst / split / f"shard-{s:06d}.tar")
            jobs[path] = (split, s, ShardJob(path, chunk, resize, quality))
    done: dict[str, tuple[int, int]] = {}
    with worker_pool(max(1, workers or os.cpu_count() or 1)) as pool:
        futures = [pool.submit(write_shard, job) for _, _, job in jobs.values()]
        for future in as_completed(futures):
            path, n, size, problems = future.result()
            done[path] = (n, size)
            report["problems"] += problems
            if progress:
                progress(len(jobs[path][2].files))
    for split, index in splits.items():
        shards = sorted((s, path) for path, (sp, s, _) in jobs.items() if sp == split)
        shardlist = [{"url": os.path.basename(path), "nsamples": done[path][0]} for _, path in shards]
        total = sum(x["nsamples"] for x in shardlist)
        doc = {"__kind__": INDEX_KIND, "wids_version": 1, "name": split, "shardlist": shardlist,
               "classes": train.classes, "num_classes": len(train.classes), "total": total}
        atomic_write(dst / split / INDEX_NAME, lambda f, d=doc: f.write(json.dumps(d, indent=1).encode()))
        report["splits"][split] = {"shards": len(shardlist), "samples": total,
                                   "bytes": sum(done[p][1] for _, p in shards)}
    report["problems"].sort(key=lambda p: p["path"])
    return report


def parse_size(text: str) -> int:
    """``256M``, ``1G``, ``500k`` or a number of bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except ValueError:
        raise ValueError(f"not a size: {text} (for example 256M or 1G)") from None
