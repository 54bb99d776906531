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
