"""Decoded cache: a small dataset decoded once, kept as uint8 on the GPU or in RAM.

``--cache gpu|ram`` decodes the training set once, each image as its central square at
``--image-size`` px (CIFAR's 32 px images are kept whole), and the val set once, as its final
centre crops. Every epoch then takes its batches straight from memory: random-resized crops (one
``roi_align`` call per batch, the same box rule as the JPEG path) or padded crops (one gather),
flips and normalization run on the training device for the whole batch, so nothing is decoded
again and no worker is needed.
``--cache auto`` turns this on when the decoded sets fit comfortably (CIFAR-10, Imagenette), and
says so.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex
from imagenet_trainer.data.loader import DeviceBatch, Normalizer, image_dataloader
from imagenet_trainer.data.sampler import EpochBatchSampler, ShardBatchSampler
from imagenet_trainer.errors import UsageError

CACHE_MODES = ("auto", "off", "ram", "gpu")
GPU_SHARE = 0.25  # auto and gpu: the caches may take at most this share of the GPU's free memory
RAM_SHARE = 0.25  # auto and ram: ... and this share of the machine's available memory
AUTO_LIMIT = 16 * 2**30  # auto: never more than this in all


def available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def choose_cache(mode: str, need: int, device: torch.device) -> tuple[str, str]:
    """(``off``, ``ram`` or ``gpu``, why) for caches of ``need`` bytes in all."""
    if mode not in CACHE_MODES:
        raise UsageError(f"--cache {mode}: unknown; choose one of {', '.join(CACHE_MODES)}")
    if mode == "off":
        return "off", "--cache off"
    gb = need / 2**30
    gpu_room = torch.cuda.mem_get_info(device)[0] * GPU_SHARE if device.type == "cuda" else 0
    ram_room = available_ram() * RAM_SHARE
    if mode == "gpu":
        if device.type != "cuda":
            raise UsageError("--cache gpu needs a CUDA device; use --cache ram")
        if need > gpu_room:
            raise UsageError(f"--cache gpu: the decoded images need {gb:.1f} GB, more than a quarter of the GPU's "
                             f"free memory ({gpu_room / 2**30:.1f} GB); use --cache ram, a smaller --image-size, "
                             "or --cache off")
        return "gpu", "--cache gpu"
    if mode == "ram":
        if need > ram_room:
            raise UsageError(f"--cache ram: the decoded images need {gb:.1f} GB, more than a quarter of the "
                             f"available memory ({ram_room / 2**30:.1f} GB); use a smaller --image-size or --cache off")
        return "ram", "--cache ram"
    if need <= min(gpu_room, AUTO_LIMIT):
        return "gpu", f"--cache auto: the decoded set ({gb:.2f} GB) fits on the GPU"
    if device.type == "cpu" and need <= min(ram_room, AUTO_LIMIT):
        return "ram", f"--cache auto: the decoded set ({gb:.2f} GB) fits in memory"
    return "off", f"--cache auto: the decoded set ({gb:.1f} GB) is too large to cache; decoding JPEGs each epoch"


class DecodedImages:
    """Every readable image of ``index`` decoded with ``geometry`` (one box each): uint8 (N, S, S, 3).

    ``rows[i]`` is image i's row, or -1 when it could not be read (those are in ``bad``); ``labels``
    and ``indices`` (the position in the index) follow the rows. With ``world_size`` > 1 only this
    rank's contiguous share of the index is decoded (its val shard, as ``ShardBatchSampler`` splits it).
    """

    def __init__(self, index: FileIndex, geometry: Geometry, storage: torch.device, workers: int,
                 rank: int = 0, world_size: int = 1, batch_size: int = 256):
        if geometry.random or geometry.n_boxes != 1:
            raise ValueError("the cache holds one fixed crop per image")
        sampler = ShardBatchSampler(len(index), batch_size, rank, world_size)
        s = geometry.crop_size
        pin = storage.type == "cuda"
        self.images = torch.empty(sampler.stop - sampler.start, s, s, 3, dtype=torch.uint8, device=storage)
        self.rows = np.full(len(index), -1, dtype=np.int64)
        labels, indices, self.bad = [], [], []
        loader = image_dataloader(ImageFolderDataset(index, geometry), sampler, workers, pin, persistent=False)
        n = 0
        for batch in loader:
            self.bad.extend(batch.bad)
            k = len(batch.labels)
            if k:  # a batch of only unreadable files has no pixels
                self.images[n:n + k].copy_(batch.images, non_blocking=pin)
                self.rows[batch.indices.numpy()] = np.arange(n, n + k)
                labels.append(batch.labels)
                indices.append(batch.indices)
                n += k
        self.images = self.images[:n]
        self.labels = torch.cat(labels).to(storage) if labels else torch.empty(0, dtype=torch.int64, device=storage)
        self.indices = torch.cat(indices) if indices else torch.empty(0, dtype=torch.int64)
        if pin:
            torch.cuda.synchronize(storage)

    def __len__(self) -> int:
        return len(self.images)


def sample_uniforms(seeds: np.ndarray, k: int) -> torch.Tensor:
    """(n, k) float64 uniforms in [0, 1), a fixed function of each sample's seed (splitmix64).

    A sample's crop and flip then depend on its seed alone, as on the JPEG path, not on how a batch
    is split between processes.
    """
    with np.errstate(over="ignore"):
        z = seeds.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15) + \
            (np.arange(1, k + 1, dtype=np.uint64) * np.uint64(0xBF58476D1CE4E5B9))[None, :]
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return torch.from_numpy((z >> np.uint64(11)).astype(np.float64) / float(2 ** 53))


def random_resized_boxes(u: torch.Tensor, side: int, scale: tuple[float, float], ratio: tuple[float, float],
                         tries: int = 10) -> torch.Tensor:
    """(n, 4) random-resized-crop boxes in a ``side`` x ``side`` image: ``geometry.random_resized_box``, vectorized.

    ``u``: (n, 2 * tries + 2) uniforms.
    """
    area = side * side
    target = (scale[0] + (scale[1] - scale[0]) * u[:, :tries]) * area
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = (lo + (hi - lo) * u[:, tries:2 * tries]).exp()
    w = (target * aspect).sqrt().round()
    h = (target / aspect).sqrt().round()
    ok = (w > 0) & (w <= side) & (h > 0) & (h <= side)
    first = ok.double().argmax(1, keepdim=True)  # the first try that fits, as the loop version takes
    found = ok.any(1)
    # No try fits: the whole (square) image, whose aspect ratio 1 is inside any sensible range.
    full = torch.tensor(float(side), dtype=torch.float64)
    w = torch.where(found, w.gather(1, first).squeeze(1), full)
    h = torch.where(found, h.gather(1, first).squeeze(1), full)
    left = (u[:, 2 * tries] * (side - w + 1)).floor()
    top = (u[:, 2 * tries + 1] * (side - h + 1)).floor()
    return torch.stack([left, top, left + w, top + h], 1).float()


def seed_boxes(u: torch.Tensor, side: int, crop: int) -> torch.Tensor:
    """(n, 4) boxes of the original's crop: a random ``crop`` square of the ``side`` x ``side`` resize."""
    c = float(min(crop, side))
    left = u[:, 0] * (side - c)
    top = u[:, 1] * (side - c)
    return torch.stack([left, top, left + c, top + c], 1).float()


def padded_boxes(u: torch.Tensor, side: int, crop: int, pad: int) -> torch.Tensor:
    """(n, 4) boxes of ``geometry.padded_box`` in a ``side`` x ``side`` image: whole-pixel moves up to ``pad`` outside."""
    c = float(min(crop, side))
    span = side - c + 2 * pad + 1
    left = (u[:, 0].double() * span).floor() - pad
    top = (u[:, 1].double() * span).floor() - pad
    return torch.stack([left, top, left + c, top + c], 1).float()


def shifted_crops(images: torch.Tensor, rois: torch.Tensor, pad: int, size: int) -> torch.Tensor:
    """Whole-pixel ``size`` x ``size`` crops of uint8 (B, H, W, 3) ``images`` with ``pad`` black pixels around,
    one box per image (``rois`` rows: position, left, top, right, bottom in the padded frame), by one gather:
    no resampling. The size is passed, not read from ``rois``: reading a GPU tensor waits for the device."""
    n = len(images)
    padded = F.pad(images, (0, 0, pad, pad, pad, pad))
    steps = torch.arange(size, device=images.device)
    rows = rois[:, 2].long().view(-1, 1) + steps  # (B, size)
    cols = rois[:, 1].long().view(-1, 1) + steps
    batch = torch.arange(n, device=images.device).view(-1, 1, 1)
    return padded[batch, rows.view(n, size, 1), cols.view(n, 1, size)]  # (B, size, size, 3)


class CachedTrainLoader:
    """Training batches from ``DecodedImages``: crops, flips and normalization on ``device``, per batch.

    Boxes and flips are drawn on the CPU from each sample's seed, so an epoch is the same whatever the
    device and the number of processes; the sampler's order (shuffle or balanced, sharded by rank) is kept.
    """

    num_workers = 0

    def __init__(self, cache: DecodedImages, sampler: EpochBatchSampler, geometry: Geometry,
                 device: torch.device, mean, std):
        self.cache = cache
        self.sampler = sampler
        self.geometry = geometry
        self.device = device
        self.normalize = Normalizer(mean, std, device)
        self.side = cache.images.shape[1]

    def __len__(self) -> int:
        return len(self.sampler)

    @property
    def batch_sampler(self) -> EpochBatchSampler:
        return self.sampler

    @property
    def box_side(self) -> int:
        """Side of a seed or pad crop square in the cache: crop_size at the current size of the image_size resize."""
        return round(self.side * self.geometry.crop_size / self.geometry.image_size)

    def _boxes(self, u: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        if g.kind == "seed":
            return seed_boxes(u, self.side, self.box_side)
        if g.kind == "pad":  # in the cache's coordinates, which roi_align sees moved by the black border
            return padded_boxes(u, self.side, self.box_side, g.pad) + g.pad
        return random_resized_boxes(u, self.side, g.scale, g.ratio)

    def _epoch_plan(self):
        """Rows, crop boxes (as roi_align rows) and flips of the whole epoch, made on the CPU in one go.

        They reach the device in one copy per epoch: small per-batch copies from pageable memory would
        make the host wait for the GPU every batch.
        """
        batches = list(self.sampler.batches())
        positions = np.concatenate([p for p, _ in batches])
        seeds = np.concatenate([q for _, q in batches])
        rows = self.cache.rows[positions]
        keep = rows >= 0
        counts = [int(keep[i * len(p):(i + 1) * len(p)].sum()) for i, (p, _) in enumerate(batches)]
        u = sample_uniforms(seeds[keep], 23)
        flips = u[:, 0] < 0.5
        local = torch.cat([torch.arange(n, dtype=torch.float32) for n in counts]) if counts else torch.empty(0)
        rois = torch.cat([local.view(-1, 1), self._boxes(u[:, 1:])], 1)
        return torch.from_numpy(rows[keep]), rois, flips, np.cumsum([0] + counts)

    def __iter__(self):
        crop = self.sampler.crop_size or self.geometry.crop_size
        rows, rois, flips, bounds = self._epoch_plan()
        images = self.cache.images
        on_device = images.device.type == self.device.type  # a GPU cache lives on the training GPU
        rows_dev = rows.to(self.device)
        rois_dev, flips_dev = rois.to(self.device), flips.to(self.device)
        labels = self.cache.labels.to(self.device)[rows_dev]
        for start, stop in zip(bounds[:-1], bounds[1:]):
            t0 = time.perf_counter()
            if on_device:
                x = images[rows_dev[start:stop]]
            else:  # a RAM cache: gather on the CPU, copy from pinned memory
                x = images[rows[start:stop]].pin_memory().to(self.device, non_blocking=True)
            pad = self.geometry.pad
            if pad and crop == self.box_side:
                out = shifted_crops(x, rois_dev[start:stop], pad, crop)  # moves only: a gather, still uint8
            else:
                from torchvision.ops import roi_align  # here, not at import: it pulls in torch._dynamo

                x = x.permute(0, 3, 1, 2).float()
                if pad:  # black borders (roi_align would repeat the edge pixel outside)
                    x = F.pad(x, [pad] * 4)
                out = roi_align(x, rois_dev[start:stop], (crop, crop), spatial_scale=1.0, sampling_ratio=-1,
                                aligned=True)
            batch = DeviceBatch(self.normalize(out, flips_dev[start:stop], bool(flips[start:stop].any())),
                                labels[start:stop], [], indices=self.cache.indices[rows[start:stop]])
            batch.wait = time.perf_counter() - t0
            yield batch


class CachedEvalLoader:
    """Val batches from ``DecodedImages`` of final centre crops: only normalization is left to do."""

    num_workers = 0

    def __init__(self, cache: DecodedImages, batch_size: int, device: torch.device, mean, std):
        self.cache = cache
        self.batch_size = batch_size
        self.device = device
        self.normalize = Normalizer(mean, std, device)
        self.batch_sampler = ShardBatchSampler(len(cache), batch_size)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        for rows in self.batch_sampler:
            t0 = time.perf_counter()
            sl = slice(rows[0], rows[-1] + 1)
            x = self.cache.images[sl]
            if x.device.type != self.device.type:
                x = x.to(self.device, non_blocking=True)
            batch = DeviceBatch(self.normalize(x), self.cache.labels[sl].to(self.device), [],
                                indices=self.cache.indices[sl])
            batch.wait = time.perf_counter() - t0
            yield batch
