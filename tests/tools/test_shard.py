"""``shard``: a folder tree written as tar shards with an index, checked, atomic, resumable."""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from imagenet_trainer.cli import main
from imagenet_trainer.data.index import build_index
from imagenet_trainer.data.shards import read_samples
from imagenet_trainer.errors import UsageError
from imagenet_trainer.tools.shard import parse_size, shard_dataset


def _samples(split_dir: Path) -> list:
    doc = json.loads((split_dir / "index.json").read_text())
    out = []
    for s in doc["shardlist"]:
        got = list(read_samples(str(split_dir / s["url"])))
        assert len(got) == s["nsamples"]
        out += got
    return out


def test_shards_hold_every_image_once_with_its_class(tiny_tree, tmp_path):
    report = shard_dataset(tiny_tree, tmp_path / "sh", shard_size=2**20, workers=2)
    assert report["splits"]["train"]["samples"] == 18 and report["splits"]["val"]["samples"] == 6
    assert report["problems"] == []
    for split in ("train", "val"):
        index = build_index(tiny_tree / split, use_cache=False)
        doc = json.loads((tmp_path / "sh" / split / "index.json").read_text())
        assert doc["__kind__"] == "wids-shard-index-v1" and doc["classes"] == ["cat", "dog", "fox"]
        assert doc["total"] == len(index)
        samples = _samples(tmp_path / "sh" / split)
        by_content = {index.read(i): int(index.labels[i]) for i in range(len(index))}
        assert sorted(s.image for s in samples) == sorted(by_content)  # the files' own bytes, each once
        assert all(by_content[s.image] == s.label for s in samples)
        assert Counter(s.label for s in samples) == Counter(index.labels.tolist())


def test_shards_are_random_samples_of_the_classes(tmp_path):
    from tests.conftest import write_class_tree

    write_class_tree(tmp_path / "src" / "train", classes=4, per_class=20, shape=lambda i: (24, 24))
    shard_dataset(tmp_path / "src", tmp_path / "sh", shard_size=2**20, workers=1)
    first = _samples(tmp_path / "sh" / "train")[:20]
    assert len({s.label for s in first}) >= 3  # not one class after another


def test_a_rerun_keeps_whole_shards_and_writes_the_missing_ones(tiny_tree, tmp_path):
    shard_dataset(tiny_tree, tmp_path / "sh", shard_size=16384, workers=1)
    shards = sorted((tmp_path / "sh" / "train").glob("*.tar"))
    assert len(shards) >= 2
    kept, lost = shards[0], shards[-1]
    before, content = kept.stat().st_mtime_ns, lost.read_bytes()
    lost.unlink()  # as if the run had stopped before it
    (tmp_path / "sh" / "train" / "index.json").unlink()
    report = shard_dataset(tiny_tree, tmp_path / "sh", shard_size=16384, workers=1)
    assert kept.stat().st_mtime_ns == before and lost.read_bytes() == content
    assert report["splits"]["train"]["samples"] == 18
    assert not [p for p in (tmp_path / "sh").rglob("*") if ".tmp" in p.name]


def test_unreadable_images_are_reported_and_left_out(tiny_tree, tmp_path, capsys):
    bad = tiny_tree / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["shard", str(tiny_tree), str(tmp_path / "sh"), "--shard-size", "1M"]) == 0
    out = capsys.readouterr().out
    assert f"{bad}: truncated" in out and "left out" in out
    assert len(_samples(tmp_path / "sh" / "train")) == 18


def test_resize_shrinks_the_shorter_side(tiny_tree, tmp_path):
    from PIL import Image
    import io

    shard_dataset(tiny_tree, tmp_path / "sh", shard_size=2**20, resize=32, workers=1)
    for s in _samples(tmp_path / "sh" / "train"):
        assert min(Image.open(io.BytesIO(s.image)).size) == 32


def test_bad_destinations_and_changed_settings_are_one_line_errors(tiny_tree, tmp_path, capsys):
    assert main(["shard", str(tiny_tree), str(tiny_tree / "train" / "shards")]) == 2
    assert "inside the source folder" in capsys.readouterr().err
    shard_dataset(tiny_tree, tmp_path / "sh", shard_size=2**20, workers=1)
    with pytest.raises(UsageError, match="other settings"):
        shard_dataset(tiny_tree, tmp_path / "sh", shard_size=2**21, workers=1)
    assert main(["shard", str(tiny_tree), str(tmp_path / "x"), "--shard-size", "lots"]) == 2


def test_shard_sizes_parse():
    assert parse_size("256M") == 256 * 2**20 and parse_size("1G") == 2**30 and parse_size("4096") == 4096
    assert parse_size("2MiB") == 2 * 2**20


def test_a_shard_is_a_plain_tar_in_the_webdataset_layout(tiny_tree, tmp_path):
    shard_dataset(tiny_tree, tmp_path / "sh", shard_size=2**20, workers=1)
    with tarfile.open(next((tmp_path / "sh" / "val").glob("*.tar"))) as tar:
        names = tar.getnames()
    assert names[:2] == ["000000000.jpg", "000000000.cls"] and len(names) == 12
