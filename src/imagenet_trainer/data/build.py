"""From a ``TrainConfig`` to the train and val loaders for one rank."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex, build_index, find_split_dirs
from imagenet_trainer.data.loader import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, make_dataloader
from imagenet_trainer.data.sampler import EpochBatchSampler, ShardBatchSampler
from imagenet_trainer.data.stats import estimate_mean_std
from imagenet_trainer.errors import UsageError

TRAIN_CROPS = ("rrc", "seed")
LOADERS = ("auto", "cpu", "gpu", "hybrid")
SAMPLINGS = ("shuffle", "balanced")


@dataclass
class DataBundle:
    train: DeviceLoader
    val: DeviceLoader | None
    train_index: FileIndex
    val_index: FileIndex | None
    classes: list[str]
    mean: list[float]
    std: list[float]


def default_workers() -> int:
    """One worker per core the process may use, at most 16, leaving one for the main process."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(16, cores - 1))


def load_indexes(cfg: TrainConfig) -> tuple[FileIndex, FileIndex | None]:
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    train_dir, val_dir = find_split_dirs(cfg.data, cfg.val_dir)
    train_index = build_index(train_dir, cache_dir=cache)
    val_index = build_index(val_dir, classes=train_index.classes, cache_dir=cache) if val_dir else None
    return train_index, val_index


def normalization(cfg: TrainConfig, index: FileIndex) -> tuple[list[float], list[float]]:
    if cfg.normalize == "imagenet":
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if cfg.normalize == "auto":
        cache = Path(cfg.cache_dir) if cfg.cache_dir else None
        return estimate_mean_std(index, cfg.crop_size, cfg.image_size, cache_dir=cache)
    raise UsageError(f"--normalize {cfg.normalize}: unknown; choose imagenet or auto")


def check_data_options(cfg: TrainConfig) -> None:
    if cfg.train_crop not in TRAIN_CROPS:
        raise UsageError(f"--train-crop {cfg.train_crop}: unknown; choose one of {', '.join(TRAIN_CROPS)}")
    if cfg.sampling not in SAMPLINGS:
        raise UsageError(f"--sampling {cfg.sampling}: unknown; choose one of {', '.join(SAMPLINGS)}")
    if cfg.crop_size < 8 or cfg.image_size < cfg.crop_size:
        raise UsageError(f"--crop-size {cfg.crop_size} / --image-size {cfg.image_size}: need 8 <= crop-size <= image-size")
    if cfg.loader not in LOADERS:
        raise UsageError(f"--loader {cfg.loader}: unknown; choose one of {', '.join(LOADERS)}")
    if cfg.batch_size < 1:
        raise UsageError(f"--batch-size {cfg.batch_size}: must be at least 1")
    if cfg.epoch_size is not None and cfg.epoch_size < 1:
        raise UsageError(f"--epoch-size {cfg.epoch_size}: must be at least 1")


def build_data(cfg: TrainConfig, device: torch.device, rank: int = 0, world_size: int = 1) -> DataBundle:
    """Index the folders, then build this rank's train and val loaders (uint8 in workers, floats on device)."""
    check_data_options(cfg)
    train_index, val_index = load_indexes(cfg)
    mean, std = normalization(cfg, train_index)
    if cfg.accum < 1:
        raise UsageError(f"--accum {cfg.accum}: must be at least 1")
    if cfg.batch_size % (world_size * cfg.accum):
        raise UsageError(f"--batch-size {cfg.batch_size} is the global batch; it must divide by the {world_size} "
                         f"processes x --accum {cfg.accum}")
    local_batch = cfg.batch_size // world_size // cfg.accum  # one micro-batch of one process
    steps = cfg.epoch_size or max(len(train_index) // cfg.batch_size, 1)  # optimizer steps per epoch
    workers = default_workers() if cfg.workers < 0 else cfg.workers
    pin = device.type == "cuda"
    train_geometry = Geometry(cfg.train_crop, cfg.crop_size, cfg.image_size, scale=(cfg.rrc_min_scale, 1.0))
    sampler = EpochBatchSampler(train_index.labels, local_batch, cfg.seed, steps * cfg.accum, cfg.sampling,
                                rank, world_size)
    if len(train_index) < cfg.batch_size and cfg.epoch_size is None:
        print(f"note: train/ has {len(train_index)} images, fewer than --batch-size {cfg.batch_size}; "
              "each epoch is one batch drawn with repetition", file=sys.stderr)
    train = make_train_loader(cfg.loader, train_index, train_geometry, sampler, workers, device, mean, std,
                              cfg.cpu_share)
    val = None
    if val_index is not None:
        val = make_val_loader(val_index, Geometry("center", cfg.crop_size, cfg.image_size), local_batch,
                              workers, device, mean, std, rank, world_size)
    return DataBundle(train, val, train_index, val_index, train_index.classes, mean, std)


def make_val_loader(index: FileIndex, geometry: Geometry, batch_size: int, workers: int, device: torch.device,
                    mean, std, rank: int = 0, world_size: int = 1) -> DeviceLoader:
    sampler = ShardBatchSampler(len(index), batch_size, rank, world_size)
    loader = make_dataloader(ImageFolderDataset(index, geometry), sampler, workers, device.type == "cuda")
    return DeviceLoader(loader, device, mean, std)


def pick_loader(kind: str, device: torch.device) -> str:
    """``auto``: the workers decode on a CPU run; on a GPU run the hybrid split adapts between the two."""
    if kind in ("gpu", "hybrid") and device.type != "cuda":
        raise UsageError(f"--loader {kind} needs a CUDA device; use --loader cpu")
    if kind == "auto":
        return "hybrid" if device.type == "cuda" else "cpu"
    return kind


def make_train_loader(kind: str, index: FileIndex, geometry: Geometry, sampler, workers: int,
                      device: torch.device, mean, std, cpu_share: float | None = None) -> DeviceLoader:
    """The training loader of kind cpu, gpu or hybrid (``auto`` resolved by ``pick_loader``)."""
    from imagenet_trainer.data.hybrid import EncodedFolderDataset, GpuCropDecoder, SplitController, collate_mixed

    kind = pick_loader(kind, device)
    pin = device.type == "cuda"
    if kind == "cpu":
        return DeviceLoader(make_dataloader(ImageFolderDataset(index, geometry), sampler, workers, pin),
                            device, mean, std)
    if cpu_share is not None and not 0.0 <= cpu_share <= 1.0:
        raise UsageError(f"--cpu-share {cpu_share}: must be between 0 and 1")
    start = 0.0 if kind == "gpu" else (0.5 if cpu_share is None else cpu_share)
    dataset = EncodedFolderDataset(index, geometry, cpu_share=start)
    controller = SplitController(dataset, fixed=cpu_share is not None) if kind == "hybrid" else None
    loader = make_dataloader(dataset, sampler, workers, pin, collate_fn=collate_mixed)
    return DeviceLoader(loader, device, mean, std, GpuCropDecoder(device, geometry.crop_size), controller)


def median_image_side(index: FileIndex, samples: int = 64) -> int:
    """The median shorter side of up to ``samples`` train images, read from their headers."""
    from imagenet_trainer.data.decode import DecodeError, image_size

    sides = []
    step = max(1, len(index) // samples)
    for i in range(0, len(index), step)[:samples]:
        try:
            with open(index.path(i), "rb") as f:
                sides.append(min(image_size(f.read(65536))))
        except (OSError, DecodeError):
            continue
    return int(sorted(sides)[len(sides) // 2]) if sides else 0
