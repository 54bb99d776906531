"""Fine-tuning benchmark: do weights pretrained with this tool move accuracy, against random weights, same budget?

    python benchmarks/finetune.py --data /tmp/data/cifar10 --out finetune.json

No published weights reach a machine without a network, so the weights are made here. CIFAR-10's classes are cut
in two halves that share no class and no image: the first five (airplane ... deer) pretrain the network
(``imagenet-trainer train`` with its defaults), the other five (dog ... truck) are the task. On the task, for the
same ``--epochs``, it trains

- from the pretrained model file (``--weights``), with the ``finetune`` recipe and with the default recipe;
- from random weights, with the same two recipes.

Each run is its own process; the JSON holds each run's final val top-1 (the EMA's where there is one), its
seconds and its command. ``--per-class N`` takes the first N train images of each class, for a CPU-sized run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import run_train  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def split_tree(src: Path, dst: Path, classes: list[str], per_class: int | None) -> Path:
    """``dst``/{train,val}/CLASS/ as symlinks into ``src``'s train and val (or test) folders."""
    val = next(d for d in ("val", "validation", "test") if (src / d).is_dir())
    for split, limit in (("train", per_class), (val, None)):
        for c in classes:
            out = dst / ("val" if split == val else "train") / c
            out.mkdir(parents=True)
            for f in sorted((src / split / c).iterdir())[:limit]:
                os.symlink(f.resolve(), out / f.name)
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="CIFAR-10 as JPEG folders: train/ and test/ (or val/)")
    p.add_argument("--out", required=True, help="the JSON to write")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--pretrain-epochs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=5, help="the task's budget, the same for every run")
    p.add_argument("--per-class", type=int, default=None, help="train images per class (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", default="", help="more train options for every run, e.g. '--device cpu'")
    args = p.parse_args(argv)

    src = Path(args.data)
    classes = sorted(d.name for d in (src / "train").iterdir() if d.is_dir())
    half = len(classes) // 2
    extra = args.extra.split()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pre_data = split_tree(src, tmp / "pretrain", classes[:half], args.per_class)
        task = split_tree(src, tmp / "task", classes[half:], args.per_class)
        runs_dir = tmp / "runs"
        runs_dir.mkdir()
        t0 = time.perf_counter()
        pre = run_train(str(pre_data), args.arch, args.pretrain_epochs, args.seed, extra, runs_dir)
        weights = next(runs_dir.glob(f"{args.arch}-{args.pretrain_epochs}-*")) / "model_best.pt"
        if not weights.exists():
            print(f"pretraining failed: {pre['message']}", file=sys.stderr)
            return 1
        runs = []
        for start, recipe in (("pretrained", "finetune"), ("pretrained", "fast"), ("random", "finetune"),
                              ("random", "fast")):
            options = ["--recipe", recipe, *extra] + (["--weights", str(weights)] if start == "pretrained" else [])
            r = run_train(str(task), args.arch, args.epochs, args.seed, options, runs_dir)
            runs.append(r | {"start": start, "recipe": recipe})
            print(f"{start:>10} weights, {recipe:>8} recipe: top-1 {r['top1']}%  ({r['seconds']:.0f} s)",
                  file=sys.stderr)
        result = {"arch": args.arch, "pretrain_classes": classes[:half], "task_classes": classes[half:],
                  "per_class": args.per_class, "pretrain": pre | {"epochs": args.pretrain_epochs},
                  "epochs": args.epochs, "runs": runs, "seconds": round(time.perf_counter() - t0, 1),
                  "date": time.strftime("%Y-%m-%d")}
    tmp_out = Path(args.out).with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=1))
    tmp_out.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
