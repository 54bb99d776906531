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


@pytest.mark.parametrize("changes, option", [
    ({"train_crop": "square"}, "--train-crop square"),
    ({"sampling": "weighted"}, "--sampling weighted"),
    ({"crop_size": 4, "image_size": 8}, "--crop-size 4"),
    ({"crop_size": 64, "image_size": 32}, "--crop-size 64 / --image-size 32"),
    ({"loader": "dali"}, "--loader dali"),
    ({"batch_size": 0}, "--batch-size 0"),
    ({"epoch_size": 0}, "--epoch-size 0"),
])
def test_bad_data_options_name_the_option(changes, option):
    """Library callers bypass argparse's choices; each bad value still gets a one-line error naming it."""
    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.data.build import check_data_options
    from imagenet_trainer.errors import UsageError

    with pytest.raises(UsageError, match=option.replace("/", r"\/")):
        check_data_options(TrainConfig(data="x").replace(**changes))


def test_an_unknown_normalization_is_a_clear_error():
    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.data.build import normalization
    from imagenet_trainer.errors import UsageError

    with pytest.raises(UsageError, match="--normalize cifar: unknown; choose imagenet or auto"):
        normalization(TrainConfig(data="x", normalize="cifar"), None)
