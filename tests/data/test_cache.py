"""The decoded cache: what it holds, how it crops, when ``auto`` turns it on (CUDA with -m gpu)."""

import numpy as np
import pytest
import torch

from imagenet_trainer.data.cache import (CachedEvalLoader, CachedTrainLoader, DecodedImages, choose_cache,
                                         random_resized_boxes, sample_uniforms)
from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry, random_resized_box
from imagenet_trainer.data.index import build_index
from imagenet_trainer.data.loader import IMAGENET_MEAN, IMAGENET_STD, Normalizer
from imagenet_trainer.data.sampler import EpochBatchSampler
from imagenet_trainer.errors import UsageError
from tests.conftest import write_class_tree


@pytest.fixture
def small_tree(tmp_path):
    root = write_class_tree(tmp_path / "train", 3, 5, lambda i: (32, 32 + 8 * (i % 2)))
    (root / "c1" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def test_cache_holds_the_decoded_images_and_skips_bad_ones(small_tree):
    index = build_index(small_tree)
    g = Geometry("center", 32, 32)
    cache = DecodedImages(index, g, torch.device("cpu"), workers=0, batch_size=1)  # one batch holds only the bad file
    assert len(cache) == len(index) - 1 and [b.path.endswith("broken.jpg") for b in cache.bad] == [True]
    bad = int(np.flatnonzero(cache.rows < 0)[0])
    assert index.path(bad).endswith("broken.jpg")
    ref = ImageFolderDataset(index, g)
    for i in range(len(index)):
        if i != bad:
            r = cache.rows[i]
            assert torch.equal(cache.images[r], torch.from_numpy(ref.load(i)[0][0]))
            assert cache.labels[r] == index.labels[i] and cache.indices[r] == i
    half = DecodedImages(index, g, torch.device("cpu"), workers=0, rank=1, world_size=2)  # a val shard
    assert sorted(half.indices.tolist()) == [i for i in range(len(index) // 2, len(index)) if i != bad]


@pytest.mark.parametrize("width,height", [(32, 32), (48, 32), (30, 70)])
def test_vectorized_boxes_follow_the_loop_rule(width, height):
    """Same area and aspect-ratio ranges as geometry.random_resized_box, inside the image, for any seed and any
    image shape (landscape, portrait, and one too narrow for most tries: the fallback)."""
    u = sample_uniforms(np.arange(4000, dtype=np.uint64), 22)
    full = torch.ones(4000, dtype=torch.float64)
    boxes = random_resized_boxes(u, width * full, height * full, (0.35, 1.0), (3 / 4, 4 / 3))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    area = w * h / (width * height)
    assert area.min() >= 0.3 and area.max() <= 1.0
    assert (w / h).min() >= 0.7 and (w / h).max() <= 1.42
    rng = np.random.default_rng(0)
    loop = np.array([random_resized_box(width, height, (0.35, 1.0), (3 / 4, 4 / 3), rng) for _ in range(4000)],
                    dtype=float)
    loop_w, loop_h = loop[:, 2] - loop[:, 0], loop[:, 3] - loop[:, 1]
    assert abs(float(area.mean()) - (loop_w * loop_h).mean() / (width * height)) < 0.02  # the same distribution
    assert abs(float((boxes[:, 0] + w / 2).mean()) - (loop[:, 0] + loop_w / 2).mean()) < 0.03 * width


def test_uniforms_depend_on_the_seed_alone():
    a = sample_uniforms(np.array([5, 6, 7], dtype=np.uint64), 4)
    b = sample_uniforms(np.array([7, 5], dtype=np.uint64), 4)
    assert torch.equal(a[2], b[0]) and torch.equal(a[0], b[1])
    assert (a >= 0).all() and (a < 1).all() and not torch.equal(a[0], a[1])


def _train_batches(cache, index, world_size, rank, epoch=1):
    sampler = EpochBatchSampler(index.labels, 4 // world_size, seed=3, rank=rank, world_size=world_size)
    sampler.set_epoch(epoch)
    loader = CachedTrainLoader(cache, sampler, Geometry("rrc", 24, 32, scale=(0.35, 1)), torch.device("cpu"),
                               IMAGENET_MEAN, IMAGENET_STD)
    return [(b.images.clone(), b.labels.clone()) for b in loader]


def test_train_batches_do_not_depend_on_the_number_of_processes(small_tree):
    index = build_index(small_tree)
    cache = DecodedImages(index, Geometry("center", 32, 32), torch.device("cpu"), workers=0)
    one = _train_batches(cache, index, 1, 0)
    halves = [_train_batches(cache, index, 2, r) for r in range(2)]
    assert one and all(x.shape[1:] == (3, 24, 24) for x, _ in one)
    for k, (x, y) in enumerate(one):  # each global batch is the two ranks' batches together
        parts = [h[k] for h in halves]
        assert torch.equal(torch.cat([p[1] for p in parts]), y[: sum(len(p[1]) for p in parts)])
        assert torch.allclose(torch.cat([p[0] for p in parts]), x[: sum(len(p[1]) for p in parts)])
    other = _train_batches(cache, index, 1, 0, epoch=2)[0][0]
    assert other.shape != one[0][0].shape or not torch.allclose(one[0][0], other)  # a new epoch, new crops


def test_eval_batches_are_the_normalized_centre_crops(small_tree):
    index = build_index(small_tree)
    g = Geometry("center", 24, 28)
    cache = DecodedImages(index, g, torch.device("cpu"), workers=0)
    loader = CachedEvalLoader(cache, 4, torch.device("cpu"), IMAGENET_MEAN, IMAGENET_STD)
    got = torch.cat([b.images.clone() for b in loader])
    ref = ImageFolderDataset(index, g)
    want = Normalizer(IMAGENET_MEAN, IMAGENET_STD, torch.device("cpu"))(
        torch.from_numpy(np.stack([ref.load(int(i))[0][0] for i in cache.indices])))
    assert torch.allclose(got, want)


def test_choose_cache():
    cpu = torch.device("cpu")
    assert choose_cache("auto", 10 * 2**20, cpu)[0] == "ram"
    assert choose_cache("auto", 2**50, cpu)[0] == "off"
    assert choose_cache("off", 1, cpu)[0] == "off"
    with pytest.raises(UsageError, match="--cache gpu needs a CUDA device"):
        choose_cache("gpu", 1, cpu)
    with pytest.raises(UsageError, match="--cache ram: the decoded images need"):
        choose_cache("ram", 2**50, cpu)


@pytest.mark.gpu
def test_gpu_cache_matches_cpu_cache(small_tree):
    index = build_index(small_tree)
    g = Geometry("center", 32, 32)
    cpu = DecodedImages(index, g, torch.device("cpu"), workers=0)
    gpu = DecodedImages(index, g, torch.device("cuda"), workers=2)
    assert torch.equal(cpu.images, gpu.images.cpu()) and np.array_equal(cpu.rows, gpu.rows)
    sampler = EpochBatchSampler(index.labels, 4, seed=3)
    sampler.set_epoch(1)
    geo = Geometry("rrc", 24, 32, scale=(0.35, 1))
    a = [b.images.cpu() for b in CachedTrainLoader(cpu, sampler, geo, torch.device("cpu"), IMAGENET_MEAN, IMAGENET_STD)]
    b = [b.images.cpu() for b in CachedTrainLoader(gpu, sampler, geo, torch.device("cuda"), IMAGENET_MEAN, IMAGENET_STD)]
    c = [b.images.cpu() for b in CachedTrainLoader(cpu, sampler, geo, torch.device("cuda"), IMAGENET_MEAN, IMAGENET_STD)]
    for x, y, z in zip(a, b, c):
        assert torch.allclose(x, y, atol=1e-3) and torch.allclose(x, z, atol=1e-3)


def test_cached_pad_crops_have_black_borders_like_the_jpeg_path(small_tree):
    from imagenet_trainer.data.cache import padded_boxes

    u = sample_uniforms(np.arange(3000, dtype=np.uint64), 2)
    side = torch.full((3000,), 32.0, dtype=torch.float64)
    boxes = padded_boxes(u, side, side, 32, 32, 4)
    assert set(boxes[:, 0].tolist()) == set(float(v) for v in range(-4, 5))
    assert (boxes[:, 2] - boxes[:, 0] == 32).all()
    index = build_index(small_tree)
    cache = DecodedImages(index, Geometry("center", 32, 32), torch.device("cpu"), workers=0)
    cache.images.fill_(200)
    sampler = EpochBatchSampler(index.labels, 4, seed=1)
    loader = CachedTrainLoader(cache, sampler, Geometry("pad", 32, 32), torch.device("cpu"), (0, 0, 0), (1, 1, 1))
    rows = set()
    for b in loader:
        x = b.images * 255  # mean 0, std 1: back to pixels
        assert ((x - 200).abs() < 1e-3).logical_or(x.abs() < 1e-3).all()  # image or black, nothing between
        rows |= {int((x[i, 0, :, 16] < 1).sum()) for i in range(len(x))}
    assert 0 in rows and max(rows) <= 4


def test_shifted_crops_are_roi_align_on_a_black_border():
    from torchvision.ops import roi_align

    from imagenet_trainer.data.cache import padded_boxes, shifted_crops

    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, 12, 12, 3), dtype=torch.uint8)
    side = torch.full((6,), 12.0, dtype=torch.float64)
    boxes = (padded_boxes(sample_uniforms(np.arange(6, dtype=np.uint64), 2), side, side, 12, 12, 2) + 2).float()
    rois = torch.cat([torch.arange(6.0).view(-1, 1), boxes], 1)
    got = shifted_crops(images, rois, 2, 12)
    x = torch.nn.functional.pad(images.permute(0, 3, 1, 2).float(), [2] * 4)
    want = roi_align(x, rois, (12, 12), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    assert got.dtype == torch.uint8 and torch.equal(got.permute(0, 3, 1, 2).float(), want)


@pytest.mark.parametrize("kind", ["pad", "rrc"])
def test_cached_crops_of_non_square_photos_cover_the_whole_photo(tmp_path, kind):
    """Whole photos in the cache: crops are drawn over the whole (non-square) photo, as on the JPEG path. A
    2:1 photo in three bands (white, grey, dark): crops that are nearly all white or all dark come only from its
    outer thirds, which a cache of central squares never held."""
    from PIL import Image as PILImage

    root = tmp_path / "train" / "c"
    root.mkdir(parents=True)
    for i, (w, h) in enumerate([(96, 48), (48, 96)]):
        arr = np.full((h, w, 3), 160, np.uint8)
        arr[:, : w // 3], arr[:, 2 * w // 3:] = 255, 60
        PILImage.fromarray(arr).save(root / f"{i}.png")
    index = build_index(tmp_path / "train")
    cache = DecodedImages(index, Geometry("full", 48, 48), torch.device("cpu"), workers=0)
    assert cache.sizes.tolist() == [[96.0, 48.0], [48.0, 96.0]]
    sampler = EpochBatchSampler(index.labels, 2, seed=0)
    loader = CachedTrainLoader(cache, sampler, Geometry(kind, 16, 48, scale=(0.03, 0.05)), torch.device("cpu"),
                               (0, 0, 0), (1 / 255, 1 / 255, 1 / 255))
    white = dark = 0
    for epoch in range(1, 61):
        sampler.set_epoch(epoch)
        for b in loader:
            x = b.images[b.indices == 0]  # the landscape photo
            white += float(x.mean()) > 245
            dark += abs(float(x.mean()) - 60) < 6
    assert white > 2 and dark > 2, (white, dark)
