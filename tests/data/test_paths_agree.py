"""The fast paths compute what the reference computes: the same crop boxes of the same non-square photos
(landscape, portrait, EXIF-rotated, grayscale) give the same pixels through the workers' decode, the decoded
cache and the naive PIL + torchvision pipeline, within a stated tolerance."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from imagenet_trainer.data.cache import CachedTrainLoader, DecodedImages
from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import build_index
from imagenet_trainer.data.naive import NaiveDataset
from imagenet_trainer.data.sampler import EpochBatchSampler
from tests.conftest import random_image

CROP = 40
# Pixel levels (of 255) by which two paths may differ: the JPEG decoders (libjpeg-turbo's fast DCT against
# Pillow's), the resize kernels (torch's and Pillow's antialiased bilinear, roi_align's averaged samples) and,
# for the cache, one more resampling. Measured on these photos: mean 0.0-1.8 for the workers, 0.7-2.3 for the
# cache; 99th percentile at most 8.6.
MEAN_TOLERANCE = 3.0
P99_TOLERANCE = 12.0
# nvJPEG has its own IDCT and chroma upsampling, and the GPU crops with roi_align's averaged samples (the hybrid path
# after a reduced-scale CPU decode of the region). Measured on these photos on one H100: mean 3.1 (nvJPEG,
# landscape) and 4.9 (hybrid, gray), 99th percentile up to 19. A wrong box, orientation or channel order is 20-60.
GPU_MEAN_TOLERANCE = 6.0
GPU_P99_TOLERANCE = 24.0

# (name, (height, width) as stored, EXIF orientation or None, grayscale, box in the upright image)
PHOTOS = [
    ("landscape", (90, 140), None, False, (30, 10, 110, 75)),
    ("portrait", (150, 96), None, False, (5, 40, 70, 120)),
    ("rotated", (96, 150), 6, False, (20, 60, 90, 140)),  # stored 150 x 96 landscape, shown portrait
    ("gray", (100, 130), None, True, (0, 0, 130, 100)),  # the whole image, squeezed
]


@dataclass(frozen=True)
class FixedBox(Geometry):
    """A geometry that always picks ``box`` (in the upright image) and no flip."""

    box: tuple = (0, 0, 1, 1)

    def boxes(self, width, height, rng):
        return [self.box], False


def _write(path: Path, name: str, shape, orientation, gray: bool) -> None:
    arr = random_image(*shape, seed=len(name))
    img = Image.fromarray(arr).convert("L") if gray else Image.fromarray(arr)
    buf = io.BytesIO()
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    else:
        img.save(buf, format="JPEG", quality=95)
    path.write_bytes(buf.getvalue())


@pytest.fixture
def photos(tmp_path: Path):
    root = tmp_path / "train"
    for name, shape, orientation, gray, _ in PHOTOS:
        (root / name).mkdir(parents=True)
        _write(root / name / "0.jpg", name, shape, orientation, gray)
    index = build_index(root)
    boxes = {name: box for name, _, _, _, box in PHOTOS}
    return index, [boxes[c] for c in index.classes]


def _workers(index, boxes) -> list[np.ndarray]:
    out = []
    for i, box in enumerate(boxes):
        ds = ImageFolderDataset(index, FixedBox("rrc", CROP, CROP, box=box))
        crops, _, flip, _ = ds[i]
        assert not flip
        out.append(crops[0].astype(np.float64))
    return out


def _naive(index, boxes, monkeypatch) -> list[np.ndarray]:
    out = []
    monkeypatch.setattr(T.RandomHorizontalFlip, "forward", lambda self, img: img)
    for i, (left, top, right, bottom) in enumerate(boxes):
        monkeypatch.setattr(T.RandomResizedCrop, "get_params",
                            staticmethod(lambda img, scale, ratio, b=(top, left, bottom - top, right - left): b))
        ds = NaiveDataset(index, Geometry("rrc", CROP, CROP), (0, 0, 0), (1, 1, 1))
        x, _, _ = ds[i]
        out.append(x.permute(1, 2, 0).numpy().astype(np.float64) * 255)
    return out


def _cache(index, boxes, side: int) -> list[np.ndarray]:
    cache = DecodedImages(index, Geometry("full", side, side), torch.device("cpu"), workers=0)
    loader = CachedTrainLoader(cache, EpochBatchSampler(index.labels, 1, seed=0), Geometry("rrc", CROP, CROP),
                               torch.device("cpu"), (0, 0, 0), (1, 1, 1))
    rows = torch.from_numpy(cache.rows)
    b = torch.tensor(boxes, dtype=torch.float64)
    rois = torch.cat([torch.arange(len(b), dtype=torch.float64).view(-1, 1), loader.to_cache(b, cache.sizes[rows])], 1)
    out = CachedTrainLoader.crops(cache.images[rows], rois.float(), CROP)  # (B, 3, CROP, CROP) float 0..255
    return [o.permute(1, 2, 0).numpy().astype(np.float64) for o in out]


def _close(a: np.ndarray, b: np.ndarray, what: str, mean: float = MEAN_TOLERANCE, p99: float = P99_TOLERANCE) -> None:
    d = np.abs(a - b)
    assert a.shape == b.shape == (CROP, CROP, 3), what
    print(f"{what}: mean {d.mean():.2f}, 99th percentile {np.percentile(d, 99):.1f}")
    assert d.mean() <= mean and np.percentile(d, 99) <= p99, \
        f"{what}: mean {d.mean():.2f}, 99th percentile {np.percentile(d, 99):.1f}"


def test_cache_keeps_the_upright_original_size(photos):
    index, _ = photos
    cache = DecodedImages(index, Geometry("full", 64, 64), torch.device("cpu"), workers=0)
    sizes = {index.classes[index.labels[int(i)]]: tuple(cache.sizes[r].tolist())
             for r, i in enumerate(cache.indices)}
    assert sizes == {"landscape": (140, 90), "portrait": (96, 150), "rotated": (96, 150), "gray": (130, 100)}


@pytest.mark.parametrize("side", [160, 112])  # the cache at the photos' size, and below it
def test_workers_cache_and_naive_paths_agree(photos, monkeypatch, side):
    index, boxes = photos
    workers, naive, cached = _workers(index, boxes), _naive(index, boxes, monkeypatch), _cache(index, boxes, side)
    for name, w, n, c in zip(index.classes, workers, naive, cached):
        _close(w, n, f"{name}: workers against naive")
        _close(c, n, f"{name}: cache at {side} px against naive")
    # Different boxes give different pixels: the comparison can fail.
    moved = _workers(index, [(l + 6, t + 6, r - 6, b - 6) for l, t, r, b in boxes])
    assert max(np.abs(m - w).mean() for m, w in zip(moved, workers)) > 4 * MEAN_TOLERANCE


class BoxBySize(Geometry):
    """A geometry that picks, for an image of (width, height), the box ``table`` gives that size, and no flip."""

    table: dict = {}

    def boxes(self, width, height, rng):
        return [self.table[(width, height)]], False


@pytest.mark.gpu
@pytest.mark.parametrize("kind,share", [("gpu", 0.0), ("hybrid", 0.5)])
def test_nvjpeg_and_hybrid_paths_agree_with_the_naive_path(photos, monkeypatch, kind, share):
    from imagenet_trainer.data.build import make_train_loader

    index, boxes = photos
    sizes = {"landscape": (140, 90), "portrait": (96, 150), "rotated": (96, 150), "gray": (130, 100)}
    geometry = BoxBySize("rrc", CROP, CROP)
    geometry.table.update({sizes[c]: b for c, b in zip(index.classes, boxes) if c != "rotated"})
    keep = [i for i, c in enumerate(index.classes) if c != "rotated"]  # its upright size is the portrait's
    naive = _naive(index, boxes, monkeypatch)
    sampler = EpochBatchSampler(index.labels, len(index), seed=0)
    loader = make_train_loader(kind, index, geometry, sampler, 0, torch.device("cuda"), (0, 0, 0), (1, 1, 1),
                               share, fixed=True)
    loader.cpu_first = False  # else the first batch is decoded whole by the workers, and nvJPEG never runs
    calls = []
    decode = loader.gpu_decoder.decode
    loader.gpu_decoder.decode = lambda *a, **k: calls.append(1) or decode(*a, **k)
    batch = next(iter(loader))
    assert calls, "nvJPEG decoded nothing"
    got = {int(i): x.permute(1, 2, 0).float().cpu().numpy() * 255 for i, x in zip(batch.indices, batch.images)}
    for i in keep:
        _close(got[i], naive[i], f"{index.classes[i]}: {kind} loader against naive", GPU_MEAN_TOLERANCE, GPU_P99_TOLERANCE)


def test_the_cache_at_its_chosen_side_is_closer_to_the_reference_than_at_the_resize(photos, monkeypatch):
    """Squares at the photos' longer side (``cache_side``) keep the pixels a crop needs, where squares at the resize
    (``--image-size``, 46 px for 40-px crops) shrink each photo's long axis by two thirds before cropping."""
    from imagenet_trainer.data.build import cache_side

    index, boxes = photos
    resize = round(CROP * 8 / 7)
    side = cache_side(index, resize)
    assert side == 2 * resize  # the photos' 130-150 px: up to twice the resize
    naive = _naive(index, boxes, monkeypatch)
    err = {s: np.mean([np.abs(c - n).mean() for c, n in zip(_cache(index, boxes, s), naive)]) for s in (side, resize)}
    assert err[side] < 0.75 * err[resize], err
