"""Augmentations of whole batches on the training device, after normalization.

``Cutout`` (DeVries & Taylor, 2017; torchvision's ``RandomErasing`` with a fixed square): each image
loses one square of side ``fraction`` x its side, centred anywhere in the image (so it may be clipped
at the border), filled with 0, which after normalization is the dataset's mean colour. One mask and
one fill per batch, whatever the loader: it runs on the batch the training step is about to take.
"""

from __future__ import annotations

import torch


class Cutout:
    """Erase one random square per image of a normalized (B, C, H, W) batch, in place.

    The squares come from a generator on the batch's device seeded with ``seed`` and the epoch
    (``set_epoch``), so a run draws the same squares each time it is repeated.
    """

    def __init__(self, fraction: float, seed: int = 0):
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"cutout fraction {fraction} is not in (0, 1]")
        self.fraction = fraction
        self.seed = seed
        self.epoch = 0
        self._generator: torch.Generator | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._generator = None

    def _gen(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        return self._generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        if n == 0:
            return images
        side_h, side_w = max(1, round(self.fraction * h)), max(1, round(self.fraction * w))
        centres = torch.rand(n, 2, generator=self._gen(images.device), device=images.device)
        top = (centres[:, 0] * h).long() - side_h // 2  # (n,): may start above the image
        left = (centres[:, 1] * w).long() - side_w // 2
        rows = torch.arange(h, device=images.device).view(1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, w)
        top, left = top.view(n, 1, 1), left.view(n, 1, 1)
        mask = (rows >= top) & (rows < top + side_h) & (cols >= left) & (cols < left + side_w)  # (n, h, w)
        return images.masked_fill_(mask.unsqueeze(1), 0.0)
