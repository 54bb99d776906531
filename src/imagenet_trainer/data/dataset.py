"""A map-style dataset over a ``FileIndex`` that returns decoded uint8 crops.

Items are requested as ``(index, sample_seed)`` pairs made by ``EpochBatchSampler``: the random crop
and flip of a sample depend only on (seed, epoch, position), never on worker count or timing, which
makes runs and resumes reproducible. A file that cannot be read or decoded comes back as a
``BadSample`` and is dropped by ``collate``; the training loop logs and counts it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from imagenet_trainer.data.decode import DecodeError, decode_crops, oriented_size
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex
from imagenet_trainer.data.slots import BatchSlots, SlotRef, incoming_state, outgoing_state, resolve


@dataclass
class BadSample:
    path: str
    reason: str


_SMALL = ("labels", "flips", "indices")


@dataclass
class Batch:
    """What loader workers hand back: uint8 pixels in HWC order, so the NCHW view is channels_last."""

    images: torch.Tensor  # (B, H, W, 3) uint8, or (B, 5, H, W, 3) for five-crop
    labels: torch.Tensor  # (B,) int64
    flips: torch.Tensor  # (B,) bool: flip horizontally on the device
    indices: torch.Tensor  # (B,) int64 positions in the index
    bad: list[BadSample]
    slot: SlotRef | None = None  # the images live in a worker's shared slot (see slots.py)

    def __getstate__(self):
        state = outgoing_state(self, _SMALL)
        if self.slot is not None:
            state["images"] = None  # sent as the slot's address; the receiver reads the slot in place
        return state

    def __setstate__(self, state):
        incoming_state(self, state, _SMALL)
        if self.slot is not None:
            self.images = resolve(self.slot)

    def pin_memory(self) -> "Batch":
        return Batch(self.images.pin_memory(), self.labels.pin_memory(), self.flips.pin_memory(),
                     self.indices, self.bad)


def parse_item(item) -> tuple[int, int, int | None]:
    """``index``, ``(index, seed)`` or ``(index, seed, crop_size)`` -> all three."""
    if not isinstance(item, tuple):
        return int(item), 0, None
    return item[0], item[1], item[2] if len(item) > 2 else None


class ImageFolderDataset(torch.utils.data.Dataset):
    """Decoded crops of the files in ``index`` with geometry ``geometry``."""

    def __init__(self, index: FileIndex, geometry: Geometry, scaled_decode: bool = True,
                 sizes: torch.Tensor | None = None):
        """``sizes``: an (N, 2) integer tensor in shared memory where each decoded image's upright (width,
        height) is written, by whichever worker decodes it (the decoded cache keeps them)."""
        self.index = index
        self.geometry = geometry
        self.scaled_decode = scaled_decode
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.index)

    def load(self, i: int, sample_seed: int = 0, crop_size: int | None = None,
             data: bytes | None = None) -> tuple[np.ndarray, bool]:
        """(crops (n_boxes, H, W, 3) uint8, flip) for file ``i`` (of ``data``, its bytes, when given); raises
        OSError or DecodeError."""
        data = self.index.read(i) if data is None else data
        rng = np.random.default_rng(sample_seed) if self.geometry.random else None
        crops, flip = decode_crops(data, self.geometry_for(crop_size), rng, self.scaled_decode)
        if self.sizes is not None:
            self.sizes.numpy()[i] = oriented_size(data)
        return (crops[0][None] if len(crops) == 1 else np.stack(crops)), flip

    def geometry_for(self, crop_size: int | None) -> Geometry:
        """The geometry at another crop size (progressive resizing), with the same scale rules."""
        if crop_size is None or crop_size == self.geometry.crop_size:
            return self.geometry
        ratio = self.geometry.image_size / self.geometry.crop_size
        return dataclasses.replace(self.geometry, crop_size=crop_size, image_size=round(crop_size * ratio))

    def __getitem__(self, item):
        return self.sample(item)

    def sample(self, item, data: bytes | None = None, label: int | None = None, name: str | None = None):
        """The sample for ``item`` (``index``, ``(index, seed)`` or ``(index, seed, crop_size)``), or a ``BadSample``.
        A stream of shards hands over the file's ``data``, its ``label`` and its ``name`` for messages; otherwise
        the file is read from the index."""
        i, sample_seed, size = parse_item(item)
        try:
            crops, flip = self.load(i, sample_seed, size, data)
        except (OSError, DecodeError) as e:
            return BadSample(name or self.index.path(i), error_reason(e))
        return crops, int(self.index.labels[i]) if label is None else label, flip, i


def error_reason(e: BaseException) -> str:
    """Why a file was skipped: an OS error's text, or a decode error's message."""
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


def collate(samples: list, slots: BatchSlots | None = None) -> Batch:
    """Stack good samples (into the worker's next shared slot when ``slots`` is given); keep bad ones aside."""
    good = [s for s in samples if not isinstance(s, BadSample)]
    bad = [s for s in samples if isinstance(s, BadSample)]
    ref = None
    if good:
        crops = [s[0] for s in good]  # each (n_boxes, H, W, 3)
        shape = (len(good),) + (crops[0].shape[1:] if crops[0].shape[0] == 1 else crops[0].shape)
        taken = slots.take(shape) if slots is not None and all(c.shape == crops[0].shape for c in crops) else None
        images, ref = taken if taken is not None else (torch.empty(shape, dtype=torch.uint8), None)
        # Into a C-ordered batch, (B, H, W, 3) or (B, 5, H, W, 3), whatever the crops' strides: np.stack
        # without ``out`` keeps its inputs' layout, and torch 2.14 resizes channels_last input into CHW order.
        np.stack(crops, out=images.numpy().reshape(len(good), *crops[0].shape))
    else:
        images = torch.empty(0, 0, 0, 3, dtype=torch.uint8)
    return Batch(images,
                 torch.tensor([s[1] for s in good], dtype=torch.int64),
                 torch.tensor([s[2] for s in good], dtype=torch.bool),
                 torch.tensor([s[3] for s in good], dtype=torch.int64),
                 bad, ref)
