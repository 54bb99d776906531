import os

import pytest

from imagenet_trainer.data.build import default_workers


@pytest.mark.parametrize("cores,procs,want", [(16, 1, 15), (32, 1, 16), (2, 1, 1), (32, 2, 10), (128, 8, 10),
                                               (8, 2, 3), (2, 2, 1)])
def test_default_workers_leave_cores_for_each_process(monkeypatch, cores, procs, want):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(procs))
    assert default_workers() == want


@pytest.mark.parametrize("cores,procs,want", [(16, 1, 15), (32, 2, 14), (128, 8, 14), (8, 2, 2), (2, 2, 1)])
def test_compiled_ranks_leave_two_cores_each(monkeypatch, cores, procs, want):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(procs))
    assert default_workers(compiled=True) == want
