"""``imagenet-trainer shard SRC DST``: write a folder tree of images as tar shards (WebDataset layout) with an index."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from imagenet_trainer.cli.common import add_subparser, jpeg_quality, positive_int, print_json


def _size(text: str) -> int:
    from imagenet_trainer.tools.shard import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(sub) -> None:
    p = add_subparser(sub, "shard", "write a dataset as tar shards (WebDataset layout), for training from disk, HTTP or S3",
                      "Writes DST/train/shard-000000.tar ... and DST/val/..., each split with its index.json\n"
                      "(classes, samples per shard, total). A sample is KEY.jpg and KEY.cls (its class number).\n"
                      "Images are dealt to shards in an order drawn from --shuffle-seed, so that each shard is a\n"
                      "random sample of the classes. Every image is checked as `verify` does; unreadable ones are\n"
                      "reported and left out. Uses every core; each shard is written whole or not at all, and a\n"
                      "rerun with the same settings finishes an interrupted run. Train with --data DST (or its\n"
                      "URL once DST is served or uploaded).")
    p.add_argument("src", help="dataset root holding train/ (and val/, validation/ or test/)")
    p.add_argument("dst", help="output folder (new or empty, or an earlier run's with the same settings)")
    p.add_argument("--shard-size", type=_size, default="256M", help="bytes per shard, about (256M, 1G, ...)")
    p.add_argument("--shuffle-seed", type=int, default=0, help="seed of the order in which images go to shards")
    p.add_argument("--resize", type=positive_int, default=None, metavar="N",
                   help="shrink images so that their shorter side is N px (never enlarges); default: as they are")
    p.add_argument("--quality", type=jpeg_quality, default=90, help="JPEG quality of shrunk images")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.tools.shard import shard_dataset

    with tqdm(unit="img", desc="shard", file=sys.stderr, disable=None) as bar:
        report = shard_dataset(args.src, args.dst, args.shard_size, args.shuffle_seed, args.resize, args.quality,
                               args.workers, progress=bar.update)
    if args.json:
        print_json(report)
    else:
        for p in report["problems"]:
            print(f"  {p['path']}: {p['fault']}")
        for split, s in report["splits"].items():
            print(f"{split}: {s['samples']:,} images in {s['shards']} shards ({s['bytes'] / 2**20:,.0f} MiB)")
        print(f"{len(report['problems'])} problems; train with --data {report['shards']}")
    return 0
