"""Training and validation from shards: each rank's and worker's part of the stream, the same classes and counts as
the folder, exact resume, two processes, and over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import build_data
from imagenet_trainer.data.dataset import ImageFolderDataset, collate
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.shards import load_shard_splits
from imagenet_trainer.data.stream import ShardStream, StreamPlan
from imagenet_trainer.engine.checkpoint import safe_load
from imagenet_trainer.engine.run import train
from imagenet_trainer.errors import UsageError
from imagenet_trainer.tools.shard import shard_dataset
from tests.data.test_shards import http_root, shard_dir  # noqa: F401  (fixtures)
from tests.engine.test_train import assert_resume_is_exact


def _positions(plan: StreamPlan, epoch: int, workers: int) -> list[int]:
    """The stream positions the workers read, after checking that the samples behind them are each read once a
    pass: position p of a pass is that pass's p-th sample in its shard order."""
    out, seen = [], set()
    for w in range(workers):
        start, stop = plan.worker_range(w, workers)
        for shard, first, n, pos in plan.segments(epoch, start, stop):
            assert 0 <= first and first + n <= plan.counts[shard]
            for k in range(n):
                p, offset = divmod(pos + k, plan.total)
                order = plan.shard_order(epoch, p)
                before = sum(int(plan.counts[s]) for s in order[:list(order).index(shard)])
                assert before + first + k == offset  # the sample at this place of the pass's order
                assert (p, shard, first + k) not in seen
                seen.add((p, shard, first + k))
                out.append(pos + k)
    return out


@pytest.mark.parametrize("world,workers,steps", [(1, 1, 9), (2, 3, 4), (3, 2, 3), (2, 4, 5), (1, 4, 2), (2, 2, 20)])
def test_ranks_and_workers_split_the_epoch_into_disjoint_parts(world, workers, steps):
    counts = np.array([5, 7, 1, 0, 6, 4])  # 23 samples in uneven shards
    plans = [StreamPlan(counts, 2, seed=1, steps=steps, rank=r, world_size=world) for r in range(world)]
    got = [p for plan in plans for p in _positions(plan, 3, workers)]
    assert sorted(got) == list(range(steps * 2 * world))  # each stream position once: no sample twice per pass
    for plan in plans:
        sizes = [plan.worker_range(w, workers)[1] - plan.worker_range(w, workers)[0] for w in range(workers)]
        assert sum(sizes) == steps * 2 and all(s % 2 == 0 for s in sizes)  # whole batches only
    one = plans[0]
    shards_in = lambda epoch: [s for s, *_ in one.segments(epoch, 0, 23)]  # noqa: E731
    assert sorted(shards_in(1)) == [0, 1, 2, 4, 5] and shards_in(1) != shards_in(2)  # a new shard order each epoch


@pytest.mark.parametrize("world,workers", [(1, 1), (2, 3), (3, 2), (4, 1)])
def test_validation_counts_every_sample_once(world, workers):
    counts = np.array([5, 7, 1, 6])
    plans = [StreamPlan(counts, 4, rank=r, world_size=world) for r in range(world)]
    got = [p for plan in plans for p in _positions(plan, 1, workers)]
    assert sorted(got) == list(range(19))


def _stream_batches(index, plan, workers: int = 0):
    ds = ImageFolderDataset(index, Geometry("rrc", 32, 36))
    loader = torch.utils.data.DataLoader(ShardStream(index, plan, ds, collate), batch_size=None, num_workers=workers,
                                         collate_fn=lambda b: b)
    return list(loader)


@pytest.mark.parametrize("workers,steps", [(0, 5), (2, 5), (3, 7), (4, 3)])
def test_a_stream_resumed_part_way_gives_the_rest_of_its_epoch(shard_dir, workers, steps):
    """Left out: the first ``skip`` batches as the loader handed them out (worker j % workers made batch j); the
    batches that follow are the uninterrupted epoch's, pixels and all, whatever the skip."""
    train_index, _ = load_shard_splits(str(shard_dir))
    plan = StreamPlan(train_index.counts, 3, seed=2, steps=steps, shuffle_buffer=4)
    plan.set_epoch(2)
    whole = _stream_batches(train_index, plan, workers)
    assert len(whole) == steps
    for skip in range(1, steps):
        plan.set_epoch(2, skip)
        assert len(plan) == steps - skip
        rest = _stream_batches(train_index, plan, workers)
        assert [b.indices.tolist() for b in rest] == [b.indices.tolist() for b in whole[skip:]], skip
        assert all(torch.equal(a.images, b.images) and torch.equal(a.flips, b.flips) for a, b in zip(rest, whole[skip:]))
    plan.set_epoch(3)
    assert len(plan) == steps


def test_the_stream_gives_the_folder_s_images_and_classes(shard_dir, tiny_tree):
    from imagenet_trainer.data.index import build_index

    train, _ = load_shard_splits(str(shard_dir))
    folder = build_index(tiny_tree / "train")
    plan = StreamPlan(train.counts, 6, seed=0, steps=3)
    plan.set_epoch(1)
    batches = _stream_batches(train, plan, workers=2)
    assert len(batches) == 3 and all(len(b.labels) == 6 for b in batches)
    labels = torch.cat([b.labels for b in batches]).tolist()
    assert sorted(labels) == sorted(folder.labels.tolist())  # every image once, with its class
    assert sorted(torch.cat([b.indices for b in batches]).tolist()) == list(range(18))
    again = _stream_batches(train, plan, workers=2)
    assert all(torch.equal(a.images, b.images) for a, b in zip(batches, again))  # repeatable
    plan.set_epoch(2)
    other = _stream_batches(train, plan, workers=2)
    assert not all(torch.equal(a.labels, b.labels) for a, b in zip(batches, other))


def _cfg(data, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(data), output=str(out), arch="resnet18", epochs=3, batch_size=6, image_size=36,
                crop_size=32, workers=2, device="cpu", lr=0.05, lr_schedule="cosine", print_freq=1000,
                small_stem="off", cache="off", save_interval=0)
    return TrainConfig(**(base | kw))


def test_training_from_shards_sees_the_folder_s_counts(shard_dir, tiny_tree, tmp_path):
    for data, out in ((shard_dir, "shards"), (tiny_tree, "folder")):
        assert train(_cfg(data, tmp_path / out, epochs=1)) == 0
    shards, folder = (safe_load(tmp_path / r / "model_01.pt") for r in ("shards", "folder"))
    assert shards["classes"] == folder["classes"] == ["cat", "dog", "fox"]
    assert shards["metrics"]["train"]["count"] == folder["metrics"]["train"]["count"] == 18
    assert shards["metrics"]["val"]["count"] == folder["metrics"]["val"]["count"] == 6


@pytest.mark.parametrize("cache", ["off", "ram"])
def test_resume_from_shards_equals_uninterrupted(shard_dir, tmp_path, monkeypatch, cache):
    assert_resume_is_exact(shard_dir, tmp_path, monkeypatch, cache=cache, workers=2, guard=False)


@pytest.mark.parametrize("stop", [(2, 1), (2, 2)])
def test_shards_resume_part_way_through_an_epoch_exactly(shard_dir, tmp_path, monkeypatch, stop):
    assert_resume_is_exact(shard_dir, tmp_path, monkeypatch, part_way=stop, workers=2, guard=False, cache="off")


def test_orders_a_stream_cannot_follow_are_one_line_errors(shard_dir, tmp_path):
    cfg = _cfg(shard_dir, tmp_path / "r")
    for kw in ({"sampling": "balanced"}, {"repeated_aug": 2}, {"loader": "naive"}):
        with pytest.raises(UsageError, match="stream of shards"):
            build_data(cfg.replace(**kw), torch.device("cpu"))


@pytest.mark.slow
def test_two_processes_see_disjoint_images_and_count_val_once(shard_dir, tmp_path):
    """Two gloo ranks on shards of uneven sizes: each trains on its own part of the epoch, and val counts 6."""
    args = ["--data", str(shard_dir), "--arch", "resnet18", "--epochs", "1", "--batch-size", "6", "--crop-size", "32",
            "--image-size", "36", "--workers", "1", "--device", "cpu", "--cache", "off", "--small-stem", "off",
            "--save-interval", "0"]
    out = subprocess.run([sys.executable, "-m", "imagenet_trainer", "train", "--output", str(tmp_path / "two"),
                          "--ngpu", "2", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = safe_load(tmp_path / "two" / "model_01.pt")["metrics"]
    assert metrics["val"]["count"] == 6 and metrics["train"]["count"] == 18
    train_index, _ = load_shard_splits(str(shard_dir))
    parts = [set(_positions(StreamPlan(train_index.counts, 3, steps=3, rank=r, world_size=2), 1, 1)) for r in (0, 1)]
    assert not parts[0] & parts[1] and len(parts[0] | parts[1]) == 18


def test_training_over_http(http_root, tmp_path):
    assert train(_cfg(http_root, tmp_path / "web", epochs=1)) == 0
    metrics = safe_load(tmp_path / "web" / "model_01.pt")["metrics"]
    assert metrics["train"]["count"] == 18 and metrics["val"]["count"] == 6


def test_a_truncated_shard_is_logged_and_training_goes_on(shard_dir, tmp_path):
    tar = sorted((shard_dir / "train").glob("*.tar"))[1]
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 3])
    assert train(_cfg(shard_dir, tmp_path / "r", epochs=1)) == 0
    bad = (tmp_path / "r" / "bad_images.txt").read_text()
    assert tar.name in bad and "unread" in bad
    assert safe_load(tmp_path / "r" / "model_01.pt")["metrics"]["train"]["count"] < 18


def test_a_missing_shard_is_a_one_line_error(shard_dir, tmp_path, capsys):
    from imagenet_trainer.cli import main

    sorted((shard_dir / "train").glob("*.tar"))[0].unlink()
    assert main(["train", "--data", str(shard_dir), "--output", str(tmp_path / "r"), "--epochs", "1", "--device", "cpu",
                 "--workers", "1", "--cache", "off", "--batch-size", "6", "--crop-size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "shard-000000.tar: no such file or URL" in err[-1]


def test_evaluate_reads_val_shards_as_the_val_folder(shard_dir, tiny_tree, tmp_path):
    from imagenet_trainer.inference import evaluate_folder, load_model_file

    assert train(_cfg(tiny_tree, tmp_path / "r", epochs=1)) == 0
    lm = load_model_file(tmp_path / "r" / "model_01.pt", torch.device("cpu"))
    kw = dict(batch_size=4, workers=1, collect=True)
    folder = evaluate_folder(lm, str(tiny_tree), torch.device("cpu"), **kw)
    shards = evaluate_folder(lm, str(shard_dir), torch.device("cpu"), **kw)
    assert shards["count"] == folder["count"] == 6
    assert abs(shards["top1"] - folder["top1"]) < 1e-6 and "sample" in shards["paths"][0]


@pytest.mark.gpu
@pytest.mark.parametrize("loader", ["gpu", "hybrid"])
def test_the_gpu_decoders_read_shards(shard_dir, tiny_tree, tmp_path, loader):
    """nvJPEG and the CPU/GPU split on shards: the folder's counts, and the same crops as the CPU path's batch."""
    for data, out in ((shard_dir, "shards"), (tiny_tree, "folder")):
        assert train(_cfg(data, tmp_path / out, epochs=1, device="cuda", loader=loader)) == 0
    shards, folder = (safe_load(tmp_path / r / "model_01.pt")["metrics"] for r in ("shards", "folder"))
    assert shards["train"]["count"] == folder["train"]["count"] == 18
    assert shards["val"]["count"] == folder["val"]["count"] == 6
    cfg = _cfg(shard_dir, tmp_path / "x", device="cuda", workers=1, epoch_size=1)
    batches = {}
    for kind in ("cpu", loader):
        data = build_data(cfg.replace(loader=kind, cpu_share=0.0 if kind != "cpu" else None), torch.device("cuda"))
        data.train.cpu_first = False  # else the workers decode this first batch whole, and nvJPEG never runs
        data.train.batch_sampler.set_epoch(1)
        batches[kind] = next(iter(data.train))
    a, b = batches["cpu"], batches[loader]
    assert torch.equal(a.labels, b.labels)
    from tests.data.test_paths_agree import GPU_MEAN_TOLERANCE  # pixel levels, as the folder's paths agree

    levels = (a.images - b.images).abs().mean() * 255 * 0.225  # normalized back to levels
    print(f"{loader} against cpu: mean {levels:.2f} levels")
    assert levels <= GPU_MEAN_TOLERANCE


def test_a_python_caller_s_filesystem_opens_the_shards(shard_dir, tmp_path):
    local = pytest.importorskip("fsspec.implementations.local")

    class Counting(local.LocalFileSystem):
        opened: list = []

        def _open(self, path, *args, **kwargs):
            Counting.opened.append(path)
            return super()._open(path, *args, **kwargs)

    assert train(_cfg(shard_dir, tmp_path / "r", epochs=1, workers=0), filesystem=Counting(skip_instance_cache=True)) == 0
    assert any(p.endswith(".tar") for p in Counting.opened) and any(p.endswith("index.json") for p in Counting.opened)
    from imagenet_trainer.data import build

    assert build.FILESYSTEM is None  # the next run opens files itself again


@pytest.mark.parametrize("world", [1, 2])
def test_a_truncated_shard_keeps_every_rank_s_batch_count(shard_dir, world):
    """A shard cut short leaves each rank its number of batches, and no training batch without an image."""
    tar = sorted((shard_dir / "train").glob("*.tar"))[0]
    tar.write_bytes(tar.read_bytes()[:2048])  # the first sample's header and a little of its image
    train_index, _ = load_shard_splits(str(shard_dir))
    for rank in range(world):
        plan = StreamPlan(train_index.counts, 3, seed=0, steps=3 // world, rank=rank, world_size=world,
                          shuffle_buffer=1)
        plan.set_epoch(1)
        batches = _stream_batches(train_index, plan, workers=2)
        assert len(batches) == len(plan) and all(len(b.labels) > 0 for b in batches)
        bad = [x for b in batches for x in b.bad]
        assert len(bad) <= 2 and all("unread" in x.path for x in bad)


def test_a_gpu_loader_s_first_batch_of_shards_is_decoded_by_the_workers(shard_dir, cuda_stubs):
    """As for a folder, nvJPEG's start-up stays out of the first step: worker 0 decodes its first batch whole, and
    every later batch, in this pass and the next, goes to the GPU decoder at a CPU share of 0."""
    from imagenet_trainer.data.hybrid import EncodedFolderDataset, GpuCropDecoder, collate_mixed
    from imagenet_trainer.data.loader import DeviceLoader, make_dataloader

    train_index, _ = load_shard_splits(str(shard_dir))
    cpu = torch.device("cpu")
    plan = StreamPlan(train_index.counts, 2, seed=0, steps=4, shuffle_buffer=3)
    ds = EncodedFolderDataset(train_index, Geometry("rrc", 32, 32), cpu_share=0.0)
    loader = DeviceLoader(make_dataloader(ds, plan, 2, False, collate_fn=collate_mixed), cpu, (0.5,) * 3,
                          (0.25,) * 3, GpuCropDecoder(cpu, 32))
    batches = []
    to_device = loader._to_device
    loader._to_device = lambda batch, *a: batches.append(batch) or to_device(batch, *a)
    for epoch in (1, 2):
        plan.set_epoch(epoch)
        assert len(list(loader._iter_cuda())) == 4
    assert batches[0].lengths == [] and len(batches[0].decoded_pos) + len(batches[0].region_pos) == 2
    assert all(len(b.lengths) == 2 for b in batches[1:])
