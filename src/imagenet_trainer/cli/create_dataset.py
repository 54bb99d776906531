"""``imagenet-trainer create-dataset --src S --dst D``: split class folders into train/val, fitted to --dim."""

from __future__ import annotations

import sys

from tqdm import tqdm

from imagenet_trainer.cli.common import add_subparser, jpeg_quality, non_negative_int, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "create-dataset", "split a folder of class folders into train/ and val/",
                      "Each class of SRC/<class>/... (searched recursively, sub-paths kept) is shuffled with\n"
                      "--seed and split by --ratio; a class with 2 or more images always gets a val image.\n"
                      "inner: shorter side to --dim, centre crop; outer: longer side to --dim, padded with grey\n"
                      "--offset. Output is RGB JPEG. SRC is never modified; a DST inside SRC is refused.\n"
                      "Corrupt files are listed and not copied. Reruns skip finished files.")
    p.add_argument("--src", required=True, help="folder of class folders")
    p.add_argument("--dst", required=True, help="output dataset root")
    p.add_argument("--ratio", type=float, default=0.1, help="share of each class that goes to val")
    p.add_argument("--dim", type=positive_int, default=256, help="output side in pixels")
    p.add_argument("--crop", choices=("inner", "outer"), default="inner", help="how to fit the image into dim x dim")
    p.add_argument("--offset", type=non_negative_int, default=0, help="grey value of the padding (outer)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument("--train-dir", default="train", help="name of the train folder")
    p.add_argument("--val-dir", default="val", help="name of the val folder")
    p.add_argument("--quality", type=jpeg_quality, default=95, help="JPEG quality")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.tools.images import create_dataset

    with tqdm(unit="img", desc="create-dataset", file=sys.stderr, disable=None) as bar:
        res = create_dataset(args.src, args.dst, args.ratio, args.dim, args.crop, args.offset, args.seed,
                             args.train_dir, args.val_dir, args.quality, args.workers, bar.update)
    if args.json:
        print_json(res)
        return 0
    print(f"{'class':<24} {'images':>7} {'train':>7} {'val':>6}")
    for row in res["classes"]:
        print(f"{row['class']:<24} {row['images']:>7} {row['train']:>7} {row['val']:>6}")
    for c in res["corrupt"]:
        print(f"  corrupt, not copied: {c['path']}: {c['fault']}")
    print(f"{res['written']} written, {res['done']} done before, {len(res['corrupt'])} corrupt")
    return 0
