"""``imagenet-trainer sample-data DIR``: write a built-in synthetic dataset as JPEG folders."""

from __future__ import annotations

import sys

from tqdm import tqdm

from imagenet_trainer.cli.common import add_subparser, non_negative_int, positive_int
from imagenet_trainer.data.sample import KINDS, SampleSpec, write_sample_dataset


def add_parser(sub) -> None:
    p = add_subparser(sub, "sample-data", "write the built-in sample dataset (JPEG folders)",
                      "Write DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg. 'shapes' is a small learnable\n"
                      "set of coloured shapes; 'imagenet-like' has ImageNet's file shape (300-520 px, ~90 KB).\n"
                      "Existing files are kept, so an interrupted run can simply be started again (with the same\n"
                      "options: other options into the same folder are refused, as they would mix two datasets).")
    p.add_argument("dir", help="output folder")
    p.add_argument("--kind", default="shapes", choices=KINDS, help="which dataset")
    p.add_argument("--classes", type=positive_int, default=None, help="number of classes (default 10 shapes, 100 imagenet-like)")
    p.add_argument("--per-class", type=positive_int, default=None, help="train images per class (default 100 shapes, 1300 imagenet-like)")
    p.add_argument("--val-per-class", type=non_negative_int, default=None, help="val images per class (default 20 shapes, 50 imagenet-like)")
    p.add_argument("--size", type=positive_int, default=64, help="typical image side for 'shapes'")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.set_defaults(run=run)


def run(args) -> int:
    big = args.kind == "imagenet-like"
    spec = SampleSpec(kind=args.kind, classes=args.classes or (100 if big else 10),
                      per_class=args.per_class or (1300 if big else 100),
                      val_per_class=args.val_per_class if args.val_per_class is not None else (50 if big else 20),
                      seed=args.seed, size=args.size)
    total = spec.classes * (spec.per_class + spec.val_per_class)
    with tqdm(total=total, unit="img", desc=f"sample-data {args.kind}", file=sys.stderr, disable=None) as bar:
        n, written = write_sample_dataset(args.dir, spec, args.workers, progress=bar.update)
    kept = f", {n - written} of them there from an earlier run" if written < n else ""
    print(f"{args.dir}: {n} images ({spec.classes} classes){kept}")
    return 0
