"""``imagenet-trainer resize SRC --size 256 (--out DST | --in-place)``: shrink images, never enlarge."""

from __future__ import annotations

import sys

from tqdm import tqdm

from imagenet_trainer.cli.common import add_subparser, jpeg_quality, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "resize", "shrink images so that the shorter side is at most --size",
                      "Like ImageMagick's -resize '256^>': keeps the aspect ratio and never enlarges. EXIF\n"
                      "orientation is applied. --out mirrors the tree (small files are copied as they are);\n"
                      "--in-place replaces each file atomically. Corrupt files are reported and left alone.\n"
                      "Reruns skip finished files, so an interrupted run is completed by running it again.")
    p.add_argument("src", help="folder of images (searched recursively)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="output folder (mirrors SRC)")
    g.add_argument("--in-place", action="store_true", help="replace each file in SRC atomically")
    p.add_argument("--size", type=positive_int, default=256, help="largest shorter side in pixels")
    p.add_argument("--quality", type=jpeg_quality, default=90, help="JPEG quality of rewritten files")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.tools.images import resize_tree

    with tqdm(unit="img", desc="resize", file=sys.stderr, disable=None) as bar:
        counts = resize_tree(args.src, args.size, args.out, args.in_place, args.quality, args.workers, bar.update)
    if args.json:
        print_json(counts)
    else:
        for c in counts["corrupt"]:
            print(f"  corrupt, left alone: {c['path']}: {c['fault']}")
        print(f"{counts['resized']} resized, {counts['small']} already small, {counts['done']} done before, "
              f"{len(counts['corrupt'])} corrupt")
    return 0
