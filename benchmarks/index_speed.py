"""Time indexing a training folder against torchvision's ImageFolder scan of the same tree, in one run.

    python benchmarks/index_speed.py /tmp/idx --classes 1000 --per-class 320 --out index-speed.json

makes the tree on first use (CLASSES folders of PER_CLASS empty ``.JPEG`` files: only the listing is timed,
so the files need no content), walks it once so that both scans start from a warm file-system cache, then
alternates ``--rounds`` times: our ``build_index`` with no index cache, and torchvision's ``make_dataset`` (what
``ImageFolder`` runs at construction). Last it times loading our cached index. It prints medians and their
ratio, and writes them to ``--out`` as JSON with the machine, the versions, the command, the date and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_tree(train: Path, classes: int, per_class: int) -> None:
    for c in range(classes):
        d = train / f"n{c:08d}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            open(d / f"n{c:08d}_{i}.JPEG", "wb").close()


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="the tree's folder (made under ROOT/train if absent)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--per-class", type=int, default=320)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", help="the JSON to write")
    args = p.parse_args(argv)

    sys.path.insert(0, str(HERE.parent / "src"))
    import torch
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    from imagenet_trainer.bench import environment
    from imagenet_trainer.data.index import build_index
    from imagenet_trainer.files import write_text_atomic

    root = Path(args.root)
    train = root / "train"
    if not train.exists():
        make_tree(train, args.classes, args.per_class)
    os.environ["IMAGENET_TRAINER_CACHE"] = str(root / "cache")
    files = sum(len(f) for _, _, f in os.walk(train))  # warms the file-system cache for both scans

    def torchvision_scan() -> int:
        _, class_to_idx = find_classes(str(train))
        return len(make_dataset(str(train), class_to_idx, extensions=IMG_EXTENSIONS))

    ours, theirs = [], []
    for _ in range(args.rounds):
        t, n = timed(lambda: len(build_index(train, use_cache=False)))
        assert n == files, (n, files)
        ours.append(t)
        t, n = timed(torchvision_scan)
        assert n == files, (n, files)
        theirs.append(t)
    build_index(train)  # writes the cache
    cached, n = timed(lambda: len(build_index(train)))
    assert n == files, (n, files)

    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"benchmark": "index_speed", "commit": commit, **environment(torch.device("cpu")),
              "command": shlex.join(["python", "benchmarks/index_speed.py", *(argv or sys.argv[1:])]),
              "files": files, "classes": len(os.listdir(train)), "rounds": args.rounds,
              "ours_scan_s": [round(t, 3) for t in ours], "torchvision_scan_s": [round(t, 3) for t in theirs],
              "ours_median_s": round(ours_s, 3), "torchvision_median_s": round(theirs_s, 3),
              "ratio": round(theirs_s / ours_s, 3), "cached_load_s": round(cached, 3)}
    print(f"{files:,} files: our scan {ours_s:.2f} s ({files / ours_s:,.0f} files/s), torchvision's ImageFolder "
          f"{theirs_s:.2f} s ({theirs_s / ours_s:.2f}x ours), our cached index {cached:.2f} s (medians of "
          f"{args.rounds})")
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
