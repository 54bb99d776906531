"""``imagenet-trainer plot RUN_DIR...``: accuracy, cross-entropy, LR and throughput charts as PNG."""

from __future__ import annotations

from imagenet_trainer.cli.common import add_subparser


def add_parser(sub) -> None:
    p = add_subparser(sub, "plot", "draw accuracy, loss, LR and throughput charts of runs",
                      "Write accuracy.png, cross-entropy.png, lr.png and throughput.png (train vs val per epoch).\n"
                      "Several runs overlay with a legend; a run still in progress is drawn as far as it got.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (holding metrics.jsonl)")
    p.add_argument("--out", default=None, help="folder for the PNGs (default: the first run's folder)")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.engine.plots import plot_runs

    for path in plot_runs(args.runs, args.out):
        print(path)
    return 0
