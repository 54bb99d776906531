"""Batches streamed from tar shards for one rank: which samples each loader worker reads, in what order, with
what random crops.

An epoch's stream is the split's shards one after another, in an order drawn from (seed, epoch); an epoch longer
than the data goes on into further orders. Rank r takes its contiguous part: ``steps x batch`` samples (the
same count on every rank, as distributed training needs; the remainder, under one global batch, is left out,
as ``EpochBatchSampler`` leaves it out of a folder's epoch). Its part is cut in turn into one contiguous run of
whole batches per loader worker, which may begin and end inside a shard: a worker reads its shards in order,
from its first sample to its last, never another worker's. A worker shuffles what it reads through a buffer
of ``shuffle_buffer`` samples (the shards themselves are random samples of the classes, as ``shard`` writes
them), and each sample's crop and flip come from (seed, epoch, its place in the stream). So a run is
repeatable for a given number of workers, and a resumed run continues exactly, at an epoch's end or part-way
through it (``set_epoch(epoch, skip)``).

Validation reads the shards in index order; rank r takes the r-th contiguous share of the samples (the shares
differ by one at most), so under DDP every image is counted once, whatever the shards' sizes.

The workers hand back whole batches, as a folder's workers do (``Batch``, or ``MixedBatch`` for the GPU and
hybrid decoders): the per-sample work is the folder datasets' own (``sample``), given the bytes. As for a folder, a
GPU loader's very first batch can be decoded whole by the workers (``cpu_first_batch``), so that nvJPEG starts up
on the second batch, not under the first step.
"""

from __future__ import annotations

import numpy as np
import torch

from imagenet_trainer.data.dataset import BadSample
from imagenet_trainer.data.sampler import EpochCrops, ShardBatchSampler, _mix
from imagenet_trainer.data.shards import Sample, ShardIndex, ShardReadError, Unread, read_samples

SHUFFLE_BUFFER = 1000  # samples a worker holds to shuffle (encoded: about 110 MB of ImageNet JPEGs)
_SKIPPED = object()  # a sample a truncated shard lacked, after the first of them (which is logged)


class _Every:
    """Every item: the ``cpu_items`` of a dataset whose samples are all decoded on the CPU."""

    def __contains__(self, item) -> bool:
        return True


class StreamPlan(EpochCrops):
    """The schedule of one rank's stream: its length in batches, the epoch (shared with the workers, who read it
    when an epoch starts), the crop size of each epoch, and each worker's part.

    ``steps``: training batches per epoch (None: a validation stream, every sample once).
    """

    continuous = False  # each epoch starts the workers afresh: they learn its number from ``epoch``

    def __init__(self, counts: np.ndarray, batch_size: int, seed: int = 0, steps: int | None = None, rank: int = 0,
                 world_size: int = 1, crop_schedule=None, shuffle_buffer: int = SHUFFLE_BUFFER):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.total = int(self.counts.sum())
        self.batch_size = batch_size
        self.seed = seed
        self.steps = steps
        self.rank = rank
        self.world_size = world_size
        self.crop_schedule = crop_schedule
        self.shuffle_buffer = shuffle_buffer
        self._epoch = torch.zeros(2, dtype=torch.int64).share_memory_()  # the epoch, and the batches it skips

    @property
    def train(self) -> bool:
        return self.steps is not None

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    @property
    def skip(self) -> int:
        return int(self._epoch[1])

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The epoch the workers make next; ``skip``: its first batches, as the loader hands them out, left out (a
        run resumed part-way through it; see ``ShardStream``)."""
        self._epoch[0], self._epoch[1] = epoch, skip

    def _rank_range(self) -> tuple[int, int]:
        """This rank's samples of the epoch's stream, as [start, stop)."""
        if self.train:
            per_rank = self.steps * self.batch_size
            return self.rank * per_rank, (self.rank + 1) * per_rank
        return self.total * self.rank // self.world_size, self.total * (self.rank + 1) // self.world_size

    def __len__(self) -> int:
        return self.batches_in_epoch - self.skip

    @property
    def batches_in_epoch(self) -> int:
        start, stop = self._rank_range()
        return self.steps if self.train else -(-(stop - start) // self.batch_size)

    def worker_range(self, worker: int, workers: int) -> tuple[int, int]:
        """Worker ``worker`` of ``workers``' samples of the epoch's stream, [start, stop): whole batches in a row."""
        n = self.batches_in_epoch
        first = worker * (n // workers) + min(worker, n % workers)
        mine = n // workers + (worker < n % workers)
        start, stop = self._rank_range()
        return start + first * self.batch_size, min(stop, start + (first + mine) * self.batch_size)

    def shard_order(self, epoch: int, p: int) -> np.ndarray:
        """The shards' order in pass ``p`` of ``epoch``'s stream (validation: index order)."""
        if not self.train:
            return np.arange(len(self.counts))
        return np.random.default_rng(_mix(self.seed, epoch, 3, p)).permutation(len(self.counts))

    def segments(self, epoch: int, start: int, stop: int):
        """[start, stop) of ``epoch``'s stream as ``(shard, first sample in it, count, stream position)``."""
        pos = start
        while pos < stop:
            p, offset = divmod(pos, self.total)
            ends = 0
            for s in self.shard_order(epoch, p):
                n = int(self.counts[s])
                if offset < ends + n:
                    take = min(ends + n - offset, stop - pos)
                    yield int(s), offset - ends, take, pos
                    pos, offset = pos + take, offset + take
                    if pos >= stop:
                        return
                ends += n


def _shuffled(items, size: int, rng: np.random.Generator):
    """``items`` through a shuffle buffer of ``size``: each one out is drawn at random from those held."""
    held = []
    for item in items:
        if len(held) < size:
            held.append(item)
            continue
        j = int(rng.integers(size))
        yield held[j]
        held[j] = item
    for j in rng.permutation(len(held)):
        yield held[j]


class ShardStream(torch.utils.data.IterableDataset):
    """One rank's batches of ``plan``'s current epoch, made by each loader worker from its part of the stream.

    ``dataset``: the per-sample work (``ImageFolderDataset`` or ``EncodedFolderDataset``: its ``sample``, given the
    bytes); ``collate``: what stacks a worker's samples into a batch. A shard that cannot be read (missing, or a
    connection that kept dropping) ends the stream with its ``ShardReadError``, handed to the loader as an item.

    ``cpu_first_batch``: set before the workers start, the first batch of the next pass (worker 0's, which a
    DataLoader hands out first) is decoded whole by the worker: its items are the dataset's ``cpu_items`` (the
    GPU decoders' datasets have them; see ``DeviceLoader``).
    """

    def __init__(self, index: ShardIndex, plan: StreamPlan, dataset, collate):
        self.index = index
        self.plan = plan
        self.dataset = dataset
        self.collate = collate
        self.cpu_first_batch = False

    def __len__(self) -> int:
        return len(self.plan)

    def _read(self, epoch: int, start: int, stop: int):
        """(sample number in the split, stream position, ``Sample``, ``BadSample`` or ``_SKIPPED``, shard URL) of
        the range."""
        index, starts = self.index, self.index.starts
        for s, first, count, pos in self.plan.segments(epoch, start, stop):
            url, k = index.urls[s], 0
            for got in read_samples(url, first, count, index.filesystem, index.storage_options):
                if k == count:
                    break
                if isinstance(got, Unread):  # the rest of this segment: one logged, the others counted
                    yield int(starts[s]) + first + k, pos + k, BadSample(
                        f"{url} (samples {first + k}-{first + count - 1}: {count - k} unread)", got.why), url
                    k += 1
                    break
                yield int(starts[s]) + first + k, pos + k, got, url
                k += 1
            for m in range(k, count):  # exactly ``count`` items, whatever the shard held: every batch is made
                yield int(starts[s]) + first + m, pos + m, _SKIPPED, url

    def _one(self, i: int, seed: int, size: int | None, got, url: str):
        if not isinstance(got, Sample):
            return got
        name = f"{url} ({got.key})"
        if got.image is None:
            return BadSample(name, "the sample has no image (.jpg, .png, ...)")
        classes = len(self.index.classes) if self.index.label_map is None else len(self.index.label_map)
        if got.label is None or not 0 <= got.label < classes:
            return BadSample(name, f"the sample's class (.cls) is missing or not one of the {classes}")
        label = got.label if self.index.label_map is None else int(self.index.label_map[got.label])
        return self.dataset.sample((i, seed, size), got.image, label, name)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        plan = self.plan
        epoch, skip = plan.epoch, plan.skip
        size = plan.crop_size_of(epoch) if plan.train else None
        # The loader hands out batch j from worker j % workers. Resumed after ``skip`` batches, this worker plays
        # the part of the one that would have made the next batch, less the batches that one already made.
        part = (worker + skip) % workers
        start, stop = plan.worker_range(part, workers)
        items = self._read(epoch, start, stop)
        if plan.train and plan.shuffle_buffer > 1:
            items = _shuffled(items, plan.shuffle_buffer, np.random.default_rng(_mix(plan.seed, epoch, 4, plan.rank, part)))
        base = _mix(plan.seed, epoch, 2)
        batch, held, last_good = [], 0, None
        on_cpu = self.cpu_first_batch and worker == 0 and hasattr(self.dataset, "cpu_items")
        self.cpu_first_batch = False  # this worker's later passes (persistent workers keep this copy)
        if on_cpu:
            self.dataset.cpu_items = _Every()
        try:
            for _ in range((skip // workers + (part < skip % workers)) * plan.batch_size):  # read, not decoded
                i, pos, got, url = next(items)
                if isinstance(got, Sample):  # taken as decodable (not decoded): differs only if it is not and
                    # the resumed run's first batch lost every image
                    last_good = (i, (base + pos) % 2**64 if plan.train else 0, size, got, url)
            for i, pos, got, url in items:
                held += 1
                if got is not _SKIPPED:
                    args = (i, (base + pos) % 2**64 if plan.train else 0, size, got, url)
                    batch.append(self._one(*args))
                    if isinstance(got, Sample) and not isinstance(batch[-1], BadSample):
                        last_good = args
                if held == plan.batch_size:
                    if on_cpu:  # the first batch is made: the dataset splits as it will from now on
                        self.dataset.cpu_items, on_cpu = frozenset(), False
                    yield self._whole(batch, last_good)
                    batch, held = [], 0
            if held:
                yield self._whole(batch, last_good)
        except ShardReadError as e:
            yield e
        finally:
            if on_cpu:
                self.dataset.cpu_items = frozenset()

    def _whole(self, batch: list, last_good):
        """The batch collated; a training batch that lost every image (a truncated shard) takes the worker's last
        good sample again: under DDP every rank must run each step's backward, and an empty batch has none."""
        if self.plan.train and last_good is not None and all(isinstance(b, BadSample) for b in batch):
            batch = batch + [self._one(*last_good)]
        return self.collate(batch)


def in_order(index, batch_size: int, rank: int = 0, world_size: int = 1):
    """Batches of every sample of ``index`` once, rank ``rank``'s contiguous share, in order: a folder's
    ``ShardBatchSampler``, or a shard stream's plan (validation, and filling the decoded cache)."""
    if isinstance(index, ShardIndex):
        return StreamPlan(index.counts, batch_size, rank=rank, world_size=world_size)
    return ShardBatchSampler(len(index), batch_size, rank, world_size)
