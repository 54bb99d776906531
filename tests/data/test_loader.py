import time

import numpy as np
import pytest
import torch

from imagenet_trainer.data.dataset import Batch, ImageFolderDataset, collate
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import build_index
from imagenet_trainer.data.loader import (IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, Normalizer, image_dataloader,
                                          make_dataloader)
from imagenet_trainer.data.sampler import EpochBatchSampler
from imagenet_trainer.data.slots import BatchSlots
from tests.conftest import write_class_tree


@pytest.fixture
def index(tmp_path):
    return build_index(write_class_tree(tmp_path / "train", 3, 10, lambda i: (40 + 3 * i, 50)),
                       cache_dir=tmp_path / "cache")


def _batches(loader, epochs: int, hold: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copies of each batch's pixels and indices, taken just before asking for the next batch."""
    out = []
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        for b in loader:
            time.sleep(hold)  # let the workers run ahead into their next slots while this batch is held
            out.append((b.images.numpy().copy(), b.indices.numpy().copy()))
    return out


def test_workers_writing_shared_slots_give_the_batches_of_a_single_process(index):
    """Workers reuse a ring of slots; no batch is overwritten before the consumer asks for the next."""
    g = Geometry("rrc", crop_size=24, image_size=28)
    ref = _batches(make_dataloader(ImageFolderDataset(index, g), EpochBatchSampler(index.labels, 4), 0, False), 3)
    loader = image_dataloader(ImageFolderDataset(index, g), EpochBatchSampler(index.labels, 4), 2, False)
    got = _batches(loader, 3, hold=0.02)
    assert len(got) == len(ref) == 3 * (30 // 4)
    for (a, ia), (b, ib) in zip(ref, got):
        assert np.array_equal(ia, ib) and np.array_equal(a, b)
    assert loader.collate_fn.keywords["slots"] is not None


def test_batch_in_a_slot_travels_as_its_address(index):
    """Pickled from a worker, a slotted batch carries no pixels; the receiver reads the ring."""
    import pickle

    slots = BatchSlots(workers=1, depth=3, capacity=2 * 8 * 8 * 3)
    info = torch.utils.data._utils.worker.WorkerInfo(id=0, num_workers=1, seed=0, dataset=None)
    torch.utils.data._utils.worker._worker_info = info
    try:
        crops = [np.full((1, 8, 8, 3), v, np.uint8) for v in (7, 9)]
        batch = collate([(c, 0, False, i) for i, c in enumerate(crops)], slots)
        too_big = collate([(np.zeros((1, 9, 9, 3), np.uint8), 0, False, 0)] * 2, slots)
    finally:
        torch.utils.data._utils.worker._worker_info = None
    assert batch.slot is not None and batch.slot.slot == 0 and too_big.slot is None
    data = pickle.dumps(batch)
    assert len(data) < 2000  # the 384 pixel bytes stay in the slot
    back = pickle.loads(data)
    assert isinstance(back, Batch) and back.images.shape == (2, 8, 8, 3)
    assert back.images[0].eq(7).all() and back.images[1].eq(9).all()


def test_cpu_normalizer_flips_and_normalizes_like_the_formula():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (5, 6, 7, 3), dtype=torch.uint8)
    flips = torch.tensor([True, False, True, True, False])
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    want = (images.float() / 255 - mean) / std
    want[flips] = want[flips].flip(2)
    want = want.permute(0, 3, 1, 2)
    got = Normalizer(IMAGENET_MEAN, IMAGENET_STD, torch.device("cpu"))(images.clone(), flips)
    assert got.shape == (5, 3, 6, 7) and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.get_num_threads() >= 1


def test_cpu_normalizer_takes_batches_of_any_strides():
    """An HWC view of CHW memory, as torch 2.14 resizes: the same result as the contiguous batch."""
    torch.manual_seed(1)
    chw = torch.randint(0, 256, (3, 3, 6, 7), dtype=torch.uint8)
    strided = chw.permute(0, 2, 3, 1)
    assert not strided.is_contiguous()
    flips = torch.tensor([True, False, True])
    norm = Normalizer(IMAGENET_MEAN, IMAGENET_STD, torch.device("cpu"))
    assert torch.equal(norm(strided, flips).clone(), norm(strided.contiguous(), flips))


def test_collate_orders_strided_crops_in_c_order():
    """Crops that are HWC views of CHW memory (torch 2.14's resize output) give a C-ordered batch."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (3, 5, 4), dtype=np.uint8).transpose(1, 2, 0)[None] for _ in range(3)]
    assert not crops[0].flags.c_contiguous
    batch = collate([(c, k, False, k) for k, c in enumerate(crops)])
    assert batch.images.is_contiguous() and batch.images.shape == (3, 5, 4, 3)
    assert all(np.array_equal(batch.images[k].numpy(), crops[k][0]) for k in range(3))


def test_cpu_normalizer_passes_an_empty_batch():
    """A batch whose files were all unreadable has no pixels; it must not stop the run."""
    out = Normalizer(IMAGENET_MEAN, IMAGENET_STD, torch.device("cpu"))(torch.empty(0, 0, 0, 3, dtype=torch.uint8),
                                                                        torch.empty(0, dtype=torch.bool))
    assert out.shape == (0, 3, 0, 0)


def test_device_loader_on_cpu_delivers_normalized_channels_last(index):
    g = Geometry("center", crop_size=24, image_size=28)
    loader = DeviceLoader(image_dataloader(ImageFolderDataset(index, g), EpochBatchSampler(index.labels, 8), 2, False),
                          torch.device("cpu"), IMAGENET_MEAN, IMAGENET_STD)
    batches = list(loader)
    assert len(batches) == 3 and all(b.images.shape == (8, 3, 24, 24) for b in batches)
    assert all(b.images.is_contiguous(memory_format=torch.channels_last) for b in batches)


def test_too_little_shared_memory_falls_back_to_torch_batches(index, monkeypatch):
    import imagenet_trainer.data.loader as loader_mod

    monkeypatch.setattr(loader_mod, "shared_memory_free", lambda: 1000)
    g = Geometry("center", crop_size=24, image_size=28)
    with pytest.warns(UserWarning, match="/dev/shm"):
        loader = image_dataloader(ImageFolderDataset(index, g), EpochBatchSampler(index.labels, 8), 2, False)
    assert loader.collate_fn.keywords["slots"] is None
    assert sum(len(b.labels) for b in loader) == 24


@pytest.mark.parametrize("workers", [0, 2])
def test_a_batch_of_only_unreadable_files_passes_with_its_paths(tmp_path, workers):
    from imagenet_trainer.data.sampler import ShardBatchSampler

    root = write_class_tree(tmp_path / "train", 1, 4, lambda i: (40, 50))
    (root / "c9").mkdir()
    for i in range(4):
        (root / "c9" / f"{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    index = build_index(root, cache_dir=tmp_path / "cache")
    g = Geometry("center", crop_size=24, image_size=28)
    loader = DeviceLoader(image_dataloader(ImageFolderDataset(index, g), ShardBatchSampler(len(index), 4), workers, False),
                          torch.device("cpu"), IMAGENET_MEAN, IMAGENET_STD)
    batches = list(loader)
    assert [len(b.labels) for b in batches] == [4, 0]
    assert batches[1].images.shape[0] == 0 and len(batches[1].bad) == 4


class _Priority(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import os
        return torch.tensor(os.getpriority(os.PRIO_PROCESS, 0))


@pytest.mark.parametrize("lower", [True, False])
def test_workers_can_yield_to_the_training_process(lower):
    import os

    from imagenet_trainer.data.loader import WORKER_NICE

    sampler = torch.utils.data.BatchSampler(range(4), 2, False)
    loader = make_dataloader(_Priority(), sampler, 1, False, persistent=False, collate_fn=torch.stack,
                             lower_priority=lower)
    seen = {int(p) for b in loader for p in b}
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen == {min(19, mine + WORKER_NICE) if lower else mine}


def test_cpu_loader_workers_yield_on_gpu_runs_only(index):
    from imagenet_trainer.data.loader import _lower_priority

    sampler = EpochBatchSampler(index.labels, 5, seed=0)
    dataset = ImageFolderDataset(index, Geometry("rrc", 32, 36))
    assert image_dataloader(dataset, sampler, 1, pin_memory=True).worker_init_fn.func is _lower_priority
    assert image_dataloader(dataset, sampler, 1, pin_memory=False).worker_init_fn is None


@pytest.mark.parametrize("ranks, workers, expected", [
    (2, 14, set(range(4, 32))),  # 2 ranks x 14 workers: cores 0-3 stay for the ranks' own threads
    (4, 6, set(range(8, 32))),
    (1, 14, None),  # one rank keeps every core (not measured otherwise)
    (2, 16, None),  # no core left over: the workers may use every one
    (2, 20, None),
    (2, 0, None),  # no workers: the loading runs in the rank itself
])
def test_workers_keep_off_the_ranks_cores_when_ranks_share_the_machine(monkeypatch, ranks, workers, expected):
    import os

    from imagenet_trainer.data.loader import worker_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(ranks))
    cores = worker_cores(workers)
    assert (set(cores) if cores is not None else None) == expected


def test_worker_cores_start_from_the_cores_this_process_may_use(monkeypatch):
    import os

    from imagenet_trainer.data.loader import worker_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {8, 9, 10, 11, 12, 13})  # e.g. a cpuset
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert worker_cores(2) == {10, 11, 12, 13}


@pytest.mark.parametrize("value, expected", [(None, 1), ("", 1), ("0", 1), ("1", 1), ("8", 8)])
def test_local_processes_reads_the_launchers_count(monkeypatch, value, expected):
    from imagenet_trainer.data.loader import local_processes

    if value is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", value)
    assert local_processes() == expected


class _Cores(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        import os
        return torch.tensor(sorted(os.sched_getaffinity(0)))


def test_a_lower_priority_worker_runs_on_the_cores_given(monkeypatch):
    import os

    from imagenet_trainer.data import loader as loader_module

    mine = os.sched_getaffinity(0)
    last = max(mine)
    monkeypatch.setattr(loader_module, "worker_cores", lambda workers: frozenset({last}))
    sampler = torch.utils.data.BatchSampler(range(2), 1, False)
    loader = make_dataloader(_Cores(), sampler, 1, False, persistent=False, collate_fn=torch.stack,
                             lower_priority=True)
    assert [b.tolist() for b in loader] == [[[last]], [[last]]]
    assert os.sched_getaffinity(0) == mine  # this process keeps its cores


def test_a_forked_worker_never_finalizes_the_parents_objects(tmp_path):
    """A worker's collector must not finalize what was garbage in the parent at the fork (a CUDA event
    destroyed in a forked child aborts it)."""
    import gc
    import os

    import imagenet_trainer.data.loader  # noqa: F401  (registers the fork hook)

    marker = tmp_path / "finalized"

    class Cycle:
        def __del__(self):
            with open(marker, "a") as f:
                f.write(f"{os.getpid()}\n")

    was_enabled = gc.isenabled()
    gc.disable()  # keep the cycle uncollected until the fork
    try:
        c = Cycle()
        c.me = c
        del c
        pid = os.fork()
        if pid == 0:
            gc.collect()
            os._exit(0)
        os.waitpid(pid, 0)
        assert not marker.exists()
        gc.collect()
        assert marker.read_text().split() == [str(os.getpid())]
    finally:
        if was_enabled:
            gc.enable()


def _indices(loader, epochs, stop_after: dict | None = None) -> list[list[int]]:
    """Each epoch's batch indices from ``loader``; ``stop_after[e]``: leave epoch e after that many batches."""
    out = []
    for epoch in epochs:
        loader.batch_sampler.set_epoch(epoch)
        got = []
        for b in loader:
            got.append(b.indices.tolist())
            if stop_after and len(got) == stop_after.get(epoch):
                break
        out.append(got)
    return out


def _cpu_loader(index, continuous: bool) -> DeviceLoader:
    sampler = EpochBatchSampler(index.labels, 4, seed=5)
    sampler.continuous = continuous
    dataset = ImageFolderDataset(index, Geometry("rrc", 16, 16))
    return DeviceLoader(image_dataloader(dataset, sampler, 2, False), torch.device("cpu"), IMAGENET_MEAN, IMAGENET_STD)


def test_the_workers_start_on_the_next_epoch_before_it_is_asked_for(index):
    """Over a continuous sampler one DataLoader iterator serves the epochs in turn: when an epoch ends, the
    workers hold the next one's first batches already, and every epoch has the batches it has without."""
    plain, cont = _cpu_loader(index, False), _cpu_loader(index, True)
    epochs = [1, 2, 3]
    assert _indices(cont, epochs[:1]) == _indices(plain, epochs[:1])
    running = cont._running
    assert running._send_idx > len(cont)  # the next epoch's batches were handed to the workers
    assert _indices(cont, epochs[1:]) == _indices(plain, epochs[1:])
    assert cont._running is running  # one iterator for all three epochs


def test_an_epoch_left_part_way_or_out_of_turn_starts_the_iterator_again(index):
    plain, cont = _cpu_loader(index, False), _cpu_loader(index, True)
    ref = _indices(plain, [1, 2, 3, 7])
    got = _indices(cont, [1, 2], stop_after={1: 2})  # epoch 1 left after 2 of its 7 batches
    assert got == [ref[0][:2], ref[1]]
    assert _indices(cont, [7]) == [ref[3]]  # a jump (a resumed run): from epoch 7's start


@pytest.mark.parametrize("slow", ["training", "producer"])
def test_the_cuda_producer_tells_the_controller_which_end_waited(index, monkeypatch, cuda_stubs, slow):
    """The CUDA path's prefetching thread, run on the CPU with CUDA's streams and events stubbed. A slow training
    step shows in the controller's windows as the producer blocked on the full queue; a slow device side, as
    training waiting for its batches."""
    from types import SimpleNamespace

    from imagenet_trainer.data.hybrid import SplitController

    loader = _cpu_loader(index, False)
    if slow == "producer":  # the device side of each batch takes 50 ms
        to_device = loader._to_device
        monkeypatch.setattr(loader, "_to_device",
                            lambda batch, hold=None, decoded=None: time.sleep(0.05) or to_device(batch, hold, decoded))
    loader.prefetch = 1
    loader.controller = SplitController(SimpleNamespace(cpu_share=SimpleNamespace(value=0.3)), lag=1, window=3,
                                        fixed=True)
    for _ in loader._iter_cuda():
        if slow == "training":
            time.sleep(0.05)
    windows = list(loader.controller.history)
    assert len(windows) == 2
    for w in windows:
        if slow == "training":
            assert w.producer_blocked > 0.5 and w.training_waited < 0.2
        else:
            assert w.training_waited > 0.5 and w.producer_blocked < 0.2 and w.device_s >= 0.05


def test_the_cuda_producer_keeps_the_first_batchs_wait_for_the_training_loops_line(index, cuda_stubs):
    loader = _cpu_loader(index, False)
    batches = loader._iter_cuda()
    next(batches)
    first = loader.first_batch
    assert first.workers > 0 and first.device > 0
    assert str(first) == f"the workers' first batch after {first.workers:.1f} s, its device side {first.device:.1f} s"
    batches.close()
