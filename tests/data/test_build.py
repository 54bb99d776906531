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
    ({"crop_size": 64, "image_size": 32}, "--crop-size 64: must be at most --image-size"),
    ({"loader": "dali"}, "--loader dali"),
    ({"batch_size": 0}, "--batch-size 0"),
    ({"epoch_size": 0}, "--epoch-size 0"),
])
def test_bad_data_options_name_the_option(changes, option):
    """Library callers bypass argparse's choices; each bad value still gets a one-line error naming it."""
    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.errors import UsageError

    with pytest.raises(UsageError, match=option.replace("/", r"\/")):
        TrainConfig(data="x").replace(**changes).check()


def test_an_unknown_normalization_is_a_clear_error():
    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.data.build import normalization
    from imagenet_trainer.errors import UsageError

    with pytest.raises(UsageError, match="--normalize cifar: unknown; choose imagenet, auto or fixed"):
        normalization(TrainConfig(data="x", normalize="cifar"), None)


def test_images_outside_the_class_folders_get_a_note(tiny_tree, tmp_path, capsys):
    import torch

    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.data.build import build_data
    from tests.conftest import jpeg_bytes, random_image

    cfg = TrainConfig(data=str(tiny_tree), batch_size=4, workers=0, cache="off", cache_dir=str(tmp_path / "c"))
    build_data(cfg, torch.device("cpu"))
    assert "outside the class folders" not in capsys.readouterr().err
    (tiny_tree / "train" / "stray.jpg").write_bytes(jpeg_bytes(random_image(16, 16)))
    for name in ("a.jpg", "b.jpg"):
        (tiny_tree / "val" / name).write_bytes(jpeg_bytes(random_image(16, 16)))
    data = build_data(cfg, torch.device("cpu"))
    err = capsys.readouterr().err
    assert f"note: {tiny_tree / 'train' / 'stray.jpg'} is outside the class folders of {tiny_tree / 'train'}, so " \
           "not used; move each image into the folder of its class" in err
    assert f"note: 2 images (such as {tiny_tree / 'val' / 'a.jpg'}) are outside the class folders of " \
           f"{tiny_tree / 'val'}" in err
    assert len(data.train_index) == 18
    build_data(cfg, torch.device("cpu"), rank=1, world_size=2)  # only the first process says it
    assert "outside the class folders" not in capsys.readouterr().err


def _photos(root, sizes):
    """root/train/c/<i>.jpg, one JPEG of each (width, height)."""
    from tests.conftest import jpeg_bytes, random_image

    d = root / "train" / "c"
    d.mkdir(parents=True)
    for i, (w, h) in enumerate(sizes):
        (d / f"{i}.jpg").write_bytes(jpeg_bytes(random_image(h, w, seed=i)))
    from imagenet_trainer.data.index import build_index

    return build_index(root / "train")


def test_the_cache_keeps_squares_at_the_photos_longer_side(tmp_path):
    """Squares at the longer side (its 90th percentile, to a multiple of 16), at least the resize and at most twice
    it: a crop of a non-square photo keeps the pixels the JPEG path reads."""
    from imagenet_trainer.data.build import cache_side

    index = _photos(tmp_path / "a", [(90, 48)] * 9 + [(48, 200)])  # nine 90 x 48, one 48 x 200 portrait
    assert cache_side(index, 54) == 96  # 90 up to a multiple of 16; the one tall photo is the top tenth
    assert cache_side(index, 40) == 80  # at most twice the resize
    assert cache_side(index, 112) == 112  # never below the resize
    squares = _photos(tmp_path / "b", [(32, 32)] * 4)
    assert cache_side(squares, 32) == 32  # CIFAR's squares stay at their size
    mnist = _photos(tmp_path / "c", [(28, 28)] * 4)
    assert cache_side(mnist, 28) == 28  # at the resize, not rounded up: padded crops stay a gather


def test_the_cache_falls_back_to_the_resize_where_the_longer_side_does_not_fit(tmp_path, monkeypatch):
    import torch

    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.data import cache
    from imagenet_trainer.data.build import cache_plan
    from imagenet_trainer.errors import UsageError

    index = _photos(tmp_path, [(96, 48)] * 10)  # squares of 96 px: 10 x 27,648 bytes; of 54 px: 10 x 8,748
    cpu = torch.device("cpu")
    for mode in ("auto", "ram"):
        cfg = TrainConfig(data=str(tmp_path), cache=mode, crop_size=48, image_size=54)
        monkeypatch.setattr(cache, "available_ram", lambda: 4 * 400_000)  # a quarter: room for 400,000 bytes
        assert cache_plan(cfg, cpu, index, None)[::2] == ("ram", 96)
        monkeypatch.setattr(cache, "available_ram", lambda: 4 * 100_000)
        assert cache_plan(cfg, cpu, index, None)[::2] == ("ram", 54)
        monkeypatch.setattr(cache, "available_ram", lambda: 4 * 50_000)
        if mode == "auto":
            assert cache_plan(cfg, cpu, index, None)[::2] == ("off", 54)
        else:
            with pytest.raises(UsageError, match="--cache ram: the decoded images need"):
                cache_plan(cfg, cpu, index, None)


def test_build_data_caches_the_photos_at_the_chosen_side(tmp_path, capsys):
    import torch

    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.data.build import build_data

    _photos(tmp_path, [(96, 48)] * 8)  # longer side 96, twice the resize
    cfg = TrainConfig(data=str(tmp_path), batch_size=4, workers=0, cache="ram", crop_size=40, image_size=48,
                      cache_dir=str(tmp_path / "c"))
    data = build_data(cfg, torch.device("cpu"))
    assert data.train.side == 96 and data.train.cache.images.shape[1:] == (96, 96, 3)
    assert "cached 8 train images at 96 px" in capsys.readouterr().err
