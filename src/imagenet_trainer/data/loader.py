"""Loaders: worker processes hand back uint8 (or encoded) batches; the device side finishes whole batches.

``DeviceLoader`` wraps a torch ``DataLoader``. On CUDA a background thread takes the next batches
from the workers, copies them (pinned, non-blocking) and, for the GPU/hybrid paths, decodes and
crops them, all on a side stream, while the main thread trains. Pixels stay uint8 until they are on
the device; flip, normalization and the cast happen there for the whole batch, and the NCHW view of
an HWC batch is already channels_last.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field

import torch

from imagenet_trainer.data.dataset import Batch, BadSample, ImageFolderDataset, collate
from imagenet_trainer.data.slots import BatchSlots, shared_memory_free
from imagenet_trainer.data.stream import ShardStream, StreamPlan

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _freeze_objects_across_forks() -> None:
    """Worker processes are forked copies of this one, holding its objects, CUDA events and tensors too.
    If a child's garbage collector finalizes one of those (a cycle that was garbage at the fork), the
    CUDA call aborts the worker ("DataLoader worker ... killed by signal: Aborted", seen in the GPU tests).
    ``gc.freeze`` before each fork puts every existing object out of the child's collector's reach (as
    Python's documentation advises for fork without exec); the parent unfreezes them right after."""
    os.register_at_fork(before=gc.freeze, after_in_parent=gc.unfreeze)


_freeze_objects_across_forks()

PREFETCH = 2  # batches in flight per worker
DEVICE_PREFETCH = 3  # batches the CUDA producer thread prepares ahead of training
HELD_BATCHES = 2  # GPU/hybrid loaders: at most this many batches' decoded images wait for their kernels to run
WORKER_NICE = 10  # GPU runs of the CPU loader: how much lower the workers' priority is than the training process's


def usable_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity: a cpuset or ``taskset`` narrows it), in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def local_processes() -> int:
    """How many processes of this run share this machine: torchrun's (and ``--ngpu``'s) ``LOCAL_WORLD_SIZE``."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))


def worker_cores(workers: int) -> frozenset[int] | None:
    """The cores a GPU run's CPU-loader workers keep to when several ranks share this machine, or None (all).

    The cores this process may use, less the first few: as many as ``LOCAL_WORLD_SIZE`` ranks of ``workers``
    workers leave over (``build.default_workers`` sets that many aside for the ranks' own threads). Under
    DDP a rank whose training, pin-memory or NCCL thread waits for a core behind a worker holds up every
    rank's step, and the workers' lower priority (nice) alone did not prevent such waits. 2x H100, 32
    cores, compiled ResNet-50 from JPEG, 14 workers per rank kept off cores 0-3: 9,383 and 10,176 img/s
    against 8,973 and 9,832 on every core, alternated in one call (+3.5-4.6%, 2026-11-27, a patched copy);
    this code against the code before it, later that day: 9,799 against 9,658 (+1.5%), then -3.4% on a machine
    that ran everything twice as slowly. One rank alone was not measured this way, so it keeps every core.
    """
    local_procs, allowed = local_processes(), usable_cores()
    spare = len(allowed) - local_procs * workers
    if local_procs < 2 or workers < 1 or not 1 <= spare < len(allowed):
        return None
    return frozenset(allowed[spare:])


def _lower_priority(worker_id: int, cores: frozenset[int] | None = None) -> None:
    """Make a worker yield its core to the training process's threads whenever both want it; with
    ``cores``, keep it to those (``worker_cores``).

    The CPU loader's workers keep every core busy; the thread that launches the GPU's kernels and the
    pin-memory thread then wait for a core behind them, and the GPU idles meanwhile. One H100, resnet18
    eager, ``--loader cpu``: 6,990 -> 7,601 img/s (2026-11-26). Not for the hybrid loader, whose workers
    share the decoding with the GPU: there it measured +1% (resnet18) and -6% (alexnet).
    """
    try:
        os.nice(WORKER_NICE)
    except OSError:  # not permitted: keep the same priority
        pass
    if cores:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:  # cores taken away meanwhile (a changed cpuset): keep the inherited ones
            pass


def make_dataloader(dataset, batch_sampler, workers: int, pin_memory: bool, persistent: bool = True,
                    collate_fn=collate, lower_priority: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader of batches; ``workers=0`` decodes in this process (full tracebacks). With a ``StreamPlan`` for
    ``batch_sampler``, the dataset's samples come from its index's shards (``ShardStream``).

    ``lower_priority``: the workers run at a lower scheduling priority (``WORKER_NICE``), and off the cores
    set aside for the ranks' own threads when several share the machine (``worker_cores``).
    """
    kwargs = {}
    if workers > 0:
        kwargs = dict(persistent_workers=persistent, prefetch_factor=PREFETCH)
        if lower_priority:
            kwargs["worker_init_fn"] = functools.partial(_lower_priority, cores=worker_cores(workers))
    if isinstance(batch_sampler, StreamPlan):  # shards: the workers read the plan's part and make whole batches
        dataset = ShardStream(dataset.index, batch_sampler, dataset, collate_fn)
        kwargs |= dict(batch_size=None, collate_fn=_as_made)
    else:
        kwargs |= dict(batch_sampler=batch_sampler, collate_fn=collate_fn)
    return torch.utils.data.DataLoader(dataset, num_workers=workers, pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(0), **kwargs)


def _as_made(item):
    """A stream's batch, as its worker made it."""
    return item


def batch_slots(workers: int, capacity: int) -> BatchSlots | None:
    """A ring of ``PREFETCH + 1`` shared slots of ``capacity`` bytes per worker, or None (with a warning)
    when /dev/shm has too little room for them (batches then take new shared memory each time)."""
    if workers <= 0:
        return None
    need, free = workers * (PREFETCH + 1) * capacity, shared_memory_free()
    if free is not None and need > free // 2:  # leave the rest to torch's own shared tensors
        warnings.warn(f"/dev/shm has {free / 2**30:.1f} GiB free, too little for {need / 2**30:.1f} GiB of "
                      "batch slots; batches take new shared memory each time (slower)")
        return None
    return BatchSlots(workers, PREFETCH + 1, capacity)


def image_dataloader(dataset: ImageFolderDataset, batch_sampler, workers: int, pin_memory: bool,
                     persistent: bool = True) -> torch.utils.data.DataLoader:
    """A DataLoader of uint8 ``Batch``es whose workers stack into reused shared-memory slots.

    On a GPU run (``pin_memory``) the workers yield their cores to the training process (``_lower_priority``).
    """
    g = dataset.geometry
    slots = batch_slots(workers, batch_sampler.batch_size * g.n_boxes * g.crop_size ** 2 * 3)
    return make_dataloader(dataset, batch_sampler, workers, pin_memory, persistent,
                           functools.partial(collate, slots=slots), lower_priority=pin_memory)


@dataclass
class DeviceBatch:
    images: torch.Tensor  # (B, 3, H, W) float32, normalized, channels_last; (B, 5, 3, H, W) for five-crop
    labels: torch.Tensor  # (B,) int64
    bad: list[BadSample] = field(default_factory=list)
    wait: float = 0.0  # seconds the consumer waited on the loader for this batch
    indices: torch.Tensor | None = None  # (B,) positions in the index


@dataclass
class FirstBatch:
    """Where a CUDA loader's first batch spent its time: seconds from the start of its iteration (the workers'
    fork included) to the workers' first batch, then on its device side (decoding, crops, copies)."""

    workers: float
    device: float = 0.0

    def __str__(self) -> str:
        return f"the workers' first batch after {self.workers:.1f} s, its device side {self.device:.1f} s"


@contextlib.contextmanager
def _one_thread():
    """Run memory-bound batch arithmetic on this thread alone. Threads add little to it, and a woken
    OpenMP pool spins afterwards on cores that the loader workers need (on 2 cores, the loader delivers
    about 15% more this way)."""
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


class Normalizer:
    """Pixels (0..255) -> normalized float (B, 3, H, W), channels_last, with per-sample flips.

    One fused multiply-add per batch. On the CPU the output lives in one of two reused buffers (fresh
    large allocations cost more in page faults than the arithmetic), so a batch stays valid until the
    second batch after it is made; training and evaluation use each batch before taking the next.
    """

    def __init__(self, mean, std, device: torch.device):
        mean = torch.tensor(mean, dtype=torch.float32, device=device)
        std = torch.tensor(std, dtype=torch.float32, device=device)
        self.scale = 1.0 / (std * 255)  # (3,): x * scale + bias == (x / 255 - mean) / std
        self.bias = -mean / std
        self._buffers: list[torch.Tensor] = []

    def _out(self, shape) -> torch.Tensor:
        if not self._buffers or self._buffers[0].shape != shape:
            self._buffers = [torch.empty(shape), torch.empty(shape)]
        self._buffers.reverse()
        return self._buffers[0]

    def __call__(self, images: torch.Tensor, flips: torch.Tensor | None = None, any_flip: bool | None = None) -> torch.Tensor:
        """``images``: uint8 (B, H, W, 3) or (B, 5, H, W, 3), or float (B, 3, H, W).

        ``any_flip`` says whether ``flips`` has a True; pass it when ``flips`` is on a GPU, where asking would
        synchronize with the device.
        """
        if flips is not None and any_flip is None:
            any_flip = bool(flips.any())
        if images.dtype != torch.uint8:  # float NCHW: the decoded cache's resized crops
            if any_flip:
                images = torch.where(flips.view(-1, 1, 1, 1), images.flip(3), images)
            x = torch.addcmul(self.bias.view(1, 3, 1, 1), images, self.scale.view(1, 3, 1, 1))
            return x.contiguous(memory_format=torch.channels_last)
        if not images.is_cuda:
            with _one_thread():
                return self._on_cpu(images, flips, any_flip)
        if any_flip:  # no boolean-mask indexing on the GPU: it waits for the device
            images = torch.where(flips.view(-1, *([1] * (images.dim() - 1))), images.flip(-2), images)
        x = images.float()  # (..., H, W, 3); uint8 inputs make addcmul slow
        torch.addcmul(self.bias, x, self.scale, out=x)
        return x.movedim(-1, -3)  # (..., 3, H, W): the NCHW view of HWC memory is channels_last

    def _on_cpu(self, images: torch.Tensor, flips: torch.Tensor | None, any_flip: bool) -> torch.Tensor:
        x = self._out(images.shape)
        if images.numel() == 0:  # a batch of only unreadable files
            return x.movedim(-1, -3)
        *lead, height, width, _ = images.shape
        flat_in, flat_out = images.reshape(-1, height, width, 3), x.view(-1, height, width * 3)
        flipped = set(flips.nonzero().squeeze(1).tolist()) if any_flip else set()
        per_image = flat_in.shape[0] // max(1, len(flips) if flips is not None else flat_in.shape[0])
        # Over (H, W*3) rows with the per-channel factors repeated W times, the multiply-add runs on long
        # contiguous rows (SIMD) instead of broadcasting a 3-vector; one image at a time, so the float
        # copy is still in the core's cache for the multiply-add (the whole batch would go to RAM twice).
        scale, bias = self.scale.repeat(width), self.bias.repeat(width)
        for i in range(flat_in.shape[0]):
            src = flat_in[i].flip(-2) if i // per_image in flipped else flat_in[i]
            out = flat_out[i].copy_(src.reshape(height, width * 3))  # a view where the strides allow
            torch.addcmul(bias, out, scale, out=out)
        return x.movedim(-1, -3)  # (..., 3, H, W): the NCHW view of HWC memory is channels_last


class WrappedLoader:
    """What the training loop asks of a loader built on a torch ``DataLoader`` (``self.loader``).

    Over a ``continuous`` batch sampler one DataLoader iterator serves epoch after epoch, ``len(self)``
    batches each: while the last batches of an epoch train, the workers already decode the first ones of
    the next. Started afresh, each epoch would begin with every worker idle and the training waiting for
    a whole batch's decoding (on one H100 about a quarter of the time of the 13k tree's 50-batch epochs,
    2026-11-26). The iterator carries on only into the epoch that follows one taken whole; otherwise (a
    first epoch, a resumed run, an epoch left part-way) it starts again at the sampler's epoch.
    """

    loader: torch.utils.data.DataLoader
    _running = None  # the DataLoader iterator that carries on across epochs
    _next_epoch: int | None = None  # the epoch it is at, after an epoch taken whole

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def num_workers(self) -> int:
        return self.loader.num_workers

    @property
    def batch_sampler(self):
        """What orders the batches: the DataLoader's batch sampler, or a shard stream's plan."""
        plan = getattr(self.loader.dataset, "plan", None)
        return plan if plan is not None else self.loader.batch_sampler

    def _items(self):
        """The DataLoader's items, each with the ``perf_counter`` time at which this thread began to wait for it."""
        sampler = self.loader.batch_sampler
        if not getattr(sampler, "continuous", False):
            it, count = iter(self.loader), None  # a stream's workers read the plan's epoch as they start
        else:
            if self._running is None or self._next_epoch != sampler.epoch:
                self._running = iter(self.loader)
            it, count, self._next_epoch = self._running, len(self), None
        taken = 0
        while count is None or taken < count:
            t0 = time.perf_counter()
            item = next(it, None)
            if item is None:
                return
            if isinstance(item, BaseException):  # a stream's worker could not read a shard: its one-line error
                raise item
            taken += 1
            yield item, t0
        self._next_epoch = sampler.epoch + 1


def _put_unless(q: queue.Queue, stop: threading.Event, halt: threading.Event | None, item) -> bool:
    """Put ``item`` on ``q`` once there is room, unless ``stop`` (or ``halt``) is set first; whether it went on."""
    while not (stop.is_set() or (halt is not None and halt.is_set())):
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _queued(q: queue.Queue, stop: threading.Event | None = None):
    """The items a thread puts on ``q``, up to its ``None``; an exception it puts there is raised here. With
    ``stop``, also up to ``stop`` being set: a thread that finds the run stopping ends without its ``None``."""
    while True:
        try:
            item = q.get(timeout=0.1) if stop is not None else q.get()
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


class DeviceLoader(WrappedLoader):
    """Iterate ``DeviceBatch`` on ``device``; on CUDA a thread prepares batches ahead on a side stream.

    gpu_decoder: a ``GpuCropDecoder`` for loaders whose workers hand back ``MixedBatch`` items. cpu_first: their
    first batch is decoded by the workers alone (False: split as any other, for tests that compare batches).
    """

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device, mean, std,
                 gpu_decoder=None, controller=None, prefetch: int = DEVICE_PREFETCH, cpu_first: bool = True):
        self.loader = loader
        self.device = device
        self.normalize = Normalizer(mean, std, device)
        self.gpu_decoder = gpu_decoder
        self.controller = controller
        self.prefetch = prefetch
        self.first_batch: FirstBatch | None = None  # set once the first CUDA batch is ready
        self.cpu_first = cpu_first  # the workers decode the first batch whole (see ``_decode_ahead``)

    def _to_device(self, batch, hold: list | None = None, decoded: list | None = None) -> DeviceBatch:
        """The batch on the device. A ``MixedBatch``'s files are decoded on the GPU, unless ``decoded`` holds
        them decoded already (``_decode_ahead``); ``hold`` gets the decoded images, which must outlive the
        kernels that read them (see ``_iter_cuda``)."""
        labels = batch.labels.to(self.device, non_blocking=True)
        flips = batch.flips.to(self.device, non_blocking=True)
        any_flip = bool(batch.flips.any())  # asked of the CPU copy
        if isinstance(batch, Batch):
            images = self.normalize(batch.images.to(self.device, non_blocking=True), flips, any_flip)
            return DeviceBatch(images, labels, batch.bad, indices=batch.indices)
        n, size = len(batch.labels), batch.size or self.gpu_decoder.size
        x = torch.empty(n, size, size, 3, device=self.device)  # HWC memory: its NCHW view is channels_last
        if batch.lengths:
            images = decoded if decoded is not None else self.gpu_decoder.decode(batch.encoded)
            self.gpu_decoder.crop_into(x, images, batch.boxes, batch.encoded_pos, batch.flips,
                                       self.normalize.scale, self.normalize.bias)
            if hold is not None:
                hold.append(images)
        if len(batch.region_pos):  # the workers' decoded regions, in one copy, resized by the same kernel
            from imagenet_trainer.data.gpu_crop import PackedImages

            regions = PackedImages(batch.regions.to(self.device, non_blocking=True), batch.region_shapes)
            self.gpu_decoder.crop_into(x, regions, batch.region_boxes, batch.region_pos, batch.flips,
                                       self.normalize.scale, self.normalize.bias)
        if len(batch.decoded_pos):
            pos = batch.decoded_pos.to(self.device, non_blocking=True)
            dec = self.normalize(batch.decoded.to(self.device, non_blocking=True), flips[pos], any_flip)
            x[pos] = dec.movedim(-3, -1)
        return DeviceBatch(x.movedim(-1, -3), labels, batch.bad, indices=batch.indices)

    def __iter__(self):
        if self.device.type != "cuda":
            for batch, t0 in self._items():
                wait = time.perf_counter() - t0
                out = self._to_device(batch)
                out.wait = wait
                yield out
        else:
            yield from self._iter_cuda()

    def _decode_ahead(self, stop: threading.Event):
        """``_items()`` as ``(batch, waited, decoded, ready, decode_s)``, ``waited`` the seconds spent waiting for the
        workers' batch. For a GPU decoder, a thread of its own runs nvJPEG on each batch's files (``decoded``, in
        ``decode_s`` seconds) while the producer thread finishes the batch before it: torchvision's decode call
        returns only when its images are done (it waits for its own stream), and the producer's crops, copies and
        waits on its held batches ran after it, in turn. On one H100 AlexNet's training waited 38-63% of the time
        for batches whose device side took 12.7-19.8 ms each; in this thread, AlexNet from JPEG trained 3.4%
        faster (16,907 against 16,348 img/s, three alternated rounds, 1-6% each; 2026-11-27), less than the
        work it overlaps because nvJPEG's call itself then takes longer. Without a GPU decoder, the items as
        they come.

        nvJPEG's images are allocated on a stream of their own (``decoded_on``), whose memory holds nothing else,
        and ``ready`` is the event after which ``stream`` may read them. nvJPEG writes them from a stream of
        torchvision's, ordered after nothing of ours: allocated on ``stream``, they could be given memory that
        ``stream``'s kernels, queued and not yet run, still read (the previous batch's crop table, boxes or
        copies), and overwrite it under them. With the GPU kept busy, as training keeps it, that put wrong
        images in 1-3 of 30 small batches on one H100 (2026-11-27; the GPU-marked test of this).

        nvJPEG's first call in a process starts it up, which took 1.1-2.5 s on 2x H200 (2026-11-27), after a
        warm-up call on one small image too. So the workers decode the loader's very first batch whole (its items
        go in the dataset's ``cpu_items`` before the workers fork; of a shard stream, its first worker's first
        batch; its device side then took 0.7 s), and nvJPEG starts on the second batch while training compiles
        its first step. Holding the split's share at 1 until
        the first batch arrived instead gave whichever samples the workers reached meanwhile to the CPU: runs at a
        fixed split no longer trained alike, and the start-up fell on a later batch (steps 10-20 at half speed)."""
        begun = time.perf_counter()
        if self.gpu_decoder is None:
            for batch, waited_from in self._items():
                t0 = time.perf_counter()
                if self.first_batch is None:
                    self.first_batch = FirstBatch(t0 - begun)
                yield batch, t0 - waited_from, None, None, 0.0
            return
        ahead: queue.Queue = queue.Queue(maxsize=1)
        halt = threading.Event()
        put = functools.partial(_put_unless, ahead, stop, halt)
        decoded_on = torch.cuda.Stream(self.device)
        dataset = self.loader.dataset
        if self.cpu_first and self.first_batch is None and isinstance(dataset, ShardStream):
            dataset.cpu_first_batch = True  # worker 0 decodes its first batch whole
        elif self.cpu_first and self.first_batch is None and hasattr(dataset, "cpu_items"):
            dataset.cpu_items = frozenset(next(iter(self.loader.batch_sampler), []))

        def decode():
            try:
                if self.device.index is not None:
                    torch.cuda.set_device(self.device.index)
                for batch, waited_from in self._items():
                    t0 = time.perf_counter()
                    if self.first_batch is None:
                        self.first_batch = FirstBatch(t0 - begun)
                        if isinstance(dataset, ShardStream):  # workers started later split from their first batch
                            dataset.cpu_first_batch = False
                    decoded = ready = None
                    if not isinstance(batch, Batch) and batch.lengths:  # files for the GPU, as _to_device tells
                        with torch.cuda.stream(decoded_on):
                            decoded = self.gpu_decoder.decode(batch.encoded)  # decoded_on waits for nvJPEG
                            ready = torch.cuda.Event()
                            ready.record(decoded_on)
                    if not put((batch, t0 - waited_from, decoded, ready, time.perf_counter() - t0)):
                        return
                put(None)
            except BaseException as e:  # hand the error on
                put(e)

        thread = threading.Thread(target=decode, name="device-decode", daemon=True)
        thread.start()
        try:
            yield from _queued(ahead, stop)
        finally:
            halt.set()
            thread.join(timeout=5)

    def _iter_cuda(self):
        """A producer thread fills a small queue; each item carries the event its consumer waits on."""
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        stream = torch.cuda.Stream(self.device)

        def produce():
            # A batch's decoded images stay referenced until the kernels that read them have run. Freed
            # earlier, their memory could go to the next batch's images, which nvJPEG writes through a
            # stream of its own, not ordered after this stream's kernels.
            in_use: collections.deque = collections.deque()
            try:
                if self.device.index is not None:
                    torch.cuda.set_device(self.device.index)
                for batch, waited, decoded, ready, decode_s in self._decode_ahead(stop):
                    t0 = time.perf_counter()
                    if self.controller is not None:
                        self.controller.producer_waited(waited)
                    held: list = []
                    with torch.cuda.stream(stream):
                        if ready is not None:
                            stream.wait_event(ready)
                        out = self._to_device(batch, held, decoded)
                        event = torch.cuda.Event()
                        event.record(stream)
                    del decoded
                    if held:
                        in_use.append((event, held))
                    while in_use and (len(in_use) > HELD_BATCHES or in_use[0][0].query()):
                        in_use[0][0].synchronize()  # the kernels that read them have run ...
                        in_use.popleft()  # ... before the images go back to the allocator
                    t1 = time.perf_counter()
                    if self.first_batch is not None and not self.first_batch.device:
                        self.first_batch.device = decode_s + t1 - t0
                    _put_unless(q, stop, None, (out, event))
                    if self.controller is not None:
                        self.controller.gpu_time(decode_s + t1 - t0)
                        self.controller.producer_blocked(time.perf_counter() - t1)
                    if stop.is_set():
                        return
                q.put(None)
            except BaseException as e:  # hand the error to the consumer
                q.put(e)
            finally:  # the epoch's end, a stop or an error: the last batches' kernels may still be queued
                while in_use:
                    with contextlib.suppress(Exception):
                        in_use[0][0].synchronize()
                    in_use.popleft()

        thread = threading.Thread(target=produce, name="device-prefetch", daemon=True)
        thread.start()
        main = torch.cuda.current_stream(self.device)
        items = _queued(q)
        try:
            while True:
                t0 = time.perf_counter()
                item = next(items, None)
                wait = time.perf_counter() - t0
                if item is None:
                    return
                out, event = item
                main.wait_event(event)
                out.images.record_stream(main)
                out.labels.record_stream(main)
                out.wait = wait
                if self.controller is not None:
                    self.controller.training_waited(wait)
                    self.controller.tick(time.perf_counter())
                yield out
        finally:
            stop.set()
            thread.join(timeout=5)
