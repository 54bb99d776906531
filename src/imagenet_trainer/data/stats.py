"""Per-channel mean/std of a training set (``--normalize auto``), estimated from a sample and cached."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex, default_cache_dir


def estimate_mean_std(index: FileIndex, crop_size: int, image_size: int, samples: int = 3000,
                      seed: int = 0, cache_dir: Path | None = None) -> tuple[list[float], list[float]]:
    """Mean and std (0-1 scale) over up to ``samples`` centre-cropped train images; cached by file list."""
    names = index.paths.tobytes() if isinstance(index, FileIndex) else "\n".join(map(index.path, range(len(index)))).encode()
    key = hashlib.sha1(index.identity().encode() + names
                       + f"{crop_size},{image_size},{samples},{seed}".encode()).hexdigest()[:20]
    cache = (cache_dir or default_cache_dir()) / "stats" / f"{key}.json"
    try:
        d = json.loads(cache.read_text())
        return d["mean"], d["std"]
    except (OSError, ValueError, KeyError):
        pass
    ds = ImageFolderDataset(index, Geometry("center", crop_size, image_size))
    pick = np.random.default_rng(seed).permutation(len(index))[:samples]
    s = np.zeros(3)
    s2 = np.zeros(3)
    n = 0
    for i in pick:
        item = ds[int(i)]
        if not isinstance(item, tuple):
            continue
        x = item[0].reshape(-1, 3).astype(np.float64) / 255
        s += x.sum(0)
        s2 += (x * x).sum(0)
        n += len(x)
    mean = s / max(n, 1)
    std = np.sqrt(np.maximum(s2 / max(n, 1) - mean ** 2, 1e-12))
    result = {"mean": mean.round(4).tolist(), "std": std.round(4).tolist()}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, cache)
    except OSError as e:
        print(f"note: could not cache dataset statistics in {cache}: {e.strerror}", file=sys.stderr)
    return result["mean"], result["std"]
