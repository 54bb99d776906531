"""File and folder names that are not UTF-8 (any bytes but / and NUL are a valid Linux name) go through every
text file a command writes, and through its output, without a traceback."""

import os

from imagenet_trainer.cli import main
from tests.conftest import jpeg_bytes, random_image


def _odd_tree(root):
    for split, n in (("train", 4), ("val", 2)):
        for name in (b"d\xe9er", b"cat"):
            d = os.path.join(os.fsencode(root), split.encode(), name)
            os.makedirs(d)
            for i in range(n):
                with open(os.path.join(d, b"%d_\xff.jpg" % i), "wb") as f:
                    f.write(jpeg_bytes(random_image(40, 48, seed=i)))
        with open(os.path.join(os.fsencode(root), split.encode(), b"cat", b"bad_\xff.jpg"), "wb") as f:
            f.write(b"not a jpeg")
    return root


def test_names_that_are_not_utf8_reach_every_text_file(tmp_path, capsysbinary):
    data = _odd_tree(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--arch", "smallcnn", "--epochs", "1", "--workers", "0",
                 "--device", "cpu", "--crop-size", "32", "--image-size", "36", "--output", str(run)]) == 0
    assert b"bad_\xff.jpg" in (run / "bad_images.txt").read_bytes()
    assert b"d\xe9er" in (run / "classes.txt").read_bytes()
    model = str(run / "model_best.pt")
    assert main(["evaluate", "--model", model, "--data", str(data), "--workers", "0", "--device", "cpu",
                 "--report", str(tmp_path / "report")]) == 0
    assert b"\xff.jpg" in (tmp_path / "report" / "worst.csv").read_bytes()
    assert main(["predict", "--model", model, "--device", "cpu", "--csv", str(data / "val")]) == 0
    out = capsysbinary.readouterr()
    assert b"0_\xff.jpg" in out.out and b"Traceback" not in out.err
    assert main(["verify", str(data)]) in (0, 1)
    assert b"Traceback" not in capsysbinary.readouterr().err
