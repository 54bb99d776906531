"""``imagenet-trainer verify DATA``: find broken, lying, CMYK and duplicated files and thin classes."""

from __future__ import annotations

import sys

from tqdm import tqdm

from imagenet_trainer.cli.common import add_subparser, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "verify", "check a dataset for files and classes that would hurt training",
                      "Reports undecodable or truncated files, CMYK JPEGs, files whose extension lies about\n"
                      "their format, classes with few images, and exact duplicates across train and val.\n"
                      "--quarantine DIR moves undecodable and truncated files there (keeping their paths);\n"
                      "nothing is ever deleted. Exit code 0 when nothing was found, 1 otherwise.")
    p.add_argument("data", help="dataset root holding train/ (and val/, validation/ or test/)")
    p.add_argument("--min-per-class", type=positive_int, default=10, help="fewer images than this is reported")
    p.add_argument("--quarantine", metavar="DIR", default=None, help="move unreadable files here")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.tools.verify import FATAL, quarantine, verify_dataset

    with tqdm(unit="img", desc="verify", file=sys.stderr, disable=None) as bar:
        report = verify_dataset(args.data, args.min_per_class, args.workers, progress=bar.update)
    if args.quarantine:
        report["quarantined"] = [{"from": a, "to": b} for a, b in quarantine(report, args.data, args.quarantine)]
    if args.json:
        print_json(report)
    else:
        print(f"{report['files']} files in {report['classes']} classes checked")
        for p in report["problems"]:
            print(f"  {p['path']}: {p['fault']}")
        for c in report["small_classes"]:
            print(f"  {c['split']}/{c['class']}: only {c['images']} images")
        for d in report["duplicates"]:
            print(f"  duplicate in train and val: {d['train'][0]} = {d['val'][0]}")
        for q in report.get("quarantined", []):
            print(f"  moved {q['from']} -> {q['to']}")
        fatal = sum(p["fault"].startswith(FATAL) for p in report["problems"])
        print(f"{len(report['problems'])} problems ({fatal} unreadable), {len(report['small_classes'])} small classes, "
              f"{len(report['duplicates'])} train/val duplicates")
    found = report["problems"] or report["small_classes"] or report["duplicates"]
    return 1 if found else 0
