"""Shared fixtures: tiny JPEG trees in tmp_path, an isolated cache, GPU-marker skipping."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagenet_trainer.data.sample import SampleSpec, write_sample_dataset


def pytest_collection_modifyitems(config, items):
    n_gpus = torch.cuda.device_count()
    for item in items:
        if "gpu" in item.keywords and n_gpus < 1:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "multigpu" in item.keywords and n_gpus < 2:
            item.add_marker(pytest.mark.skip(reason="needs two CUDA GPUs"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own index cache, so no test sees another's."""
    monkeypatch.setenv("IMAGENET_TRAINER_CACHE", str(tmp_path_factory.mktemp("cache")))


def jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def write_class_tree(root: Path, classes: int, per_class: int, shape) -> Path:
    """root/c<k>/<i>.jpg for ``classes`` x ``per_class`` smooth random JPEGs; ``shape(i)`` is (h, w), seed 10k + i."""
    for c in range(classes):
        d = root / f"c{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            (d / f"{i}.jpg").write_bytes(jpeg_bytes(random_image(*shape(i), seed=10 * c + i)))
    return root


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (JPEG-friendly, not flat)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    """data/{train,val}/<3 classes>/ with small JPEGs of varied size."""
    root = tmp_path / "data"
    for split, n in (("train", 6), ("val", 2)):
        for c, name in enumerate(("cat", "dog", "fox")):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                h, w = 40 + 7 * i, 48 + 5 * c
                (d / f"{name}{i}.jpg").write_bytes(jpeg_bytes(random_image(h, w, seed=c * 100 + i)))
    return root


@pytest.fixture
def uneven_tree(tiny_tree):
    """The tiny tree with 7 val images, which 2 processes cannot split evenly."""
    (tiny_tree / "val" / "fox" / "extra.jpg").write_bytes(jpeg_bytes(random_image(40, 50, seed=99)))
    return tiny_tree


class _StubEvent:
    """A CUDA event's part that the prefetching thread uses, for running that thread on the CPU."""

    def record(self, stream=None):
        pass

    def query(self) -> bool:
        return True

    def synchronize(self):
        pass


@pytest.fixture
def cuda_stubs(monkeypatch):
    """CUDA's streams, events and ``record_stream`` as no-ops, so that ``DeviceLoader._iter_cuda``'s threads run
    on the CPU."""
    import contextlib
    from types import SimpleNamespace

    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: SimpleNamespace(wait_event=lambda e: None))
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Event", _StubEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(wait_event=lambda e: None))
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, stream: None)


def _rank_then_leave(rank: int, fn, *args) -> None:
    fn(rank, *args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as imagenet_trainer's ranks leave (cli.console_main): the teardown can abort a finished rank


def spawn_ranks(fn, args: tuple, nprocs: int = 2) -> None:
    """``torch.multiprocessing.spawn`` of ``fn(rank, *args)`` whose processes leave without the interpreter's
    teardown once ``fn`` returns. A spawned gloo rank was seen to abort there with its work done ("terminate
    called without an active exception", SIGABRT; once in a CI run of the whole suite on 2 cores)."""
    torch.multiprocessing.spawn(_rank_then_leave, args=(fn, *args), nprocs=nprocs)


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """The built-in learnable sample set, small: 8 classes (each its own colour and shape), 32-52 px images."""
    root = tmp_path_factory.mktemp("shapes") / "data"
    write_sample_dataset(root, SampleSpec(classes=8, per_class=100, val_per_class=20, size=40), workers=1)
    return root


def pytest_configure(config):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
