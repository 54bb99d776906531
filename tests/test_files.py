"""The ground floor: atomic writes and the one folder walk every command uses."""

import os

import pytest

from imagenet_trainer.files import walk_files, walk_folders


@pytest.fixture
def looped(tmp_path):
    """a/x.jpg, a/b/y.jpg; a/b/up -> a (a loop), a/self -> a/self's folder, a/twin -> a/b (a second way in)."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.jpg").write_bytes(b"x")
    (tmp_path / "a" / "b" / "y.jpg").write_bytes(b"y")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "up")
    os.symlink(tmp_path / "a", tmp_path / "a" / "self")
    os.symlink(tmp_path / "a" / "b", tmp_path / "a" / "twin")
    os.symlink(tmp_path / "a" / "x.jpg", tmp_path / "a" / "b" / "x-again.jpg")
    return tmp_path / "a"


def test_the_walk_ends_on_link_loops_and_sees_each_folder_and_file_once(looped):
    folders = [d for d, _ in walk_folders(looped)]
    assert len(folders) == 2 and len({os.path.realpath(d) for d in folders}) == 2
    files = walk_files(looped, lambda name: name.endswith(".jpg"))
    assert sorted(os.path.realpath(f) for f in files) == sorted(str(looped / n) for n in ("b/y.jpg", "x.jpg"))


def test_commands_that_walk_folders_list_each_image_once(looped):
    from imagenet_trainer.inference import collect_images
    from imagenet_trainer.tools.images import image_files

    assert len(image_files(looped)) == 2
    assert len(collect_images([str(looped)])) == 2


def test_create_dataset_and_resize_end_on_link_loops_and_copy_each_image_once(tmp_path):
    from imagenet_trainer.cli import main
    from tests.conftest import jpeg_bytes, random_image

    src = tmp_path / "src"
    (src / "c" / "sub").mkdir(parents=True)
    for i in range(6):
        (src / "c" / f"{i}.jpg").write_bytes(jpeg_bytes(random_image(40, 50, seed=i)))
    os.symlink(src / "c", src / "c" / "sub" / "loop")  # the class folder inside itself
    os.symlink(src / "c", src / "c" / "self2")  # and a second way in
    assert main(["create-dataset", "--src", str(src), "--dst", str(tmp_path / "dst"), "--ratio", "0.5",
                 "--dim", "32"]) == 0
    train = sorted(p.name for p in (tmp_path / "dst" / "train" / "c").iterdir())
    val = sorted(p.name for p in (tmp_path / "dst" / "val" / "c").iterdir())
    assert len(train) + len(val) == 6 and not set(train) & set(val)
    assert main(["resize", str(src), "--out", str(tmp_path / "small"), "--size", "32"]) == 0
    assert len([p for p in (tmp_path / "small").rglob("*.jpg")]) == 6


def test_train_help_shows_the_defaults_a_plain_train_runs(capsys):
    from imagenet_trainer.cli import main

    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "--no-no-" not in out and "--no-bn-decay" in out
    assert "number of epochs (default: 16)" in out and "(default: resnet50)" in out  # the fast recipe's
