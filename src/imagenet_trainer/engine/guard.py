"""The divergence guard: a run whose training loss blows up stops with one line that says what to try,
instead of training a dead net for hours."""

from __future__ import annotations

import math

import torch

from imagenet_trainer.engine.metrics import HostCopies
from imagenet_trainer.errors import CheckError

RISE = 2.0  # after the warmup, an epoch whose mean loss is above RISE x the start + MARGIN has diverged
MARGIN = 1.0  # (a fresh net starts at ln(classes); the limit is 5.6 for 10 classes, 10.2 for 101, 14.8 for 1,000)
EVERY = 20  # batches between two looks at the loss (a copy to the host, without waiting for the GPU)


class Diverged(CheckError):
    """The training loss went non-finite or rose far above its start (exit code 1, one line)."""


class LossGuard:
    """Watches the training loss of one process.

    ``watch`` looks at a batch's loss every ``EVERY`` batches, a few steps late (``HostCopies``: no wait for the
    GPU), and stops the run when two looks in a row find it non-finite (one overflowing fp16 batch is skipped
    by the gradient scaler and is no divergence). ``end_epoch`` stops a run whose epoch, ending after the
    warmup, has a mean loss above ``RISE`` times ln(classes), a fresh net's loss, plus ``MARGIN``. The epoch's
    loss is summed over the processes, so under DDP every rank takes the same decision. A diverged net's loss is
    far past that (8-29 for 10 classes); a tiny set's noisy epochs stay under it.
    """

    def __init__(self, num_classes: int, warmup_steps: float, peak_lr: float, every: int = EVERY):
        self.reference = math.log(max(num_classes, 2))
        self.warmup_steps = warmup_steps
        self.peak_lr = peak_lr
        self.every = every
        self.copies = HostCopies()
        self.bad_looks = 0

    def watch(self, i: int, row: torch.Tensor, epoch: int, step: int) -> None:
        """``row``: the batch's (count, loss x count, top-1, top-5) device tensor (``metrics.Accumulator.add``)."""
        if i != 1 and i % self.every:
            return
        self.copies.send(row)
        count, loss_sum, _, _ = self.copies.latest()
        loss = loss_sum / max(count, 1.0)
        self.bad_looks = 0 if math.isfinite(loss) else self.bad_looks + 1
        if self.bad_looks >= 2:
            raise Diverged(self._message(f"the training loss is {loss} at epoch {epoch}, step {step}"))

    def end_epoch(self, epoch: int, loss: float, step: int) -> None:
        """Check the epoch's mean training ``loss``; ``step``: optimizer steps done by its end."""
        if not math.isfinite(loss):
            raise Diverged(self._message(f"the training loss of epoch {epoch} is {loss}"))
        limit = RISE * self.reference + MARGIN
        if step > self.warmup_steps and loss > limit:
            raise Diverged(self._message(f"the training loss of epoch {epoch} is {loss:.2f}, more than {limit:.2f} "
                                         f"({RISE:g}x its start, {self.reference:.2f}, + {MARGIN:g}) after the warmup"))

    def _message(self, what: str) -> str:
        return (f"training diverged: {what}. The LR (peak {self.peak_lr:.3g}) is likely too high for this model "
                "and batch: try a lower --lr-per-256 (or --lr), a longer --warmup-min-steps, or --precision fp32 "
                "(--no-guard trains on regardless)")
