"""verify, resize, create-dataset and prepare-imagenet on crafted trees and fake archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagenet_trainer.cli import main
from tests.conftest import jpeg_bytes, random_image


def _tree_hash(root: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _jpeg(w: int, h: int, seed: int = 0, **kw) -> bytes:
    return jpeg_bytes(random_image(h, w, seed=seed), **kw)


# ------------------------------------------------------------------ verify

@pytest.fixture
def messy(tmp_path):
    root = tmp_path / "data"
    for s, (split, n) in enumerate((("train", 12), ("val", 2))):
        for k, c in enumerate(("a", "b")):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):  # distinct seeds: no accidental duplicates
                (d / f"{i}.jpg").write_bytes(_jpeg(40, 30, seed=100 * s + 20 * k + i))
    good = _jpeg(40, 30, seed=7)
    (root / "train" / "a" / "trunc.jpg").write_bytes(good[: len(good) // 2])
    (root / "train" / "a" / "junk.jpg").write_bytes(b"not an image")
    (root / "train" / "a" / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(random_image(30, 30)).convert("CMYK").save(buf, format="JPEG")
    (root / "train" / "b" / "cmyk.jpg").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(random_image(30, 30)).save(buf, format="PNG")
    (root / "train" / "b" / "png.jpg").write_bytes(buf.getvalue())
    (root / "train" / "thin").mkdir()
    (root / "train" / "thin" / "x.jpg").write_bytes(_jpeg(20, 20, seed=3))
    (root / "val" / "a" / "dup.jpg").write_bytes((root / "train" / "b" / "0.jpg").read_bytes())
    (root / "val" / "loose.jpg").write_bytes(_jpeg(20, 20, seed=5))  # outside the class folders
    (root / "train" / "b" / "gone.jpg").symlink_to(root / "nowhere.jpg")  # a link to a deleted file
    (root / "val" / "zzz").mkdir()  # a val class train does not have
    (root / "val" / "zzz" / "z.jpg").write_bytes(_jpeg(20, 20, seed=9))
    return root


def test_verify_finds_every_fault(messy, capsys):
    assert main(["verify", str(messy), "--json", "--workers", "1"]) == 1
    rep = json.loads(capsys.readouterr().out)
    faults = {Path(p["path"]).name: p["fault"] for p in rep["problems"]}
    assert faults["trunc.jpg"].startswith("truncated")
    assert faults["junk.jpg"] == "undecodable: not an image format that JPEG or Pillow decoders read"  # no BytesIO repr
    assert faults["empty.jpg"] == "undecodable: empty file"
    assert "CMYK" in faults["cmyk.jpg"]
    assert "content is PNG" in faults["png.jpg"]
    assert faults["loose.jpg"] == "outside the class folders: not used; move it into the folder of its class"
    assert faults["zzz"].startswith("class folder not in train/: train refuses it")
    assert faults["gone.jpg"].startswith("broken link: ") and faults["gone.jpg"].endswith("training skips it")
    assert {"split": "train", "class": "thin", "images": 1} in rep["small_classes"]
    assert len(rep["duplicates"]) == 1 and rep["duplicates"][0]["val"][0].endswith("dup.jpg")


def test_verify_of_a_missing_folder_names_the_path_not_an_option(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"imagenet-trainer verify: error: {tmp_path / 'nowhere'}: no such folder; give the folder that " \
                  "holds train/ and val/"


def test_verify_quarantine_moves_never_deletes(messy, tmp_path, capsys):
    q = tmp_path / "quarantine"
    assert main(["verify", str(messy), "--quarantine", str(q), "--workers", "1"]) == 1
    assert (q / "train" / "a" / "trunc.jpg").exists() and (q / "train" / "a" / "junk.jpg").exists()
    assert not (messy / "train" / "a" / "trunc.jpg").exists()
    assert (messy / "train" / "b" / "cmyk.jpg").exists()  # readable: reported, not moved
    assert main(["verify", str(messy), "--quarantine", str(messy / "q")]) == 2  # inside the data: refused
    assert "inside the dataset" in capsys.readouterr().err


# ------------------------------------------------------------------ resize

def test_resize_geometry_and_reruns(tmp_path, capsys):
    src = tmp_path / "src" / "c"
    src.mkdir(parents=True)
    (src / "big.jpg").write_bytes(_jpeg(600, 400, seed=1))
    (src / "small.jpg").write_bytes(_jpeg(100, 80, seed=2))
    (src / "bad.jpg").write_bytes(b"broken")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated: 300 wide x 500 tall
    (src / "rot.jpg").write_bytes(_jpeg(500, 300, seed=3, exif=exif.tobytes()))
    before = _tree_hash(tmp_path / "src")
    out = tmp_path / "out"
    assert main(["resize", str(tmp_path / "src"), "--out", str(out), "--size", "200", "--json", "--workers", "1"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["resized"], counts["small"], len(counts["corrupt"])) == (2, 1, 1)
    assert Image.open(out / "c" / "big.jpg").size == (300, 200)
    assert Image.open(out / "c" / "rot.jpg").size == (200, 333)  # upright, shorter side 200
    assert (out / "c" / "small.jpg").read_bytes() == (src / "small.jpg").read_bytes()
    assert not (out / "c" / "bad.jpg").exists()
    assert _tree_hash(tmp_path / "src") == before  # the source is untouched
    assert main(["resize", str(tmp_path / "src"), "--out", str(out), "--size", "200", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["resized"] == 0 and again["done"] == 3
    # a smaller --size does the work again: the earlier outputs are too large to count as done
    assert main(["resize", str(tmp_path / "src"), "--out", str(out), "--size", "90", "--json"]) == 0
    smaller = json.loads(capsys.readouterr().out)
    assert (smaller["resized"], smaller["done"]) == (2, 1)  # small.jpg's copy (shorter side 80) is done
    assert Image.open(out / "c" / "big.jpg").size == (135, 90) and Image.open(out / "c" / "rot.jpg").size == (90, 150)


def test_resize_in_place(tmp_path, capsys):
    d = tmp_path / "imgs"
    d.mkdir()
    (d / "a.jpg").write_bytes(_jpeg(512, 256))
    (d / "bad.jpg").write_bytes(b"broken")
    assert main(["resize", str(d), "--in-place", "--size", "128", "--workers", "1"]) == 0
    assert Image.open(d / "a.jpg").size == (256, 128)
    assert (d / "bad.jpg").read_bytes() == b"broken"
    assert sorted(p.name for p in d.iterdir()) == ["a.jpg", "bad.jpg"]  # no temp files left
    assert main(["resize", str(d), "--size", "128"]) == 2  # neither --out nor --in-place
    capsys.readouterr()


def test_resize_resamples_palette_images_in_colour(tmp_path, capsys):
    """A palette PNG is shrunk in colour (Lanczos blends the stripes), not by nearest neighbour, and keeps its
    transparency; shard --resize shrinks it with the same code."""
    d = tmp_path / "imgs"
    d.mkdir()
    stripes = np.zeros((120, 160, 3), np.uint8)
    stripes[:, ::2] = (255, 0, 0)
    Image.fromarray(stripes).convert("P", palette=Image.Palette.ADAPTIVE, colors=2).save(d / "p.png")
    clear = Image.fromarray(stripes).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    clear.info["transparency"] = 0
    clear.save(d / "t.png", transparency=0)
    assert main(["resize", str(d), "--in-place", "--size", "30", "--workers", "1"]) == 0
    out = Image.open(d / "p.png")
    assert out.size == (40, 30) and out.mode == "RGB"
    assert 100 < np.asarray(out)[..., 0].mean() < 160 and len(np.unique(np.asarray(out)[..., 0])) > 2  # blended
    assert Image.open(d / "t.png").mode == "RGBA"
    capsys.readouterr()


# ------------------------------------------------------------------ create-dataset

@pytest.fixture
def raw(tmp_path):
    src = tmp_path / "raw"
    (src / "wide" / "sub").mkdir(parents=True)
    for i in range(9):
        (src / "wide" / "sub" / f"{i}.jpg").write_bytes(_jpeg(200, 100, seed=i))
    (src / "pair").mkdir()
    Image.fromarray(random_image(50, 60)[..., 0]).save(src / "pair" / "grey.png")
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, "RGBA").save(src / "pair" / "alpha.png")
    (src / "wide" / "broken.jpg").write_bytes(b"nope")
    return src


@pytest.mark.parametrize("crop", ["inner", "outer"])
def test_create_dataset_split_and_geometry(raw, tmp_path, capsys, crop):
    before = _tree_hash(raw)
    dst = tmp_path / "ds"
    assert main(["create-dataset", "--src", str(raw), "--dst", str(dst), "--ratio", "0.2", "--dim", "64",
                 "--crop", crop, "--offset", "128", "--json", "--workers", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    rows = {r["class"]: r for r in res["classes"]}
    assert rows["pair"]["val"] == 1 and rows["pair"]["train"] == 1  # a 2-image class still gets a val image
    assert rows["wide"]["images"] == 10 and len(res["corrupt"]) == 1
    outs = sorted(dst.rglob("*.jpg"))
    assert len(outs) == 11
    assert all(Image.open(p).size == (64, 64) and Image.open(p).mode == "RGB" for p in outs)
    assert list((dst / "train" / "wide").rglob("*.jpg"))[0].parent.name in ("sub", "wide")
    wide = next((dst / "train" / "wide" / "sub").glob("*.jpg"))
    corner = np.asarray(Image.open(wide))[0, 0].astype(int)
    if crop == "outer":  # a 2:1 image padded top and bottom with grey 128
        assert np.abs(corner - 128).max() <= 3
    assert _tree_hash(raw) == before
    assert main(["create-dataset", "--src", str(raw), "--dst", str(dst), "--ratio", "0.2", "--dim", "64",
                 "--crop", crop, "--offset", "128", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 0  # a rerun has nothing left to do


def test_create_dataset_will_not_mix_two_splits_or_datasets(raw, tmp_path, tiny_tree, capsys):
    """Another --ratio or --seed into the same --dst would put images in both train/ and val/; a folder
    that holds another dataset would get these classes added to it."""
    dst = tmp_path / "ds"
    args = ["create-dataset", "--src", str(raw), "--dst", str(dst), "--dim", "32", "--workers", "1"]
    assert main(args + ["--ratio", "0.2"]) == 0
    before = _tree_hash(dst)
    capsys.readouterr()
    assert main(args + ["--ratio", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"imagenet-trainer create-dataset: error: --dst {dst}: an earlier create-dataset made it "
                          "with other settings (--ratio 0.2 now 0.5)"), err
    assert _tree_hash(dst) == before
    other = _tree_hash(tiny_tree)
    assert main(["create-dataset", "--src", str(raw), "--dst", str(tiny_tree), "--workers", "1"]) == 2
    assert f"--dst {tiny_tree}: holds other data ({tiny_tree / 'train'})" in capsys.readouterr().err
    assert _tree_hash(tiny_tree) == other


def test_create_dataset_resumes_an_interrupted_run(raw, tmp_path, capsys):
    dst = tmp_path / "ds"
    args = ["create-dataset", "--src", str(raw), "--dst", str(dst), "--dim", "32", "--workers", "1", "--json"]
    assert main(args) == 0
    full = sorted(p.relative_to(dst) for p in dst.rglob("*.jpg"))
    for p in full[::2]:  # as if the run had stopped part-way
        (dst / p).unlink()
    capsys.readouterr()
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["written"] == len(full[::2])
    assert sorted(p.relative_to(dst) for p in dst.rglob("*.jpg")) == full


def test_create_dataset_refuses_dst_inside_src(raw, capsys):
    assert main(["create-dataset", "--src", str(raw), "--dst", str(raw / "out")]) == 2
    assert "inside the source" in capsys.readouterr().err


# ------------------------------------------------------------------ prepare-imagenet

def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def fake_imagenet(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850"]
    train = tmp_path / "ILSVRC2012_img_train.tar"
    with tarfile.open(train, "w") as outer:
        for k, w in enumerate(wnids):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for i in range(3 + k):
                    _add(inner, f"{w}_{i}.JPEG", _jpeg(32, 24, seed=10 * k + i))
                _add(inner, "../escape.JPEG", b"x")  # a hostile path is written by its base name only
            _add(outer, f"{w}.tar", buf.getvalue())
    val = tmp_path / "ILSVRC2012_img_val.tar"
    rows = ["ImageId,PredictionString"]
    with tarfile.open(val, "w") as tar:
        for i in range(1, 7):
            _add(tar, f"ILSVRC2012_val_{i:08d}.JPEG", _jpeg(32, 24, seed=100 + i))
            rows.append(f"ILSVRC2012_val_{i:08d},{wnids[i % 3]} 1 2 3 4")
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text("\n".join(rows) + "\n")
    return train, val, csv


def test_prepare_imagenet_from_fake_archives(fake_imagenet, tmp_path, capsys):
    train, val, csv = fake_imagenet
    out = tmp_path / "imagenet"
    args = ["prepare-imagenet", "--train-tar", str(train), "--val-tar", str(val), "--val-labels", str(csv),
            "--out", str(out), "--json"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["counts"] == {"classes": 3, "train": 3 + 4 + 5 + 3, "val": 6, "val_classes": 3}
    assert any("1,281,167" in line for line in res["differences"])
    assert not (tmp_path / "escape.JPEG").exists() and (out / "train" / "n01440764" / "escape.JPEG").exists()
    assert main(args) == 0  # a rerun skips finished classes
    assert json.loads(capsys.readouterr().out)["counts"] == res["counts"]
    assert main(["train", "--data", str(out), "--epochs", "1", "--arch", "smallcnn", "--batch-size", "4",
                 "--crop-size", "16", "--image-size", "20", "--workers", "0", "--device", "cpu",
                 "--output", str(tmp_path / "run")]) == 0


def test_prepare_imagenet_in_two_runs_and_never_into_another_dataset(fake_imagenet, tmp_path, tiny_tree, capsys):
    train, val, csv = fake_imagenet
    out = tmp_path / "imagenet"
    assert main(["prepare-imagenet", "--val-tar", str(val), "--val-labels", str(csv), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["prepare-imagenet", "--train-tar", str(train), "--out", str(out), "--json"]) == 0  # its own output
    assert json.loads(capsys.readouterr().out)["counts"] == {"classes": 3, "train": 15, "val": 6, "val_classes": 3}
    before = _tree_hash(tiny_tree)
    assert main(["prepare-imagenet", "--train-tar", str(train), "--out", str(tiny_tree)]) == 2
    assert f"--out {tiny_tree}: holds other data ({tiny_tree / 'train'})" in capsys.readouterr().err
    assert _tree_hash(tiny_tree) == before


def test_prepare_imagenet_needs_labels(fake_imagenet, tmp_path, capsys):
    train, val, _ = fake_imagenet
    assert main(["prepare-imagenet", "--val-tar", str(val), "--out", str(tmp_path / "o")]) == 2
    assert "--devkit" in capsys.readouterr().err
    assert main(["prepare-imagenet", "--train-tar", str(tmp_path / "missing.tar"), "--out", str(tmp_path / "o")]) == 2


def test_prepare_imagenet_names_an_archive_it_cannot_read(fake_imagenet, tmp_path, capsys):
    train, val, csv = fake_imagenet
    cut = tmp_path / "cut.tar"
    cut.write_bytes(train.read_bytes()[:700])  # a download that stopped part-way
    for args, named in ((["--train-tar", str(csv)], f"--train-tar {csv}"), (["--train-tar", str(cut)], f"--train-tar {cut}"),
                        (["--val-tar", str(val), "--devkit", str(csv)], f"--devkit {csv}")):
        assert main(["prepare-imagenet", *args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{named}: not a readable tar archive" in err, err


def test_prepare_imagenet_with_a_fake_devkit(fake_imagenet, tmp_path, capsys):
    sio = pytest.importorskip("scipy.io")
    _, val, _ = fake_imagenet
    wnids = ["n01440764", "n01443537", "n01484850"]
    synsets = np.zeros(4, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"),
                                 ("num_children", "O")])
    for k, w in enumerate(wnids):
        synsets[k] = (k + 1, w, f"class {k}", "", 0)
    synsets[3] = (1001, "n00000001", "a parent", "", 3)  # not a leaf: not a class
    mat = io.BytesIO()
    sio.savemat(mat, {"synsets": synsets})
    truth = "".join(f"{(i % 3) + 1}\n" for i in range(1, 7))
    devkit = tmp_path / "ILSVRC2012_devkit_t12.tar.gz"
    with tarfile.open(devkit, "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", mat.getvalue())
        _add(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth.encode())
    out = tmp_path / "imagenet"
    assert main(["prepare-imagenet", "--val-tar", str(val), "--devkit", str(devkit), "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["counts"]["val"] == 6 and res["counts"]["val_classes"] == 3
    assert (out / "val" / "n01443537" / "ILSVRC2012_val_00000001.JPEG").exists()  # id 1 -> (1 % 3) + 1 = 2
