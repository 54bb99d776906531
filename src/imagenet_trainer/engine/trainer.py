"""``train_one_epoch`` and ``evaluate``: plain functions over a model and a ``DeviceLoader``."""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from imagenet_trainer.engine.distributed import AnyRankLate, DistContext, all_reduce_sum
from imagenet_trainer.engine.metrics import Accumulator, HostCopies, ProgressLine, process_age, topk_correct
from imagenet_trainer.engine.optim import Schedule


@dataclass
class StepContext:
    """What a training step needs besides the model and the data."""

    device: torch.device
    autocast_dtype: torch.dtype | None  # None = fp32
    scaler: torch.amp.GradScaler | None
    schedule: Schedule
    dist: DistContext = field(default_factory=DistContext)
    print_freq: int = 10
    accum: int = 1  # micro-batches per optimizer step
    ema: object = None  # an EMA (engine.ema) updated after every optimizer step ...
    ema_source: nn.Module | None = None  # ... from this (unwrapped) model
    tta: bool = False  # evaluate with horizontal-flip test-time augmentation
    tta_shift: int = 0  # ... and on the image moved this many pixels diagonally each way (see ``tta_probs``)
    augment: Callable | None = None  # (images, labels) -> (images, loss targets, top-k labels) (data.augment)
    on_bad_image: Callable[[str, str], None] = lambda path, reason: None
    cuda_graphs: bool = False  # the compiled model replays CUDA graphs: each training step starts a new generation
    guard: object = None  # a divergence guard (engine.guard.LossGuard) that looks at the loss now and then
    clip_grad: float | None = None  # clip the gradients' global norm to this before each optimizer step
    after_step: Callable[[int, int], None] | None = None  # (batches of the epoch done, steps done) after each step

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def train_one_epoch(model: nn.Module, loader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    ctx: StepContext, epoch: int, start_step: int, time_first_step: bool = False,
                    skipped: int = 0) -> dict:
    """One epoch of SGD; returns loss, top-1/top-5 accuracy (%), images/s and the data-wait share.

    With ``time_first_step``, also ``first_step_s``: the seconds until the first optimizer step has
    finished on the device (compilation and cuDNN autotuning happen there). ``skipped``: the epoch's batches
    done before (a run resumed part-way through it; the loader leaves them out): the figures are the rest's.
    """
    t_start = time.perf_counter()
    first_step_s = None
    model.train()
    acc = Accumulator(ctx.device)
    last = {"row": None, "lr": 0.0}
    progress = ProgressLine(f"train {epoch}", len(loader) + skipped, ctx.print_freq, enabled=ctx.dist.is_main,
                            skipped=skipped)
    shown = HostCopies()  # the batch metrics reach the progress line without making this thread wait for the GPU

    def show() -> dict:
        values = shown.latest()
        if values is None or last["row"].device.type != "cuda":  # this batch's (on a GPU: nothing sampled yet)
            shown.send(last["row"])
            values = shown.latest()
        n, loss, c1, c5 = values
        return {"loss": f"{loss / n:.3f}", "top1-err": f"{100 - 100 * c1 / n:5.1f}",
                "top5-err": f"{100 - 100 * c5 / n:5.1f}", "lr": f"{last['lr']:.3g}"}

    step = start_step
    k = ctx.accum
    for i, batch in enumerate(loader, skipped + 1):
        if time_first_step and i == skipped + 1 and ctx.dist.is_main:
            age = process_age()
            first = getattr(loader, "first_batch", None)  # a CUDA loader's (data.loader.FirstBatch)
            print((f"first training batch {age:.1f} s after launch" if age is not None else "first training batch")
                  + (f" ({first})" if first is not None else ""), file=sys.stderr, flush=True)
        for bad in batch.bad:
            ctx.on_bad_image(bad.path, bad.reason)
        n = batch.labels.shape[0]
        boundary = i % k == 0  # the last micro-batch of an optimizer step
        if n > 0:
            if i % k == 1 or k == 1:
                last["lr"] = ctx.schedule.apply(optimizer, step)
            # Gradients are all-reduced once per optimizer step, on its last micro-batch.
            sync = contextlib.nullcontext() if boundary or not hasattr(model, "no_sync") else model.no_sync()
            if ctx.cuda_graphs:  # the last step's graph outputs may be overwritten from here on
                torch.compiler.cudagraph_mark_step_begin()
            with sync:
                # augmented in the batch's own precision: under bf16 autocast a geometric op's coordinates would
                # be rounded to the wrong pixels
                images, targets, labels = ((batch.images, batch.labels, batch.labels) if ctx.augment is None
                                           else ctx.augment(batch.images, batch.labels))
                with ctx.autocast():
                    logits = model(images)
                    loss = criterion(logits, targets)
                scaled = loss / k
                (ctx.scaler.scale(scaled) if ctx.scaler is not None else scaled).backward()
            with torch.no_grad():
                last["row"] = acc.add(loss, topk_correct(logits.detach(), labels), n)
            if progress.sample_due(i):
                shown.send(last["row"])
            if ctx.guard is not None:
                ctx.guard.watch(i, last["row"], epoch, step)
        if boundary:
            if ctx.clip_grad is not None:
                if ctx.scaler is not None:
                    ctx.scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], ctx.clip_grad)
            if ctx.scaler is not None:
                ctx.scaler.step(optimizer)
                ctx.scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ctx.ema is not None:
                ctx.ema.update_parameters(ctx.ema_source)
            step += 1
            if ctx.after_step is not None:
                ctx.after_step(i, step)
            if time_first_step and first_step_s is None:
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                first_step_s = time.perf_counter() - t_start
        if n > 0:
            progress.update(i, n * ctx.dist.world_size, batch.wait, show)
    progress.close()
    stats = acc.result(all_reduce_sum(acc.sums, ctx.dist))
    stats.update(images_per_s=progress.rate, data_wait=progress.wait_share, lr=last["lr"], steps=step)
    if first_step_s is not None:
        stats["first_step_s"] = first_step_s
    return stats


def synthetic_step_rate(model: nn.Module, criterion: nn.Module, device: torch.device, dtype: torch.dtype | None,
                        batch_size: int, size: int, num_classes: int, warmup: int = 2, steps: int = 6,
                        min_seconds: float = 0.3, beside=None, max_seconds: float = 20.0) -> float:
    """Images/s of forward and backward passes on random batches already on the device, as the loader
    delivers them (float, channels_last); what the model trains at when data costs nothing.

    After ``warmup`` passes, it times at least ``steps`` passes and at least ``min_seconds``. ``beside``
    (``engine.probe.CpuDecodeTiming``): started after the warm-up, and stepped beside while it runs, up to
    ``max_seconds``. Under torch.distributed every rank runs the same passes, for as long as any rank's
    conditions ask (``AnyRankLate``: a pass late, the GPU never left waiting for the host). The rate is the median
    pass's (CUDA events on a GPU), so that a one-off stall among the few timed passes is not taken for the
    model's pace.

    No optimizer step runs; the model's buffers (batch-norm statistics) and the random number generators are
    left as they were, and its gradients are left unset. The warm-up compiles a compiled model (and tunes cuDNN
    where it times its algorithms), as the first training batch would: same shapes, so training reuses both.
    """
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext())
    x = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    was_training = model.training
    model.train()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():  # as a training step: fresh gradients (also what CUDA graphs need: an accumulated gradient
        # would read the last replay's output after this one has overwritten it), each pass a new step
        model.zero_grad(set_to_none=True)
        torch.compiler.cudagraph_mark_step_begin()
        with autocast:
            criterion(model(x), y).backward()

    try:
        for _ in range(warmup):
            step()
        sync()
        if beside is not None:
            beside.start()
        more = AnyRankLate(device)
        marks = [_mark(device)]  # before each timed pass, and after the last
        t0, n, elapsed = time.perf_counter(), 0, 0.0
        while n < steps or more((elapsed < min_seconds and n < 50 * steps) or (
                beside is not None and beside.running() and elapsed < max_seconds)):
            step()
            marks.append(_mark(device))
            n += 1
            if n >= steps:  # the host waits for the pass before, so the device always has this one queued
                _wait(marks[-2])
                elapsed = time.perf_counter() - t0
        sync()
        return batch_size / _median_seconds(marks)
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for p in model.parameters():
            p.grad = None
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, device)
        model.train(was_training)


def _mark(device: torch.device):
    """A point in the device's time: a recorded CUDA event on a GPU, the clock elsewhere (where passes run in
    the caller's thread)."""
    if device.type != "cuda":
        return time.perf_counter()
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def _wait(mark) -> None:
    if not isinstance(mark, float):
        mark.synchronize()


def _median_seconds(marks: list) -> float:
    """The median gap between consecutive ``_mark``s, in seconds (the device synchronized after the last)."""
    if isinstance(marks[0], float):
        gaps = [b - a for a, b in zip(marks, marks[1:])]
    else:
        gaps = [a.elapsed_time(b) / 1e3 for a, b in zip(marks, marks[1:])]
    return max(statistics.median(gaps), 1e-9)


def tta_probs(model: nn.Module, x: torch.Tensor, flip: bool = False, shift: int = 0) -> torch.Tensor:
    """Class probabilities of (B, 3, H, W) ``x``, averaged over test-time views.

    ``flip``: each view's softmax is averaged with its mirror image's. ``shift`` > 0: the image moved
    ``shift`` px down-right and up-left (edge pixels repeated) are two more views, weighted 1/4 each
    against 1/2 for the unmoved one (the airbench CIFAR recipe's translation TTA).
    """
    def view(v: torch.Tensor) -> torch.Tensor:
        p = model(v).float().softmax(-1)
        return (p + model(v.flip(3)).float().softmax(-1)) / 2 if flip else p

    probs = view(x)
    if shift > 0:
        h, w = x.shape[-2:]
        padded = torch.nn.functional.pad(x, (shift,) * 4, mode="replicate")
        moved = [padded[:, :, :h, :w], padded[:, :, 2 * shift:, 2 * shift:]]
        moved = [v.contiguous(memory_format=torch.channels_last) for v in moved]
        probs = probs / 2 + (view(moved[0]) + view(moved[1])) / 4
    return probs


@torch.no_grad()
def evaluate(model: nn.Module, loader, ctx: StepContext, label: str = "val", crops: int = 1,
             collect: bool = False) -> dict:
    """Top-1/top-5 accuracy and loss over ``loader``; with five-crop batches, 10-crop (flips) softmax average.

    With ``collect``, the result also holds each sample's predicted label and its index in the dataset.
    """
    model.eval()
    acc = Accumulator(ctx.device)
    criterion = nn.NLLLoss(reduction="mean")
    progress = ProgressLine(label, len(loader), ctx.print_freq, enabled=ctx.dist.is_main)
    preds, labels_all, p_true, indices = [], [], [], []
    for i, batch in enumerate(loader, 1):
        for bad in batch.bad:
            ctx.on_bad_image(bad.path, bad.reason)
        n = batch.labels.shape[0]
        if n == 0:
            continue
        x = batch.images
        with ctx.autocast():
            if x.dim() == 5:  # (B, 5, 3, H, W): five crops and their flips
                flat = x.flatten(0, 1)
                logits = torch.stack([model(flat), model(flat.flip(3))], 1).float()  # (B*5, 2, C)
                probs = logits.softmax(-1).view(n, 10, -1).mean(1)
            else:
                probs = tta_probs(model, x, ctx.tta, ctx.tta_shift)
        logp = probs.clamp_min(1e-12).log()
        acc.add(criterion(logp, batch.labels), topk_correct(probs, batch.labels), n)
        if collect:
            preds.append(probs.argmax(1).cpu())
            labels_all.append(batch.labels.cpu())
            p_true.append(probs.gather(1, batch.labels.view(-1, 1)).squeeze(1).cpu())
            indices.append(batch.indices.cpu())
        progress.update(i, n * ctx.dist.world_size, batch.wait, lambda: {})
    progress.close()
    out = acc.result(all_reduce_sum(acc.sums, ctx.dist))
    if collect:  # this process's samples: predicted and true labels, p(true label), index in the dataset
        empty = torch.empty(0, dtype=torch.long)
        out["pred"] = torch.cat(preds) if preds else empty
        out["labels"] = torch.cat(labels_all) if labels_all else empty
        out["p_true"] = torch.cat(p_true) if p_true else torch.empty(0)
        out["indices"] = torch.cat(indices) if indices else empty
    return out
