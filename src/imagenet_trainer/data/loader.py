"""Loaders: worker processes decode to uint8; the device side flips, normalizes and casts whole batches.

``DeviceLoader`` wraps a torch ``DataLoader`` of ``Batch`` items. On CUDA it copies the next batch
(pinned, non-blocking) on a side stream while the current one trains, as timm's PrefetchLoader does.
Pixels stay uint8 until they are on the device; the NCHW view of the HWC batch is channels_last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from imagenet_trainer.data.dataset import Batch, BadSample, ImageFolderDataset, collate

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_dataloader(dataset: ImageFolderDataset, batch_sampler, workers: int, pin_memory: bool,
                    persistent: bool = True) -> torch.utils.data.DataLoader:
    """A DataLoader of ``Batch`` items; ``workers=0`` decodes in this process (full tracebacks)."""
    kwargs = {}
    if workers > 0:
        kwargs = dict(persistent_workers=persistent, prefetch_factor=4)
    return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers,
                                       collate_fn=collate, pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(0), **kwargs)


@dataclass
class DeviceBatch:
    images: torch.Tensor  # (B, 3, H, W) float32, normalized, channels_last; (B, 5, 3, H, W) for five-crop
    labels: torch.Tensor  # (B,) int64
    bad: list[BadSample] = field(default_factory=list)
    wait: float = 0.0  # seconds the consumer waited on the loader for this batch


class Normalizer:
    """uint8 (B, H, W, 3) -> normalized float (B, 3, H, W), channels_last, with per-sample flips."""

    def __init__(self, mean, std, device: torch.device):
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.inv_std = 1.0 / (torch.tensor(std, device=device).view(1, 3, 1, 1) * 255)

    def __call__(self, images: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
        five = images.dim() == 5
        if five:
            b, k = images.shape[:2]
            images = images.flatten(0, 1)
        x = images.permute(0, 3, 1, 2).float()  # (B, 3, H, W), channels_last strides
        if flips is not None and flips.any():
            x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
        x = (x - self.mean) * self.inv_std
        x = x.contiguous(memory_format=torch.channels_last)
        if five:
            x = x.view(b, k, *x.shape[1:])
        return x


class DeviceLoader:
    """Iterate ``DeviceBatch`` on ``device``; prefetches one batch ahead on CUDA."""

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device, mean, std):
        self.loader = loader
        self.device = device
        self.normalize = Normalizer(mean, std, device)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def batch_sampler(self):
        return self.loader.batch_sampler

    def _to_device(self, batch: Batch) -> DeviceBatch:
        images = batch.images.to(self.device, non_blocking=True)
        labels = batch.labels.to(self.device, non_blocking=True)
        flips = batch.flips.to(self.device, non_blocking=True)
        return DeviceBatch(self.normalize(images, flips), labels, batch.bad)

    def __iter__(self):
        it = iter(self.loader)
        if self.stream is None:
            while True:
                t0 = time.perf_counter()
                batch = next(it, None)
                if batch is None:
                    return
                wait = time.perf_counter() - t0
                out = self._to_device(batch)
                out.wait = wait
                yield out
            return
        pending = None
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            wait = time.perf_counter() - t0
            nxt = None
            if batch is not None:
                with torch.cuda.stream(self.stream):
                    nxt = self._to_device(batch)
                    nxt.wait = wait
            if pending is not None:
                yield pending
            if nxt is None:
                return
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            for t in (nxt.images, nxt.labels):
                t.record_stream(torch.cuda.current_stream(self.device))
            pending = nxt
