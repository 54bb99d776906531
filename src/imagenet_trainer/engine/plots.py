"""Charts of runs, drawn from ``metrics.jsonl``: accuracy, cross-entropy, learning rate and throughput.

The original drew accuracy and loss with gnuplot; these are PNGs. Several runs overlay with a
legend. A run still in progress is drawn as far as it got; training redraws its own charts at the
end of every epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from imagenet_trainer.files import atomic_write
from imagenet_trainer.errors import UsageError

CHARTS = ("accuracy.png", "cross-entropy.png", "lr.png", "throughput.png")


def read_metrics(run_dir: Path) -> list[dict]:
    """The per-epoch records of a run; a half-written last line (a run in progress) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not Path(run_dir).is_dir():
        raise UsageError(f"{run_dir}: no such folder; give a run folder written by `imagenet-trainer train`")
    if not path.is_file():
        raise UsageError(f"{run_dir}: no metrics.jsonl here; give a run folder written by `imagenet-trainer train`")
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    by_epoch = {r["epoch"]: r for r in rows if "epoch" in r}  # a resumed run may repeat an epoch: keep the last
    return [by_epoch[e] for e in sorted(by_epoch)]


def _save(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def plot_runs(run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Draw the four charts for one or more runs into ``out_dir`` (default: the first run's folder)."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # no font-fallback chatter mid-run

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(Path(d), read_metrics(Path(d))) for d in run_dirs]
    out = Path(out_dir) if out_dir else runs[0][0]
    out.mkdir(parents=True, exist_ok=True)
    multi = len(runs) > 1
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    specs = {
        "accuracy.png": ("top-1 / top-5 accuracy (%)", [("train_top1", "train top-1", "--"), ("val_top1", "val top-1", "-"),
                                                        ("train_top5", "train top-5", ":"), ("val_top5", "val top-5", "-.")]),
        "cross-entropy.png": ("cross-entropy loss", [("train_loss", "train", "--"), ("val_loss", "val", "-")]),
        "lr.png": ("learning rate (end of epoch)", [("train_lr", "lr", "-")]),
        "throughput.png": ("training images/s", [("train_images_per_s", "images/s", "-")]),
    }
    written = []
    for name, (ylabel, series) in specs.items():
        fig, ax = plt.subplots(figsize=(7, 4.2), layout="tight")
        for k, (run, rows) in enumerate(runs):
            for key, label, style in series:
                pts = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                tag = f"{run.name}: {label}" if multi else label
                ax.plot(xs, ys, style, marker="o", markersize=3, color=colours[k % len(colours)] if multi else None,
                        label=tag)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        if name == "lr.png" and any(r.get("train_lr", 0) > 0 for _, rows in runs for r in rows):
            ax.set_yscale("log")
        _save(fig, out / name)
        plt.close(fig)
        written.append(out / name)
    return written
