"""The reference pipeline: PIL decoding and torchvision transforms in the workers, float32 over the bus.

``--loader naive`` trains through this path (pytorch/examples' transforms: RandomResizedCrop + flip +
ToTensor + Normalize; Resize + CenterCrop for val), with this project's index, sampler, sharding
and bad-image handling, so that a run through the fast path can be checked against it for accuracy.
``bench --compare`` uses the same transforms as its baseline.
"""

from __future__ import annotations

import time

import torch
import torchvision.transforms as T
from PIL import Image, ImageOps

from imagenet_trainer.data.dataset import BadSample, parse_item
from imagenet_trainer.data.decode import DecodeError, check_pixels
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex
from imagenet_trainer.data.loader import DeviceBatch, WrappedLoader, make_dataloader


def naive_transform(geometry: Geometry, mean, std, crop_size: int | None = None,
                    auto_augment: str | None = None) -> T.Compose:
    """torchvision transforms equivalent to ``geometry`` (rrc or center), then ``auto_augment``'s reference
    transform (``data.autoaugment.reference_transform``), ending in a normalized float tensor."""
    crop = crop_size or geometry.crop_size
    if geometry.kind == "rrc":
        head = [T.RandomResizedCrop(crop, scale=geometry.scale, ratio=geometry.ratio), T.RandomHorizontalFlip()]
    elif geometry.kind == "pad":
        head = [T.Resize(geometry.image_size), T.RandomCrop(crop, padding=crop // 8), T.RandomHorizontalFlip()]
    elif geometry.kind == "center":
        head = [T.Resize(geometry.image_size), T.CenterCrop(crop)]
    else:
        raise ValueError(f"the naive pipeline has no {geometry.kind!r} crop; use rrc, pad or center")
    if auto_augment:
        from imagenet_trainer.data.autoaugment import reference_transform

        head.append(reference_transform(auto_augment, mean))
    return T.Compose(head + [T.ToTensor(), T.Normalize(mean, std)])


class NaiveDataset(torch.utils.data.Dataset):
    """PIL + torchvision transforms over a ``FileIndex``; items as ``ImageFolderDataset`` takes them."""

    def __init__(self, index: FileIndex, geometry: Geometry, mean, std, auto_augment: str | None = None):
        self.index, self.geometry, self.mean, self.std = index, geometry, mean, std
        self.auto_augment = auto_augment
        self._transforms: dict[int, T.Compose] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item):
        i, _, size = parse_item(item)
        size = size or self.geometry.crop_size
        if size not in self._transforms:  # progressive resizing: one transform per crop size
            self._transforms[size] = naive_transform(self.geometry, self.mean, self.std, size, self.auto_augment)
        try:
            with Image.open(self.index.path(i)) as im:  # upright, as the fast paths decode it
                check_pixels(*im.size)
                x = self._transforms[size](ImageOps.exif_transpose(im).convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError, DecodeError) as e:
            return BadSample(self.index.path(i), str(e))
        return x, int(self.index.labels[i]), i


def collate_naive(samples: list):
    good = [s for s in samples if not isinstance(s, BadSample)]
    bad = [s for s in samples if isinstance(s, BadSample)]
    images = torch.stack([s[0] for s in good]) if good else torch.empty(0, 3, 1, 1)
    return (images, torch.tensor([s[1] for s in good], dtype=torch.int64),
            torch.tensor([s[2] for s in good], dtype=torch.int64), bad)


class NaiveLoader(WrappedLoader):
    """Batches of ``NaiveDataset``, copied to ``device`` as channels_last float32."""

    def __init__(self, dataset: NaiveDataset, batch_sampler, workers: int, device: torch.device):
        self.device = device
        self.loader = make_dataloader(dataset, batch_sampler, workers, device.type == "cuda", collate_fn=collate_naive)

    def __iter__(self):
        for (images, labels, indices, bad), t0 in self._items():
            x = images.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            batch = DeviceBatch(x, labels.to(self.device, non_blocking=True), bad, indices=indices)
            batch.wait = time.perf_counter() - t0
            yield batch
