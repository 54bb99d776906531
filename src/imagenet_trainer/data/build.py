"""From a ``TrainConfig`` to the train and val loaders for one rank."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from imagenet_trainer.config import TrainConfig, auto_batch_size, auto_sizes
from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex, build_index, find_split_dirs, stray_images
from imagenet_trainer.data.loader import (DEVICE_PREFETCH, IMAGENET_MEAN, IMAGENET_STD, PREFETCH, DeviceLoader,
                                          batch_slots, image_dataloader, local_processes, make_dataloader,
                                          usable_cores)
from imagenet_trainer.data.sampler import EpochBatchSampler, ShardBatchSampler
from imagenet_trainer.data.shards import SampleIndex, ShardIndex, is_shard_data, load_shard_splits
from imagenet_trainer.data.stream import StreamPlan, in_order
from imagenet_trainer.data.stats import estimate_mean_std
from imagenet_trainer.errors import UsageError


@dataclass
class DataBundle:
    train: DeviceLoader
    val: DeviceLoader | None
    train_index: FileIndex
    val_index: FileIndex | None
    classes: list[str]
    mean: list[float]
    std: list[float]
    loader: str = "cpu"  # what feeds training: cpu, gpu, hybrid, naive, or "gpu cache" / "ram cache"
    bad: list = field(default_factory=list)  # unreadable images found while filling the train cache (every rank's)
    shard_bad: list = field(default_factory=list)  # ... and this rank's share of the val cache
    timings: dict = field(default_factory=dict)  # seconds: index, cache, probe
    choice: object = None  # --loader auto on a GPU: the probe's ``LoaderChoice``


def default_workers(compiled: bool = False) -> int:
    """Per process: its share of the cores (processes of one machine split them), at most 16, less one for
    itself when it runs alone. When several share the machine, each rank's training thread, pin-memory
    and device threads compete with the workers for the cores: an eager model's rank keeps 3/8 of its
    share, a compiled one's two cores (its training thread launches a few graphs, not every kernel).
    2x H200, 32 cores, 2 ranks of eager ResNet-50 from JPEG: 15 workers per rank gave 6,492 img/s and 12
    gave 6,889 (2026-11-26); 12 gave 7,447 / 7,532, 10 gave 7,613 / 7,896 and 8 gave 7,707 (the same day,
    longer runs). 2x H100, 32 cores, compiled ResNet-50, CPU loader, 600 steps: 10 workers per rank
    8,916 img/s, 14 gave 10,000 and 15 gave 9,984 (2026-11-26). On GPU runs the CPU loader's workers stay off
    the cores set aside (``loader.worker_cores``)."""
    local_procs = local_processes()
    share = len(usable_cores()) // local_procs
    reserve = 1 if local_procs == 1 else 2 if compiled else max(1, 3 * share // 8)
    return max(1, min(16, share - reserve))


def resolve_workers(cfg: TrainConfig) -> int:
    """The run's workers per process: ``--workers``, or ``default_workers`` for -1 (auto)."""
    return default_workers(cfg.backend == "compile") if cfg.workers < 0 else cfg.workers


INDEX_SECONDS: dict[tuple, float] = {}  # time the index of each (data, val_dir, cache_dir) took to build or load
_SHARD_INDEXES: dict[tuple, tuple] = {}  # shard indexes read in this process (remote ones cost a request each)
FILESYSTEM = None  # an fsspec filesystem that opens every shard URL (``train(cfg, filesystem=fs)``)

Index = FileIndex | ShardIndex


def load_indexes(cfg: TrainConfig) -> tuple[Index, Index | None]:
    """The train and val indexes of ``--data``: a folder tree's files, or a set of tar shards (``data.shards``)."""
    t0 = time.perf_counter()
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    key = (cfg.data, cfg.val_dir, cfg.cache_dir)
    if is_shard_data(cfg.data):
        if (key, id(FILESYSTEM)) not in _SHARD_INDEXES:
            _SHARD_INDEXES[key, id(FILESYSTEM)] = load_shard_splits(cfg.data, cfg.val_dir, filesystem=FILESYSTEM,
                                                                    cache_dir=cache)
        train_index, val_index = _SHARD_INDEXES[key, id(FILESYSTEM)]
    else:
        train_dir, val_dir = find_split_dirs(cfg.data, cfg.val_dir)
        train_index = build_index(train_dir, cache_dir=cache)
        val_index = build_index(val_dir, classes=train_index.classes, cache_dir=cache) if val_dir else None
    INDEX_SECONDS.setdefault(key, time.perf_counter() - t0)  # the first call's figure: later ones hit the cache
    return train_index, val_index


def few_images(index: Index, n: int):
    """An index of ``n`` images or so, read as files are: a folder's own index, or the first ``n`` samples of a
    shard split held in memory (``shards.SampleIndex``)."""
    return SampleIndex.first(index, n) if isinstance(index, ShardIndex) else index


def normalization(cfg: TrainConfig, index: FileIndex) -> tuple[list[float], list[float]]:
    if cfg.normalize == "imagenet":
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if cfg.normalize == "auto":
        cache = Path(cfg.cache_dir) if cfg.cache_dir else None
        return estimate_mean_std(few_images(index, 1000), cfg.crop_size, cfg.image_size, cache_dir=cache)
    if cfg.normalize == "fixed":
        if not (isinstance(cfg.mean, list) and isinstance(cfg.std, list) and len(cfg.mean) == len(cfg.std) == 3
                and all(v > 0 for v in cfg.std)):
            raise UsageError("normalize fixed needs mean and std, three numbers each (std above 0), in the config")
        return [float(v) for v in cfg.mean], [float(v) for v in cfg.std]
    raise UsageError(f"--normalize {cfg.normalize}: unknown; choose imagenet, auto or fixed")


def steps_per_epoch(cfg: TrainConfig, n_train: int) -> int:
    """Optimizer steps per epoch: ``--epoch-size``, or one pass over ``n_train`` images."""
    return cfg.epoch_size or max(n_train // cfg.batch_size, 1)


def resolve_sizes(cfg: TrainConfig, train_index: FileIndex, world_size: int = 1, side: int | None = None) -> TrainConfig:
    """``cfg`` with ``--crop-size``, ``--image-size`` and ``--batch-size`` chosen from the train set where they
    are None (``config.auto_sizes``, ``config.auto_batch_size``); ``side``: its median shorter side, if known."""
    side = median_image_side(train_index) if side is None else side
    crop, size = auto_sizes(side, cfg.crop_size, cfg.image_size)
    n = len(train_index) if cfg.epoch_size is None else 2**62  # a fixed --epoch-size: no epoch to keep long
    batch = cfg.batch_size or auto_batch_size(n, world_size * max(cfg.accum, 1))
    return cfg.replace(crop_size=crop, image_size=size, batch_size=batch)


def build_data(cfg: TrainConfig, device: torch.device, rank: int = 0, world_size: int = 1,
               choice=None) -> DataBundle:
    """Index the data, then build this rank's train and val loaders (uint8 in workers, floats on device).

    ``choice``: the loader ``--loader auto`` took (``engine.probe.LoaderChoice``: its kind and the hybrid
    loader's first CPU share), made by the caller before; without it, auto is hybrid on a GPU.
    """
    train_index, val_index = load_indexes(cfg)
    if None in (cfg.crop_size, cfg.image_size, cfg.batch_size):
        cfg = resolve_sizes(cfg, train_index, world_size)
    cfg.check()
    timings = {"index": INDEX_SECONDS[(cfg.data, cfg.val_dir, cfg.cache_dir)]}
    mean, std = normalization(cfg, train_index)
    if cfg.batch_size % (world_size * cfg.accum):
        raise UsageError(f"--batch-size {cfg.batch_size} is the global batch; it must divide by the {world_size} "
                         f"processes x --accum {cfg.accum}")
    local_batch = cfg.batch_size // world_size // cfg.accum  # one micro-batch of one process
    steps = steps_per_epoch(cfg, len(train_index))
    workers = resolve_workers(cfg)
    train_geometry = training_geometry(cfg)
    val_geometry = Geometry("center", cfg.crop_size, cfg.image_size)

    def sampler(continuous: bool, labels=None) -> EpochBatchSampler:
        """The train sampler; ``continuous``: the workers start on the next epoch while this one ends
        (``WrappedLoader``), never past the run's last epoch."""
        return EpochBatchSampler(train_index.labels if labels is None else labels, local_batch, cfg.seed,
                                 steps * cfg.accum, cfg.sampling, rank, world_size,
                                 functools.partial(crop_size_at, cfg), continuous, cfg.epochs, cfg.repeated_aug)

    if rank == 0 and len(train_index) < cfg.batch_size and cfg.epoch_size is None:
        print(f"note: train/ has {len(train_index)} images, fewer than --batch-size {cfg.batch_size}; "
              "each epoch is one batch drawn with repetition", file=sys.stderr)
    for index in [i for i in (train_index, val_index) if isinstance(i, FileIndex) and rank == 0]:
        stray = stray_images(index.root)
        if stray:
            what = (f"{stray[0]} is" if len(stray) == 1 else f"{len(stray)} images (such as {stray[0]}) are")
            print(f"note: {what} outside the class folders of {index.root}, so not used; move each image into "
                  "the folder of its class", file=sys.stderr)
    storage, side = cache_storage(cfg, device, train_index, val_index, rank, world_size)
    bundle = DataBundle(None, None, train_index, val_index, train_index.classes, mean, std, timings=timings)
    if storage is not None:
        from imagenet_trainer.data.cache import CachedEvalLoader, CachedTrainLoader, DecodedImages

        t0 = time.perf_counter()
        train_cache = DecodedImages(train_index, Geometry("full", side, side), storage, workers)
        labels = train_cache.index_labels() if isinstance(train_index, ShardIndex) else None
        bundle.train = CachedTrainLoader(train_cache, sampler(False, labels), train_geometry, device, mean, std)
        bundle.bad = list(train_cache.bad)
        if val_index is not None:
            val_cache = DecodedImages(val_index, val_geometry, storage, workers, rank, world_size)
            bundle.val = CachedEvalLoader(val_cache, local_batch, device, mean, std)
            bundle.shard_bad = list(val_cache.bad)
        timings["cache"] = time.perf_counter() - t0
        bundle.loader = f"{storage.type.replace('cuda', 'gpu').replace('cpu', 'ram')} cache"
        if rank == 0:
            print(f"cached {len(train_cache):,} train images at {side} px and "
                  f"{len(bundle.val.cache) if bundle.val else 0:,} val crops at {cfg.crop_size} px in "
                  f"{timings['cache']:.1f} s", file=sys.stderr)
        return bundle
    bundle.loader = pick_loader(cfg.loader, device)
    start = cfg.cpu_share
    if choice is not None and cfg.loader == "auto":
        bundle.loader, bundle.choice, timings["probe"] = choice.kind, choice, choice.seconds
        start = choice.start_share if choice.kind == "hybrid" else None
    if isinstance(train_index, ShardIndex):
        if bundle.loader == "naive" or cfg.sampling != "shuffle" or cfg.repeated_aug > 1:
            what = ("--loader naive" if bundle.loader == "naive" else
                    "--sampling balanced" if cfg.sampling != "shuffle" else "--repeated-aug")
            raise UsageError(f"{what}: takes images in an order that a stream of shards does not give; leave it "
                             "out, or use --cache ram (a set that fits in memory) or a folder of images")
        plan = StreamPlan(train_index.counts, local_batch, cfg.seed, steps * cfg.accum, rank, world_size,
                          functools.partial(crop_size_at, cfg), cfg.shuffle_buffer)
    else:
        plan = sampler(True)
    if bundle.loader == "naive":
        from imagenet_trainer.data.naive import NaiveDataset, NaiveLoader

        if train_geometry.kind not in ("rrc", "pad"):
            raise UsageError(f"--loader naive: reproduces torchvision's RandomResizedCrop and RandomCrop(padding) "
                             f"only; use --train-crop rrc or pad, not {cfg.train_crop}")
        bundle.train = NaiveLoader(NaiveDataset(train_index, train_geometry, mean, std, cfg.auto_augment),
                                   sampler(False), workers, device)
        if val_index is not None:
            bundle.val = NaiveLoader(NaiveDataset(val_index, val_geometry, mean, std),
                                     ShardBatchSampler(len(val_index), local_batch, rank, world_size), workers, device)
        return bundle
    bundle.train = make_train_loader(bundle.loader, train_index, train_geometry, plan, workers, device, mean, std,
                                     start, fixed=cfg.cpu_share is not None)
    if val_index is not None:
        bundle.val = make_val_loader(val_index, val_geometry, local_batch, workers, device, mean, std, rank, world_size)
    return bundle


def crop_size_at(cfg: TrainConfig, epoch: int) -> int | None:
    """Progressive resizing: the crop side for 1-based ``epoch``, or None for the configured size.

    ``prog_resize = [start, end]`` grows the crop linearly from ``start`` x crop_size at the first
    epoch to the full size at ``end`` of the run (a share of --epochs), in steps of 8 px.
    """
    if not cfg.prog_resize:
        return None
    start, end = cfg.prog_resize
    last = max(1, round(end * cfg.epochs))
    t = 1.0 if last <= 1 else min(1.0, (epoch - 1) / (last - 1))
    size = cfg.crop_size * (start + (1 - start) * t)
    return max(8, min(cfg.crop_size, int(round(size / 8)) * 8))


def training_geometry(cfg: TrainConfig) -> Geometry:
    """The training crops' geometry (``--train-crop auto`` taken as rrc: train() resolves it from the data)."""
    crop = "rrc" if cfg.train_crop == "auto" else cfg.train_crop
    return Geometry(crop, cfg.crop_size, cfg.image_size, scale=(cfg.rrc_min_scale, 1.0))


def cache_plan(cfg: TrainConfig, device: torch.device, train_index: FileIndex, val_index: FileIndex | None,
               world_size: int = 1) -> tuple[str, str, int]:
    """(``off``, ``ram`` or ``gpu``, why, side): whether ``--cache`` keeps the decoded sets, where, and the side of
    the train cache's squares (``cache_side``)."""
    from imagenet_trainer.data.cache import choose_cache

    if cfg.loader == "naive":
        if cfg.cache not in ("auto", "off"):
            raise UsageError(f"--loader naive decodes every epoch by design; drop --cache {cfg.cache}")
        return "off", "--loader naive", cfg.image_size
    n_val = len(val_index) // world_size + 1 if val_index is not None else 0
    val_bytes = n_val * cfg.crop_size ** 2 * 3
    mode, why = choose_cache(cfg.cache, len(train_index) * cfg.image_size ** 2 * 3 + val_bytes, device)
    if mode == "off":
        return mode, why, cfg.image_size
    side = cache_side(train_index, cfg.image_size)
    if side > cfg.image_size:  # squares at the photos' longer side where they fit too, else at the resize
        with contextlib.suppress(UsageError):
            larger = choose_cache(cfg.cache, len(train_index) * side ** 2 * 3 + val_bytes, device)
            if larger[0] == mode:
                return (*larger, side)
    return mode, why, cfg.image_size


def cache_storage(cfg: TrainConfig, device: torch.device, train_index: FileIndex, val_index: FileIndex | None,
                  rank: int = 0, world_size: int = 1) -> tuple[torch.device | None, int]:
    """Where ``--cache`` keeps the decoded sets (the training device or the CPU, or None for no cache), and the
    side of the train cache's squares."""
    mode, why, side = cache_plan(cfg, device, train_index, val_index, world_size)
    side = smallest_over_ranks(side, device)  # every rank trains at one resolution, whatever memory each has
    if rank == 0 and cfg.cache == "auto" and cfg.loader != "naive":
        print(why + ("" if mode == "off" else f" ({mode}); --cache off decodes JPEGs every epoch instead"),
              file=sys.stderr)
    if mode == "off":
        return None, side
    return (device if mode == "gpu" else torch.device("cpu")), side


def smallest_over_ranks(value: int, device: torch.device) -> int:
    """The smallest ``value`` over the processes of an initialized process group (else ``value``)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    t = torch.tensor([value], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def make_val_loader(index: Index, geometry: Geometry, batch_size: int, workers: int, device: torch.device,
                    mean, std, rank: int = 0, world_size: int = 1) -> DeviceLoader:
    loader = image_dataloader(ImageFolderDataset(index, geometry), in_order(index, batch_size, rank, world_size),
                              workers, device.type == "cuda")
    return DeviceLoader(loader, device, mean, std)


def pick_loader(kind: str, device: torch.device) -> str:
    """``auto``: the workers decode on a CPU run; on a GPU run, hybrid (``engine.probe``, run by ``train`` before
    the data is built, may choose the CPU loader instead, and hands its choice to ``build_data``)."""
    if kind in ("gpu", "hybrid") and device.type != "cuda":
        raise UsageError(f"--loader {kind} needs a CUDA device; use --loader cpu")
    if kind == "auto":
        return "hybrid" if device.type == "cuda" else "cpu"
    return kind


def make_train_loader(kind: str, index: FileIndex, geometry: Geometry, sampler, workers: int,
                      device: torch.device, mean, std, cpu_share: float | None = None,
                      fixed: bool | None = None) -> DeviceLoader:
    """The training loader of kind cpu, gpu or hybrid (``auto`` resolved by ``pick_loader``).

    cpu_share: the hybrid loader's CPU share (None: ``SplitController.START``); ``fixed``: keep it there
    (default: when it is given), else the controller moves it from there.
    """
    from imagenet_trainer.data.hybrid import EncodedFolderDataset, GpuCropDecoder, SplitController, collate_mixed

    kind = pick_loader(kind, device)
    pin = device.type == "cuda"
    if kind == "cpu":
        return DeviceLoader(image_dataloader(ImageFolderDataset(index, geometry), sampler, workers, pin),
                            device, mean, std)
    if cpu_share is not None and not 0.0 <= cpu_share <= 1.0:
        raise UsageError(f"--cpu-share {cpu_share}: must be between 0 and 1")
    start = 0.0 if kind == "gpu" else (SplitController.START if cpu_share is None else cpu_share)
    dataset = EncodedFolderDataset(index, geometry, cpu_share=start)
    controller = None
    if kind == "hybrid":  # a new split reaches training after the batches already in flight
        controller = SplitController(dataset, lag=workers * PREFETCH + DEVICE_PREFETCH,
                                     fixed=cpu_share is not None if fixed is None else fixed)
    # One slot per batch holds its CPU-decoded regions and crops and its files' bytes: room for regions
    # of 2.5 crops' pixels each on average (300-520 px JPEGs to 224 px: 1.6), which JPEGs smaller than a
    # crop's pixels also fit (bigger batches take new memory, slower). Pages are mapped on first use.
    slots = batch_slots(workers, sampler.batch_size * geometry.crop_size ** 2 * 3 * 5 // 2)
    loader = make_dataloader(dataset, sampler, workers, pin, collate_fn=functools.partial(collate_mixed, slots=slots))
    return DeviceLoader(loader, device, mean, std, GpuCropDecoder(device, geometry.crop_size), controller)


def image_sizes(index: Index, samples: int = 64) -> list[tuple[int, int]]:
    """(width, height) of up to ``samples`` train images spread over the index, read from their headers."""
    from imagenet_trainer.data.decode import DecodeError, image_size

    index = few_images(index, samples)
    sizes = []
    step = max(1, len(index) // samples)
    for i in range(0, len(index), step)[:samples]:
        try:
            sizes.append(tuple(image_size(index.read(i, 65536))))  # the header is at the start
        except (OSError, DecodeError):
            continue
    return sizes


def median_image_side(index: Index, samples: int = 64) -> int:
    """The median shorter side of up to ``samples`` train images, read from their headers."""
    sides = sorted(min(s) for s in image_sizes(index, samples))
    return int(sides[len(sides) // 2]) if sides else 0


def cache_side(index: Index, image_size: int, samples: int = 64) -> int:
    """The side of the squares the train cache keeps whole images in: the photos' longer side (its 90th
    percentile over ``samples`` headers, up to a multiple of 16), at least ``image_size`` and at most twice it.

    A whole photo squeezed to an ``image_size`` square loses pixels along its longer side: a crop of it then holds
    fewer pixels than the JPEG path's crop of the same box. Kept at its longer side, the crop is resampled from
    as many pixels as the photo has (Caltech-101's 128 x 178 median photo: 146 px squares shrank its long axis
    by a fifth). Twice the resize bounds the memory of panoramas and large photos.
    """
    longs = sorted(max(s) for s in image_sizes(index, samples))
    if not longs:
        return image_size
    p90 = longs[-(-9 * len(longs) // 10) - 1]  # the nearest rank
    if p90 <= image_size:  # photos no larger than the resize (CIFAR's 32 px, MNIST's 28): squares at the resize
        return image_size
    return int(min(-(-p90 // 16) * 16, 2 * image_size))
