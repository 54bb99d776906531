"""Top-k counts kept on the device (no sync per batch), and the live progress line (no sync either)."""

from __future__ import annotations

import collections
import math
import os
import sys
import time

import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> torch.Tensor:
    """Number of samples whose label is within the top-k predictions, for each k: (len(ks),) float."""
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices  # (B, maxk)
    hit = pred.eq(labels.view(-1, 1))
    return torch.stack([hit[:, :min(k, maxk)].any(dim=1).sum() for k in ks]).float()


class Accumulator:
    """Sums of (samples, loss*samples, top1 correct, top5 correct) as one device tensor."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)

    def add(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> torch.Tensor:
        """Add one batch; returns that batch's row (a device tensor)."""
        # torch.full launches a fill kernel; torch.tensor(..., device="cuda") would copy from the host and
        # synchronize the training thread with the GPU every step.
        count = torch.full((1,), float(n), device=correct.device, dtype=torch.float64)
        row = torch.cat([count, (loss.detach().double() * n).view(1), correct.double()])
        self.sums += row
        return row

    def result(self, sums: torch.Tensor | None = None) -> dict:
        count, loss, c1, c5 = (self.sums if sums is None else sums).tolist()
        n = max(count, 1.0)
        return {"loss": loss / n, "top1": 100 * c1 / n, "top5": 100 * c5 / n, "count": int(count)}


class HostCopies:
    """The newest values of a small device tensor that have reached the host, without waiting for the device.

    ``send(t)`` starts a copy of ``t`` to pinned host memory (on the CPU it takes the values at once);
    ``latest()`` returns the newest copy that has arrived, and waits only while none has (the first time).
    The progress line shows the training loss and errors this way: reading them directly (``.tolist()``)
    makes the training thread wait for the GPU to finish every queued kernel at each progress line, and the
    GPU then idles until the thread has queued the next step's first kernels (one H100, compiled ResNet-50:
    a 2.8-ms gap every 10 steps, and slow launches after it). The values shown are a few steps old; the
    epoch's totals are exact.
    """

    def __init__(self):
        self.pending: collections.deque[tuple[torch.Tensor, torch.cuda.Event]] = collections.deque()
        self.arrived: list[float] | None = None

    def send(self, t: torch.Tensor) -> None:
        if t.device.type != "cuda":
            self.arrived = t.tolist()
            return
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self.pending.append((host, event))

    def latest(self) -> list[float] | None:
        """The newest arrived values; None if nothing was sent."""
        while self.pending and (self.arrived is None or self.pending[0][1].query()):
            host, event = self.pending.popleft()
            event.synchronize()  # a no-op unless nothing had arrived yet
            self.arrived = host.tolist()
        return self.arrived


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _percent(share: float) -> str:
    """A share as a percentage: one decimal below 10% (a few percent of waiting for data is worth seeing)."""
    return f"{100 * share:.1f}%" if share < 0.0995 else f"{100 * share:.0f}%"


class ProgressLine:
    """A live line on a terminal (refreshed at most 10x a second); plain lines every ``print_freq`` otherwise."""

    def __init__(self, label: str, total: int, print_freq: int = 10, stream=None, enabled: bool = True,
                 skipped: int = 0):
        """``total`` batches, of which the first ``skipped`` were done before (a resumed epoch)."""
        self.label, self.total, self.print_freq = label, total, max(1, print_freq)
        self.skipped = skipped
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.enabled = enabled
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.images = 0
        self.wait = 0.0
        self.after_first = None  # (time, images, wait) when the first batch was done: the line's rate starts there

    def sample_due(self, i: int, lead: int = 3) -> bool:
        """Whether batch ``i``'s values should be sampled for a line to come (``HostCopies.send``): ``lead``
        batches before each plain line, every ``lead``-th batch for a live one."""
        if not self.enabled:
            return False
        if self.print_freq <= lead:
            return True
        if self.live:
            return i % lead == 0
        return (i + lead) % self.print_freq == 0

    def update(self, i: int, batch_size: int, wait: float, values) -> None:
        """Batch ``i`` (1-based) is done; ``values()`` returns the fields to show (it may sync the GPU)."""
        self.images += batch_size
        self.wait += wait
        if not self.enabled:
            return
        now = time.perf_counter()
        if i == self.skipped + 1:
            self.after_first = (now, self.images, self.wait)
        if self.live:
            if now - self.last_draw < 0.1 and i != self.total:
                return
        elif i % self.print_freq and i != self.total:
            return
        self.last_draw = now
        # Rate, data share and ETA from the end of the first batch on, when there is one: the first step holds
        # the compile and cuDNN's tuning (about a minute for a compiled ResNet-50), which would otherwise show a
        # few dozen images/s and an ETA of hours for the first minutes of a run.
        if i > self.skipped + 1 and self.after_first is not None:
            (t0, images0, wait0), done = self.after_first, i - self.skipped - 1
        else:
            (t0, images0, wait0), done = (self.start, 0, 0.0), i - self.skipped
        elapsed = max(now - t0, 1e-9)
        rate = (self.images - images0) / elapsed
        eta = (self.total - i) * elapsed / done
        fields = "  ".join(f"{k} {v}" for k, v in values().items())
        line = (f"{self.label} [{i:>{len(str(self.total))}}/{self.total}]  {fields}  "
                f"{rate:,.0f} img/s  data {_percent((self.wait - wait0) / elapsed)}  ETA {fmt_time(eta)}")
        if self.live:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    @property
    def rate(self) -> float:
        """Images per second since the start."""
        return self.images / max(time.perf_counter() - self.start, 1e-9)

    @property
    def wait_share(self) -> float:
        """Fraction of the elapsed time spent waiting on the loader."""
        return self.wait / max(time.perf_counter() - self.start, 1e-9)


LAUNCH_ENV = "IMAGENET_TRAINER_LAUNCHED_AT"  # set by ``train --ngpu`` for its processes: the launcher's start


def process_age() -> float | None:
    """Seconds since this process (or the ``--ngpu`` launcher that started it) started, on Linux."""
    if os.environ.get(LAUNCH_ENV):
        return time.time() - float(os.environ[LAUNCH_ENV])
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
