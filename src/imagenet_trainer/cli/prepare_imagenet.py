"""``imagenet-trainer prepare-imagenet``: the ILSVRC-2012 tars to train/<wnid>/ and val/<wnid>/ folders."""

from __future__ import annotations

import sys

from tqdm import tqdm

from imagenet_trainer.cli.common import add_subparser, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "prepare-imagenet", "unpack the ImageNet archives into class folders (offline)",
                      "Unpacks each class's inner tar of --train-tar into OUT/train/<wnid>/ and sorts the images\n"
                      "of --val-tar into OUT/val/<wnid>/ by the ground truth (--devkit, which needs scipy, or\n"
                      "--val-labels LOC_val_solution.csv). Reruns skip finished classes. The counts are checked\n"
                      "against the real set (1000 classes, 1,281,167 train, 50,000 val images).")
    p.add_argument("--train-tar", default=None, help="ILSVRC2012_img_train.tar")
    p.add_argument("--val-tar", default=None, help="ILSVRC2012_img_val.tar")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--devkit", default=None, help="ILSVRC2012_devkit_t12.tar.gz")
    g.add_argument("--val-labels", default=None, help="LOC_val_solution.csv")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.tools.imagenet import prepare_imagenet

    with tqdm(unit="item", desc="prepare-imagenet", file=sys.stderr, disable=None) as bar:
        res = prepare_imagenet(args.out, args.train_tar, args.val_tar, args.devkit, args.val_labels, bar.update)
    if args.json:
        print_json(res)
        return 0
    c = res["counts"]
    print(f"{args.out}: {c['classes']} classes, {c['train']:,} train images, {c['val']:,} val images "
          f"in {c['val_classes']} classes")
    if res.get("unlabeled"):
        print(f"  {len(res['unlabeled'])} val images had no label and were not extracted (first: {res['unlabeled'][0]})")
    if res["differences"]:
        print("differs from the real ILSVRC-2012:")
        for line in res["differences"]:
            print(f"  {line}")
    else:
        print("matches the real ILSVRC-2012 counts")
    return 0
