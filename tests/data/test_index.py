import os
import time

import numpy as np
import pytest

from imagenet_trainer.data.index import build_index, find_split_dirs, stray_images
from imagenet_trainer.errors import UsageError
from tests.conftest import jpeg_bytes, random_image


def test_classes_sorted_and_labels(tiny_tree):
    idx = build_index(tiny_tree / "train")
    assert idx.classes == ["cat", "dog", "fox"]
    assert len(idx) == 18
    assert np.bincount(idx.labels).tolist() == [6, 6, 6]
    assert all(os.path.isfile(idx.path(i)) for i in range(len(idx)))
    assert os.path.basename(idx.path(0)).startswith("cat")


@pytest.mark.parametrize("name", ["val", "validation", "test"])
def test_val_folder_names(tiny_tree, name):
    if name != "val":
        os.rename(tiny_tree / "val", tiny_tree / name)
    train, val = find_split_dirs(tiny_tree)
    assert train == tiny_tree / "train" and val == tiny_tree / name


def test_explicit_val_dir(tiny_tree, tmp_path):
    os.rename(tiny_tree / "val", tmp_path / "elsewhere")
    assert find_split_dirs(tiny_tree, tmp_path / "elsewhere")[1] == tmp_path / "elsewhere"
    assert find_split_dirs(tiny_tree)[1] is None
    with pytest.raises(UsageError, match=r"--val-dir .*nowhere: no such folder"):
        find_split_dirs(tiny_tree, tmp_path / "nowhere")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UsageError, match=r"--val-dir .*a_file: is a file, not a folder"):
        find_split_dirs(tiny_tree, tmp_path / "a_file")


def test_val_labels_follow_train_classes(tiny_tree):
    import shutil
    shutil.rmtree(tiny_tree / "val" / "cat")
    train = build_index(tiny_tree / "train")
    val = build_index(tiny_tree / "val", classes=train.classes)
    assert sorted(set(val.labels.tolist())) == [1, 2]


def test_val_class_not_in_train_is_named(tiny_tree):
    (tiny_tree / "val" / "wolf").mkdir()
    (tiny_tree / "val" / "wolf" / "a.jpg").write_bytes(jpeg_bytes(random_image(16, 16)))
    with pytest.raises(UsageError, match="wolf"):
        build_index(tiny_tree / "val", classes=build_index(tiny_tree / "train").classes)


def test_empty_class_folder_is_named(tiny_tree):
    (tiny_tree / "train" / "empty").mkdir()
    with pytest.raises(UsageError, match="empty class folder"):
        build_index(tiny_tree / "train")


def test_imagefolders_extensions_are_indexed_in_any_case(tiny_tree):
    cat = tiny_tree / "train" / "cat"
    for name in ("a.TIF", "b.tiff", "c.pgm", "d.webp", "e.BMP", "f.ppm", "g.gif", "h.txt"):
        (cat / name).write_bytes(b"x")
    idx = build_index(tiny_tree / "train", use_cache=False)
    names = {os.path.basename(idx.path(i)) for i in range(len(idx))}
    assert len(idx) == 24 and {"a.TIF", "b.tiff", "c.pgm", "d.webp", "e.BMP", "f.ppm"} <= names


def test_stray_images_are_the_image_files_outside_the_class_folders(tiny_tree):
    train = tiny_tree / "train"
    assert stray_images(train) == []
    (train / "b.JPG").write_bytes(jpeg_bytes(random_image(16, 16)))
    (train / "a.png").write_bytes(b"x")
    (train / ".hidden.jpg").write_bytes(b"x")
    (train / "notes.txt").write_text("x")
    assert stray_images(train) == [str(train / "a.png"), str(train / "b.JPG")]
    assert len(build_index(train, use_cache=False)) == 18  # never indexed


@pytest.mark.parametrize("setup,match", [
    (lambda r: None, "no such folder"),
    (lambda r: r.write_text("x"), "is a file"),
    (lambda r: r.mkdir(), "train"),
    (lambda r: (r.mkdir(), (r / "train").write_text("x")), "is a file"),
])
def test_bad_layouts(tmp_path, setup, match):
    root = tmp_path / "d"
    setup(root)
    with pytest.raises(UsageError, match=match):
        find_split_dirs(root)


def test_extensions_case_hidden_and_nested(tmp_path):
    d = tmp_path / "train" / "a"
    (d / "sub").mkdir(parents=True)
    data = jpeg_bytes(random_image(16, 16))
    for name in ("x.JPG", "y.JpEg", "sub/z.png", ".hidden.jpg", "notes.txt", "w.webp", "v.PPM", "u.bmp"):
        (d / name).write_bytes(data)
    (tmp_path / "train" / ".git").mkdir()
    idx = build_index(tmp_path / "train")
    names = sorted(os.path.basename(idx.path(i)) for i in range(len(idx)))
    assert names == ["u.bmp", "v.PPM", "w.webp", "x.JPG", "y.JpEg", "z.png"]
    assert idx.classes == ["a"]


def test_symlinked_tree_is_followed(tiny_tree, tmp_path):
    link_root = tmp_path / "linked"
    (link_root / "train").mkdir(parents=True)
    for c in ("cat", "dog", "fox"):
        os.symlink(tiny_tree / "train" / c, link_root / "train" / c)
    os.symlink(tiny_tree / "train" / "cat", tiny_tree / "train" / "cat" / "loop")  # a loop is not followed twice
    idx = build_index(link_root / "train")
    assert len(idx) == 18


def test_cache_is_reused_and_rebuilt_when_stale(tiny_tree, monkeypatch):
    from imagenet_trainer.data import index as index_mod

    first = build_index(tiny_tree / "train")
    calls = []
    real = index_mod._scan_class
    monkeypatch.setattr(index_mod, "_scan_class", lambda d: calls.append(d) or real(d))
    again = build_index(tiny_tree / "train")
    assert calls == [] and np.array_equal(first.paths, again.paths)
    time.sleep(0.01)
    (tiny_tree / "train" / "dog" / "new.jpg").write_bytes(jpeg_bytes(random_image(16, 16)))
    os.utime(tiny_tree / "train" / "dog", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    fresh = build_index(tiny_tree / "train")
    assert len(calls) == 3 and len(fresh) == 19


def test_a_link_above_the_class_folder_is_a_clear_error(tiny_tree):
    """Followed, it would file every class's images under this class as well."""
    link = tiny_tree / "train" / "dog" / "up"
    os.symlink(tiny_tree / "train", link)
    with pytest.raises(UsageError, match=f"{link}: links to .*a folder that holds this class folder"):
        build_index(tiny_tree / "train", use_cache=False)
