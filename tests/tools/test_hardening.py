"""Odd but real input to the dataset tools: decompression bombs, huge photos, empty files."""

import io
import struct

import numpy as np
from PIL import Image

from imagenet_trainer.cli import main
from imagenet_trainer.data.decode import DecodeError, decode_crops
from imagenet_trainer.data.geometry import Geometry
from tests.conftest import jpeg_bytes, random_image


def _bomb(width: int, height: int) -> bytes:
    """A tiny valid JPEG whose frame header claims ``width`` x ``height``."""
    data = bytearray(jpeg_bytes(random_image(16, 16)))
    at = data.find(b"\xff\xc0")  # baseline frame header: marker, length, precision, height, width
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_a_bomb_is_refused_before_decoding_on_every_path(tmp_path, capsys):
    bomb = _bomb(60000, 60000)
    assert len(bomb) < 2000
    try:
        decode_crops(bomb, Geometry("center", 32, 36))
        raise AssertionError("decoded a bomb")
    except DecodeError as e:
        assert "60000 x 60000" in str(e)
    for split in ("train", "val"):
        (tmp_path / "d" / split / "c").mkdir(parents=True)
        (tmp_path / "d" / split / "c" / "bomb.jpg").write_bytes(bomb)
        (tmp_path / "d" / split / "c" / "ok.jpg").write_bytes(jpeg_bytes(random_image(40, 40)))
    code = main(["verify", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in out.err and "too large" in out.out


def test_resize_shrinks_a_photo_larger_than_pillows_bomb_limit(tmp_path):
    big = Image.fromarray(np.zeros((12000, 20000, 3), np.uint8))  # 240 million pixels, over Pillow's 179
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=50)
    (tmp_path / "src" / "c").mkdir(parents=True)
    (tmp_path / "src" / "c" / "big.jpg").write_bytes(buf.getvalue())
    assert main(["resize", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--size", "64"]) == 0
    with Image.open(tmp_path / "out" / "c" / "big.jpg") as img:
        assert img.size == (107, 64)


def test_verify_calls_no_pair_of_empty_files_a_duplicate(tmp_path, capsys):
    import json

    for split in ("train", "val"):
        (tmp_path / "d" / split / "c").mkdir(parents=True)
        (tmp_path / "d" / split / "c" / "empty.jpg").write_bytes(b"")
        (tmp_path / "d" / split / "c" / f"{split}.jpg").write_bytes(jpeg_bytes(random_image(40, 40, seed=len(split))))
    main(["verify", str(tmp_path / "d"), "--json"])
    assert json.loads(capsys.readouterr().out)["duplicates"] == []


def test_predict_on_only_unreadable_files_fails(tmp_path, tiny_tree, capsys):
    assert main(["train", "--data", str(tiny_tree), "--arch", "smallcnn", "--epochs", "1", "--workers", "0",
                 "--device", "cpu", "--crop-size", "32", "--image-size", "36", "--output", str(tmp_path / "r")]) == 0
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    capsys.readouterr()
    code = main(["predict", "--model", str(tmp_path / "r" / "model_best.pt"), "--device", "cpu", str(tmp_path / "bad.jpg")])
    out = capsys.readouterr()
    assert code == 2 and "none of the 1 files could be read" in out.err.strip().splitlines()[-1]
    ok = str(tiny_tree / "val" / "cat" / "cat0.jpg")
    assert main(["predict", "--model", str(tmp_path / "r" / "model_best.pt"), "--device", "cpu", ok,
                 str(tmp_path / "bad.jpg")]) == 0  # one readable file: its prediction, the other's error


def test_convert_makes_missing_folders_as_train_does(tmp_path, tiny_tree):
    assert main(["train", "--data", str(tiny_tree), "--arch", "smallcnn", "--epochs", "1", "--workers", "0",
                 "--device", "cpu", "--crop-size", "32", "--image-size", "36", "--output", str(tmp_path / "a" / "r")]) == 0
    assert main(["convert", "--src", str(tmp_path / "a" / "r" / "model_best.pt"),
                 "--dst", str(tmp_path / "new" / "dir" / "m.ts")]) == 0
    assert (tmp_path / "new" / "dir" / "m.ts").is_file()
