"""Batch samplers whose order depends only on (seed, epoch), sharded across distributed ranks."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def _mix(*xs: int) -> int:
    """A 63-bit seed from several integers (stable across runs and platforms)."""
    return int(np.random.SeedSequence(list(xs)).generate_state(2, np.uint64)[0] >> np.uint64(1))


class EpochCrops:
    """An epoch sampler's crop sizes under progressive resizing: ``crop_schedule(epoch)`` (None: the loader's own
    size), for the sampler's current ``epoch`` or another."""

    crop_schedule: Callable[[int], int | None] | None = None
    epoch: int

    def crop_size_of(self, epoch: int) -> int | None:
        """``epoch``'s crop size from ``crop_schedule``, or None."""
        return self.crop_schedule(epoch) if self.crop_schedule is not None else None

    @property
    def crop_size(self) -> int | None:
        """This epoch's crop size (``crop_size_of``)."""
        return self.crop_size_of(self.epoch)


class EpochBatchSampler(EpochCrops, torch.utils.data.Sampler):
    """Training batches of ``(index, sample_seed)`` for one rank.

    batch_size: the per-rank batch; the global batch is ``batch_size * world_size``.
    epoch_size: batches per epoch (the original's ``-epochSize``); None means one pass over the data.
    sampling: ``shuffle`` (a permutation per pass) or ``balanced`` (the original: draw a class
      uniformly, then an image of it, with replacement).

    ``continuous``: iterating goes on into the following epochs (from ``epoch``, up to ``last_epoch`` when it
    is set), so that a loader's workers start on the next epoch's batches while the last ones of this epoch
    train (``WrappedLoader`` takes one epoch's worth at a time). ``crop_schedule(epoch)`` gives each epoch's
    crop size for that.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int = 0, epoch_size: int | None = None,
                 sampling: str = "shuffle", rank: int = 0, world_size: int = 1,
                 crop_schedule: Callable[[int], int | None] | None = None, continuous: bool = False,
                 last_epoch: int | None = None, repeats: int = 1):
        if repeats > 1 and sampling != "shuffle":
            raise ValueError("repeated augmentation goes with --sampling shuffle")
        self.repeats = repeats
        self.labels = labels
        self.batch_size = batch_size
        self.seed = seed
        self.sampling = sampling
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0  # batches of ``epoch`` left out at its start
        # Progressive resizing: epoch -> crop size sent with each item (None: the loader's own size).
        self.crop_schedule = crop_schedule
        self.continuous = continuous
        self.last_epoch = last_epoch  # a continuous sampler's last epoch (None: no end)
        full = len(labels) // (batch_size * world_size)
        self.num_batches = epoch_size if epoch_size else max(full, 1)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.num_batches - self.skip

    def _global_order(self, epoch: int) -> np.ndarray:
        """Indices for the whole epoch, all ranks, in order."""
        need = self.num_batches * self.batch_size * self.world_size
        n = len(self.labels)
        if self.sampling == "balanced":
            g = np.random.default_rng(_mix(self.seed, epoch, 1))
            order = np.argsort(self.labels, kind="stable")
            counts = np.bincount(self.labels)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            classes = np.flatnonzero(counts)
            picked = g.choice(classes, size=need)
            offsets = (g.random(need) * counts[picked]).astype(np.int64)
            return order[starts[picked] + offsets]
        parts, total, p = [], 0, 0
        while total < need:  # an epoch longer than the data takes further permutations
            g = torch.Generator().manual_seed(_mix(self.seed, epoch, p))
            parts.append(np.repeat(torch.randperm(n, generator=g).numpy(), self.repeats))
            total += n * self.repeats
            p += 1
        order = np.concatenate(parts)[:need]
        if self.repeats > 1 and self.world_size > 1:  # deal each global batch to the ranks in turn
            order = order.reshape(-1, self.batch_size, self.world_size).transpose(0, 2, 1).reshape(-1)
        return order

    def batches(self, epoch: int | None = None):
        """This rank's batches of ``epoch`` (default: the current one, less its ``skip``) as ``(positions,
        sample_seeds)``: int64 and uint64 numpy arrays."""
        epoch = self.epoch if epoch is None else epoch
        order = self._global_order(epoch)
        base = _mix(self.seed, epoch, 2)
        gb = self.batch_size * self.world_size
        for b in range(self.skip if epoch == self.epoch else 0, self.num_batches):
            # Global batch b is split into contiguous per-rank slices, so the union of all ranks'
            # batches equals the single-process batch of the same global size.
            start = b * gb + self.rank * self.batch_size
            k = np.arange(start, start + self.batch_size, dtype=np.int64)
            yield order[k].astype(np.int64), np.uint64(base) + k.astype(np.uint64)

    def __iter__(self):
        epoch = self.epoch
        while True:
            size = self.crop_size_of(epoch)
            for positions, seeds in self.batches(epoch):
                if size is None:
                    yield [(int(i), int(s)) for i, s in zip(positions, seeds)]
                else:
                    yield [(int(i), int(s), size) for i, s in zip(positions, seeds)]
            if not self.continuous or (self.last_epoch is not None and epoch >= self.last_epoch):
                return
            epoch += 1


class ShardBatchSampler(torch.utils.data.Sampler):
    """Evaluation batches: rank r takes a contiguous shard; every item is seen exactly once overall."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start = n * rank // world_size
        self.stop = n * (rank + 1) // world_size
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-(self.stop - self.start) // self.batch_size)

    def __iter__(self):
        for s in range(self.start, self.stop, self.batch_size):
            yield list(range(s, min(s + self.batch_size, self.stop)))
