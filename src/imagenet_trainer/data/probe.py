"""``--loader auto`` on a GPU: a short probe picks the CPU loader or the hybrid one, and says why.

The CPU loader costs the GPU nothing, but it delivers only what its workers decode. The hybrid loader
decodes part of each batch on the GPU: that keeps a fast model fed, and it takes GPU time from a slow
one. So the probe measures two rates on this machine:
- how fast this process's workers decode training crops (``cpu_decode_rate``: a throwaway pool of
  small batches, about a second);
- how fast this process's model trains on batches already on the device (the caller's ``model_rate``:
  a few steps on random data, where a compiled model compiles as it would on its first batch).
If the workers keep up with the model, the CPU loader; otherwise the hybrid one.

One H100 with 16 cores (session 7, 130k-image tree): the CPU loader delivers about 5,900 img/s. A
compiled ResNet-50 trains at about 5,600 img/s; the CPU loader kept it at 99.7% of that and the hybrid
loader at 94-95%. ResNet-18 (11,850 img/s) and AlexNet (32,000) need the GPU's share of the decoding.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex
from imagenet_trainer.data.loader import make_dataloader

PROBE_BATCH = 64  # images per probe batch: small, so the pool's first round ends soon
PROBE_ROUNDS = 2  # timed rounds of one batch per worker, after an untimed first round (the pool's start)


@dataclass
class LoaderChoice:
    kind: str  # "cpu" or "hybrid"
    cpu_rate: float  # img/s this process's workers decode
    model_rate: float  # img/s this process's model trains on batches already on the device
    seconds: float  # the probe's wall-clock, compilation included

    def describe(self) -> str:
        verdict = ("they keep up: CPU loader, the GPU only trains" if self.kind == "cpu" else
                   "they fall short: hybrid loader, the GPU decodes a share of each batch")
        return (f"loader auto: the workers decode {self.cpu_rate:,.0f} img/s and the model trains "
                f"{self.model_rate:,.0f} img/s; {verdict} (probe {self.seconds:.1f} s; --loader cpu|hybrid chooses)")


def cpu_decode_rate(index: FileIndex, geometry: Geometry, workers: int, batch: int = PROBE_BATCH,
                    rounds: int = PROBE_ROUNDS, seed: int = 0) -> float:
    """Images/s that ``workers`` processes decode into ``geometry``'s crops, from a sample of the files.

    The pool decodes ``rounds + 1`` batches per worker; the clock runs from the end of the first
    round (the pool's start-up and the first files' reads are not the steady rate) to the last batch.
    """
    procs = max(1, workers)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(index), size=(procs * (rounds + 1), batch))
    seeds = rng.integers(0, 2**62, size=picks.shape)
    batches = [[(int(i), int(s)) for i, s in zip(p, q)] for p, q in zip(picks, seeds)]
    loader = make_dataloader(ImageFolderDataset(index, geometry), batches, workers, pin_memory=False,
                             persistent=False)
    t0, timed = None, 0
    for k, b in enumerate(loader, 1):
        if k == procs:
            t0 = time.perf_counter()
        elif k > procs:
            timed += len(b.labels) + len(b.bad)
    return timed / max(time.perf_counter() - t0, 1e-9)


def _agree_on_cpu(cpu: bool, device: torch.device) -> bool:
    """Under torch.distributed, every rank takes the CPU loader only if all of them would."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return cpu
    flag = torch.tensor([1 if cpu else 0], device=device if device.type == "cuda" else "cpu")
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item())


def choose_loader(index: FileIndex, geometry: Geometry, workers: int, model_rate: Callable[[], float],
                  device: torch.device, verbose: bool = True) -> LoaderChoice:
    """Measure both rates and pick: the CPU loader if the workers decode at least as fast as the model trains."""
    t0 = time.perf_counter()
    cpu_rate = cpu_decode_rate(index, geometry, workers)
    step_rate = model_rate()
    kind = "cpu" if _agree_on_cpu(cpu_rate >= step_rate, device) else "hybrid"
    choice = LoaderChoice(kind, cpu_rate, step_rate, time.perf_counter() - t0)
    if verbose:
        print(choice.describe(), file=sys.stderr, flush=True)
    return choice
