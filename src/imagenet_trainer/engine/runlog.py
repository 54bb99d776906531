"""The run folder: config.yaml, classes.txt, train.log / test.log, metrics.jsonl, TensorBoard, bad_images.txt.

Only rank 0 writes. Rewrites of existing files are atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

from imagenet_trainer.files import append_text, check_writable, remove_stale_temps, write_text_atomic

LOG_HEADER = "epoch\ttop1_accuracy\ttop5_accuracy\tloss\n"
PLOT_EVERY_S = 30.0  # charts are redrawn at most this often during a run, and always at its end


def log(msg: str) -> None:
    """A line of the run's progress on stderr (stdout is kept for results)."""
    print(msg, file=sys.stderr, flush=True)


def _append(path: Path, text: str) -> None:
    append_text(path, text)


def _rewrite(path: Path, text: str) -> None:
    write_text_atomic(path, text)


class RunLog:
    def __init__(self, run_dir: Path, enabled: bool = True):
        self.dir = Path(run_dir)
        self.enabled = enabled
        self._tb = None
        self._plots_failed = False
        self._plotted_at = time.monotonic()  # the run's start counts as a drawing: the first comes 30 s in
        if enabled:
            check_writable(self.dir, "--output")
            remove_stale_temps(self.dir)  # a save killed mid-way (SIGKILL) left its temporary file

    def write_config(self, config: dict, classes: list[str]) -> None:
        if not self.enabled:
            return
        _rewrite(self.dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        _rewrite(self.dir / "classes.txt", "".join(c + "\n" for c in classes))

    def truncate_after(self, epoch: int) -> None:
        """Drop rows past ``epoch`` (left by a run killed between its logs and its checkpoint)."""
        if not self.enabled:
            return
        for name in ("train.log", "test.log"):
            p = self.dir / name
            if p.exists():
                lines = p.read_text().splitlines(keepends=True)
                keep = [ln for ln in lines[1:] if ln.split("\t", 1)[0].isdigit() and int(ln.split("\t", 1)[0]) <= epoch]
                _rewrite(p, LOG_HEADER + "".join(keep))
        p = self.dir / "metrics.jsonl"
        if p.exists():
            rows = [ln for ln in p.read_text().splitlines(keepends=True) if ln.strip()]
            _rewrite(p, "".join(r for r in rows if json.loads(r).get("epoch", 0) <= epoch))

    def epoch_row(self, name: str, epoch: int, stats: dict) -> None:
        """One tab-separated row of top-1/top-5 accuracy and loss, as the original's logger wrote."""
        if not self.enabled:
            return
        p = self.dir / name
        if not p.exists():
            _rewrite(p, LOG_HEADER)
        _append(p, f"{epoch}\t{stats['top1']:.4f}\t{stats['top5']:.4f}\t{stats['loss']:.6f}\n")

    def metrics(self, record: dict) -> None:
        if not self.enabled:
            return
        _append(self.dir / "metrics.jsonl", json.dumps({"time": time.time(), **record}) + "\n")
        tb = self.tensorboard()
        if tb is not None:
            step = record.get("epoch", 0)
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    tb.add_scalar(k.replace("_", "/", 1), v, step)
            tb.flush()

    def tensorboard(self):
        if self._tb is None and self.enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.dir / "tensorboard"))
            except ImportError:
                self._tb = False
                print("note: tensorboard is not installed; TensorBoard events are not written", file=sys.stderr)
        return self._tb or None

    def plots(self, final: bool = False) -> None:
        """Redraw accuracy.png, cross-entropy.png, lr.png and throughput.png; a failure only warns.

        Unless ``final``, only when ``PLOT_EVERY_S`` have passed since the last drawing: drawing takes
        0.5-1 s of Python, which a run of 1-second epochs (CIFAR on a GPU) would otherwise pay every
        epoch, on the thread that launches its kernels.
        """
        if not self.enabled or self._plots_failed:
            return
        if not final and time.monotonic() - self._plotted_at < PLOT_EVERY_S:
            return
        self._plotted_at = time.monotonic()
        try:
            from imagenet_trainer.engine.plots import plot_runs
            plot_runs([self.dir])
        except Exception as e:  # charts must never stop a training run
            self._plots_failed = True
            print(f"note: charts not drawn ({type(e).__name__}: {e}); `imagenet-trainer plot` can retry", file=sys.stderr)

    def bad_image(self, path: str, reason: str, announce: bool = True) -> None:
        if announce:
            print(f"warning: skipped unreadable image {path}: {reason}", file=sys.stderr)
        if self.enabled:
            _append(self.dir / "bad_images.txt", f"{path}\t{reason}\n")

    def close(self) -> None:
        if self._tb:
            self._tb.close()


def new_run_dir(arch: str, root: str = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    arch = arch.replace("/", "-")  # timm/convnext_tiny -> timm-convnext_tiny
    path = Path(root) / f"{arch}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{arch}-{stamp}-{n}"
    return path


def find_latest_checkpoint(output: str | None, arch: str) -> Path | None:
    """For ``--resume auto``: the run folder's checkpoint_last.pt, or the newest under runs/<arch>-*."""
    if output:
        p = Path(output) / "checkpoint_last.pt"
        return p if p.exists() else None
    candidates = sorted(Path("runs").glob(f"{arch}-*/checkpoint_last.pt"), key=lambda p: os.stat(p).st_mtime)
    return candidates[-1] if candidates else None
