"""Decoded cache: a small dataset decoded once, kept as uint8 on the GPU or in RAM.

``--cache gpu|ram`` decodes the training set once, each whole image squeezed to a square at the photos'
longer side (``data.build.cache_side``; its original size kept beside it), and the val set once, as its
final centre crops. Every epoch then takes its batches straight from memory: random-resized crops (one
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

from imagenet_trainer.config import CACHE_MODES
from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex
from imagenet_trainer.data.loader import DeviceBatch, Normalizer, image_dataloader
from imagenet_trainer.data.sampler import EpochBatchSampler, ShardBatchSampler
from imagenet_trainer.data.stream import in_order
from imagenet_trainer.errors import UsageError

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

    Training sets are kept with geometry ``full``: each whole image squeezed to an S x S square, with its
    original size in ``sizes``, so that a crop box drawn in the original's coordinates (any part of a
    non-square photo, as on the JPEG path) maps to the cache by a scale on each axis.

    ``rows[i]`` is image i's row, or -1 when it could not be read (those are in ``bad``); ``labels``
    and ``indices`` (the position in the index) follow the rows. With ``world_size`` > 1 only this
    rank's contiguous share of the index is decoded (its val shard, as ``ShardBatchSampler`` splits it).
    """

    def __init__(self, index: FileIndex, geometry: Geometry, storage: torch.device, workers: int,
                 rank: int = 0, world_size: int = 1, batch_size: int = 256):
        if geometry.random or geometry.n_boxes != 1:
            raise ValueError("the cache holds one fixed crop per image")
        s = geometry.crop_size
        pin = storage.type == "cuda"
        n_local = len(index) * (rank + 1) // world_size - len(index) * rank // world_size
        self.images = torch.empty(n_local, s, s, 3, dtype=torch.uint8, device=storage)
        self.rows = np.full(len(index), -1, dtype=np.int64)
        labels, indices, self.bad = [], [], []
        # Whole images: the workers write each one's upright size here as they decode it
        sizes = torch.zeros(len(index), 2, dtype=torch.int32).share_memory_() if geometry.kind == "full" else None
        loader = image_dataloader(ImageFolderDataset(index, geometry, sizes=sizes),
                                  in_order(index, batch_size, rank, world_size), workers, pin, persistent=False)
        self.index_size = len(index)
        n = 0
        for batch in loader:
            if isinstance(batch, BaseException):  # a stream's worker could not read a shard
                raise batch
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
        # The originals' (width, height), float64 (n, 2), where the cache holds whole images squeezed to squares
        self.sizes = sizes[self.indices].double() if sizes is not None else None
        if pin:
            torch.cuda.synchronize(storage)

    def index_labels(self) -> np.ndarray:
        """Every index position's class (0 where the image could not be read: the cache has no row for it), for a
        sampler over a set whose labels only the decoding told (shards)."""
        labels = np.zeros(self.index_size, dtype=np.int64)
        labels[self.indices.numpy()] = self.labels.cpu().numpy()
        return labels

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


def random_resized_boxes(u: torch.Tensor, width: torch.Tensor, height: torch.Tensor, scale: tuple[float, float],
                         ratio: tuple[float, float], tries: int = 10) -> torch.Tensor:
    """(n, 4) random-resized-crop boxes in images of (n,) ``width`` x ``height`` (float64):
    ``geometry.random_resized_box``, vectorized.

    ``u``: (n, 2 * tries + 2) uniforms.
    """
    area = width * height
    target = (scale[0] + (scale[1] - scale[0]) * u[:, :tries]) * area[:, None]
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = (lo + (hi - lo) * u[:, tries:2 * tries]).exp()
    w = (target * aspect).sqrt().round()
    h = (target / aspect).sqrt().round()
    ok = (w > 0) & (w <= width[:, None]) & (h > 0) & (h <= height[:, None])
    first = ok.double().argmax(1, keepdim=True)  # the first try that fits, as the loop version takes
    found = ok.any(1)
    # No try fits: the central crop with the aspect ratio clamped into range, as the loop version's fallback.
    in_ratio = width / height
    fw = torch.where(in_ratio > ratio[1], (height * ratio[1]).round(), width)
    fh = torch.where(in_ratio < ratio[0], (width / ratio[0]).round(), height)
    w = torch.where(found, w.gather(1, first).squeeze(1), fw)
    h = torch.where(found, h.gather(1, first).squeeze(1), fh)
    left = torch.where(found, (u[:, 2 * tries] * (width - w + 1)).floor(), ((width - w) / 2).floor())
    top = torch.where(found, (u[:, 2 * tries + 1] * (height - h + 1)).floor(), ((height - h) / 2).floor())
    return torch.stack([left, top, left + w, top + h], 1)


def seed_boxes(u: torch.Tensor, width: torch.Tensor, height: torch.Tensor, image_size: int, crop: int) -> torch.Tensor:
    """(n, 4) boxes of ``geometry.seed_box``: a random ``crop`` square of the shorter-side-``image_size`` resize,
    in the original's coordinates."""
    side = torch.minimum(torch.minimum(crop * torch.minimum(width, height) / image_size, width), height)
    left = u[:, 0] * (width - side)
    top = u[:, 1] * (height - side)
    return torch.stack([left, top, left + side, top + side], 1)


def padded_boxes(u: torch.Tensor, width: torch.Tensor, height: torch.Tensor, image_size: int, crop: int,
                 pad: int) -> torch.Tensor:
    """(n, 4) boxes of ``geometry.padded_box``: whole-pixel moves of the shorter-side-``image_size`` resize that
    reach up to ``pad`` pixels outside, in the original's coordinates."""
    s = image_size / torch.minimum(width, height)
    rw, rh = (width * s).round(), (height * s).round()
    c = torch.minimum(torch.minimum(rw, rh), torch.full_like(rw, float(crop)))
    left = (u[:, 0] * (rw - c + 2 * pad + 1)).floor() - pad
    top = (u[:, 1] * (rh - c + 2 * pad + 1)).floor() - pad
    return torch.stack([left, top, left + c, top + c], 1) / s[:, None]


def shifted_crops(images: torch.Tensor, rois: torch.Tensor, pad: int, size: int) -> torch.Tensor:
    """Whole-pixel ``size`` x ``size`` crops of uint8 (B, H, W, 3) ``images`` with ``pad`` black pixels around,
    one box per image (``rois`` rows: position, left, top, right, bottom in the padded frame), by one gather:
    no resampling. The size is passed, not read from ``rois``: reading a GPU tensor waits for the device."""
    n = len(images)
    padded = F.pad(images, (0, 0, pad, pad, pad, pad))
    steps = torch.arange(size, device=images.device)
    rows = rois[:, 2].round().long().view(-1, 1) + steps  # (B, size)
    cols = rois[:, 1].round().long().view(-1, 1) + steps
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
        sizes = cache.sizes
        self.square = sizes is None or bool((sizes[:, 0] == sizes[:, 1]).all())

    def __len__(self) -> int:
        return len(self.sampler)

    @property
    def batch_sampler(self) -> EpochBatchSampler:
        return self.sampler

    def _sizes(self, rows: np.ndarray) -> torch.Tensor:
        """(n, 2) original (width, height) of the cache's ``rows``; a cache of squares: the side."""
        if self.cache.sizes is not None:
            return self.cache.sizes[torch.from_numpy(rows)]
        return torch.full((len(rows), 2), float(self.side), dtype=torch.float64)

    def boxes(self, u: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """(n, 4) float64 crop boxes in the originals' coordinates (as ``Geometry.boxes`` draws them on the JPEG
        path), from (n, k) uniforms and the originals' (n, 2) sizes."""
        g = self.geometry
        w, h = sizes[:, 0], sizes[:, 1]
        if g.kind == "seed":
            return seed_boxes(u, w, h, g.image_size, g.crop_size)
        if g.kind == "pad":
            return padded_boxes(u, w, h, g.image_size, g.crop_size, g.pad)
        return random_resized_boxes(u, w, h, g.scale, g.ratio)

    def to_cache(self, boxes: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """``boxes`` in the originals' coordinates -> in the cache's squares."""
        return boxes * (self.side / sizes).repeat(1, 2)

    def _epoch_plan(self):
        """Rows, crop boxes in the cache (as roi_align rows), flips and the black margin crops reach into,
        for the whole epoch, made on the CPU in one go.

        They reach the device in one copy per epoch: small per-batch copies from pageable memory would
        make the host wait for the GPU every batch.
        """
        batches = list(self.sampler.batches())
        positions = np.concatenate([p for p, _ in batches])
        seeds = np.concatenate([q for _, q in batches])
        rows = self.cache.rows[positions]
        keep = rows >= 0
        counts = [int(keep[i * len(p):(i + 1) * len(p)].sum()) for i, (p, _) in enumerate(batches)]
        rows = rows[keep]
        u = sample_uniforms(seeds[keep], 23)
        flips = u[:, 0] < 0.5
        boxes = self.to_cache(self.boxes(u[:, 1:], self._sizes(rows)), self._sizes(rows))
        outside = float(torch.cat([-boxes[:, :2], boxes[:, 2:] - self.side], 1).max()) if len(boxes) else 0.0
        margin = max(0, math.ceil(outside - 1e-6))
        local = torch.cat([torch.arange(n, dtype=torch.float64) for n in counts]) if counts else torch.empty(0)
        rois = torch.cat([local.view(-1, 1), boxes + margin], 1).float()
        return torch.from_numpy(rows), rois, flips, np.cumsum([0] + counts), margin

    def __iter__(self):
        crop = self.sampler.crop_size or self.geometry.crop_size
        rows, rois, flips, bounds, margin = self._epoch_plan()
        images = self.cache.images
        on_device = images.device.type == self.device.type  # a GPU cache lives on the training GPU
        rows_dev = rows.to(self.device)
        rois_dev, flips_dev = rois.to(self.device), flips.to(self.device)
        labels = self.cache.labels.to(self.device)[rows_dev]
        # Padded crops of squares kept at their resize: whole-pixel moves of the crop's size, a gather
        whole = (self.geometry.kind == "pad" and self.square and self.side == self.geometry.image_size
                 and crop == self.geometry.crop_size)
        for start, stop in zip(bounds[:-1], bounds[1:]):
            t0 = time.perf_counter()
            if on_device:
                x = images[rows_dev[start:stop]]
            else:  # a RAM cache: gather on the CPU, copy from pinned memory
                x = images[rows[start:stop]].pin_memory().to(self.device, non_blocking=True)
            out = self.crops(x, rois_dev[start:stop], crop, margin, whole)
            batch = DeviceBatch(self.normalize(out, flips_dev[start:stop], bool(flips[start:stop].any())),
                                labels[start:stop], [], indices=self.cache.indices[rows[start:stop]])
            batch.wait = time.perf_counter() - t0
            yield batch

    @staticmethod
    def crops(x: torch.Tensor, rois: torch.Tensor, crop: int, margin: int = 0, whole: bool = False) -> torch.Tensor:
        """``crop`` x ``crop`` crops of uint8 (B, S, S, 3) ``x``, one roi_align row each (position, box in the
        frame of ``x`` with ``margin`` black pixels around it); ``whole``: the boxes are whole-pixel and of the
        crop's size, taken by a gather (uint8 (B, crop, crop, 3)), else resampled (float (B, 3, crop, crop))."""
        if whole:
            return shifted_crops(x, rois, margin, crop)
        from torchvision.ops import roi_align  # here, not at import: it pulls in torch._dynamo

        x = x.permute(0, 3, 1, 2).float()
        if margin:  # black borders (roi_align would repeat the edge pixel outside)
            x = F.pad(x, [margin] * 4)
        return roi_align(x, rois, (crop, crop), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


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
