import math

import pytest
import torch

from imagenet_trainer.cli import main
from imagenet_trainer.engine.guard import Diverged, LossGuard


def _row(loss: float, n: int = 8) -> torch.Tensor:
    return torch.tensor([n, loss * n, 1.0, 2.0], dtype=torch.float64)


def test_two_non_finite_looks_in_a_row_stop_the_run():
    guard = LossGuard(num_classes=10, warmup_steps=5, peak_lr=0.1, every=1)
    guard.watch(1, _row(2.3), epoch=1, step=0)
    guard.watch(2, _row(math.inf), epoch=1, step=1)  # one overflowing batch: skipped, no divergence
    guard.watch(3, _row(2.2), epoch=1, step=2)
    guard.watch(4, _row(math.nan), epoch=1, step=3)
    with pytest.raises(Diverged, match="training loss is nan at epoch 1, step 4.*--lr-per-256"):
        guard.watch(5, _row(math.nan), epoch=1, step=4)


def test_a_loss_far_above_its_start_after_the_warmup_stops_the_run():
    guard = LossGuard(num_classes=10, warmup_steps=100, peak_lr=0.1)
    guard.watch(1, _row(2.3), epoch=1, step=0)
    guard.end_epoch(1, 9.0, step=50)  # still warming up: a spike may pass
    guard.end_epoch(2, 5.5, step=150)  # under 2 x ln(10) + 1
    with pytest.raises(Diverged, match=r"epoch 3 is 8.00, more than 5.61 \(2x its start"):
        guard.end_epoch(3, 8.0, step=250)
    with pytest.raises(Diverged, match="epoch 4 is nan"):
        guard.end_epoch(4, math.nan, step=300)


def test_a_resumed_net_is_measured_against_a_fresh_nets_loss():
    guard = LossGuard(num_classes=10, warmup_steps=0, peak_lr=0.1)
    guard.watch(1, _row(0.3), epoch=5, step=500)  # a trained net starts low
    guard.end_epoch(5, 0.9, step=600)  # three times its first batch, but under 2 x ln(10) + 1: no alarm
    guard.watch(1, _row(9.0), epoch=6, step=600)  # one rank's odd first batch moves nothing: ranks agree
    guard.end_epoch(6, 5.5, step=700)


def test_train_stops_a_diverged_run_with_one_line(tiny_tree, tmp_path, capsys):
    argv = ["train", "--data", str(tiny_tree), "--arch", "smallcnn", "--epochs", "3", "--batch-size", "6",
            "--workers", "0", "--device", "cpu", "--lr", "1e8", "--warmup-fraction", "0", "--crop-size", "32",
            "--image-size", "36", "--recipe", "none", "--output", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "training diverged" in err[-1] and "Traceback" not in "\n".join(err)
    assert main(argv[:-2] + ["--no-guard", "--output", str(tmp_path / "run2")]) == 0  # trains on when told to
