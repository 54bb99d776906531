import json

import numpy as np
from PIL import Image

from imagenet_trainer.cli import main
from imagenet_trainer.engine.plots import CHARTS, plot_runs


def _fake_run(path, epochs, partial=False):
    path.mkdir(parents=True)
    rows = [{"epoch": e, "train_top1": 10.0 * e, "train_top5": 20.0 * e, "train_loss": 3.0 / e, "train_lr": 0.1 / e,
             "train_images_per_s": 100.0 + e, "val_top1": 9.0 * e, "val_top5": 19.0 * e, "val_loss": 3.1 / e}
            for e in range(1, epochs + 1)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if partial:
        text += '{"epoch": 99, "train_to'  # a line being written right now
    (path / "metrics.jsonl").write_text(text)
    return path


def _nonempty_png(p):
    assert p.stat().st_size > 2000
    with Image.open(p) as im:
        assert im.format == "PNG" and im.width > 300 and len(np.unique(np.asarray(im.convert("L")))) > 10


def test_finished_run_and_overlay(tmp_path):
    a, b = _fake_run(tmp_path / "a", 5), _fake_run(tmp_path / "b", 3)
    written = plot_runs([a])
    assert sorted(p.name for p in written) == sorted(CHARTS)
    for p in written:
        _nonempty_png(p)
    assert main(["plot", str(a), str(b), "--out", str(tmp_path / "both")]) == 0
    for name in CHARTS:
        _nonempty_png(tmp_path / "both" / name)


def test_run_in_progress(tmp_path):
    run = _fake_run(tmp_path / "live", 2, partial=True)
    for p in plot_runs([run]):
        _nonempty_png(p)


def test_not_a_run_folder(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err


def test_a_missing_folder_is_named_as_missing(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such folder" in capsys.readouterr().err
