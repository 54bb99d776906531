"""Time building the file index (no cache) and loading it from the cache, on a tree of empty files.

Usage: python benchmarks/index_speed.py DIR CLASSES FILES_PER_CLASS
"""

import os
import sys
import time
from pathlib import Path

from imagenet_trainer.data.index import build_index

root, classes, per = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if not (root / "train").exists():
    for c in range(classes):
        d = root / "train" / f"n{c:08d}"
        d.mkdir(parents=True)
        for i in range(per):
            open(d / f"n{c:08d}_{i}.JPEG", "wb").close()
os.environ["IMAGENET_TRAINER_CACHE"] = str(root / "cache")
t0 = time.perf_counter()
idx = build_index(root / "train")
t1 = time.perf_counter()
again = build_index(root / "train")
t2 = time.perf_counter()
print(f"{len(idx):,} files in {classes} classes: scan {t1 - t0:.2f} s ({len(idx) / (t1 - t0):,.0f} files/s), "
      f"cached load {t2 - t1:.2f} s")
