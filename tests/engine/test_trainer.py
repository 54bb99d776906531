"""Test-time views: flip and 1-px shifts, weighted as documented."""

from __future__ import annotations

import time

import torch

from imagenet_trainer.engine.trainer import tta_probs


def _pixel_model(v: torch.Tensor) -> torch.Tensor:
    return v[:, :, 1, 1] * 3  # logits = the 3 channels of pixel (1, 1)


def test_plain_and_flip():
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(tta_probs(_pixel_model, x), (x[:, :, 1, 1] * 3).softmax(-1))
    mirrored = x[:, :, 1, 3] * 3  # pixel (1, 1) of the mirror image
    want = ((x[:, :, 1, 1] * 3).softmax(-1) + mirrored.softmax(-1)) / 2
    assert torch.allclose(tta_probs(_pixel_model, x, flip=True), want)


def test_shift_views_move_both_ways_with_repeated_edges():
    x = torch.randn(2, 3, 5, 5)
    got = tta_probs(_pixel_model, x, shift=1)
    # moved down-right by 1, pixel (1, 1) shows (0, 0); moved up-left by 1, it shows (2, 2)
    want = ((x[:, :, 1, 1] * 3).softmax(-1) / 2 + (x[:, :, 0, 0] * 3).softmax(-1) / 4
            + (x[:, :, 2, 2] * 3).softmax(-1) / 4)
    assert torch.allclose(got, want)
    far = tta_probs(_pixel_model, x, shift=3)  # past the edge: the edge pixel repeats
    want = ((x[:, :, 1, 1] * 3).softmax(-1) / 2 + (x[:, :, 0, 0] * 3).softmax(-1) / 4
            + (x[:, :, 4, 4] * 3).softmax(-1) / 4)
    assert torch.allclose(far, want)
    assert torch.allclose(got.sum(-1), torch.ones(2))


def test_synthetic_step_rate_is_the_median_passs_so_one_stall_does_not_count():
    from imagenet_trainer.engine.trainer import synthetic_step_rate

    passes = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))

    def stall_once(*_):
        passes.append(1)
        time.sleep(1.0 if len(passes) == 4 else 0.01)  # the second of five timed passes stalls

    model.register_forward_hook(stall_once)
    rate = synthetic_step_rate(model, torch.nn.CrossEntropyLoss(), torch.device("cpu"), None, 4, 8, 5,
                               warmup=2, steps=5, min_seconds=0.0)
    assert len(passes) == 7
    assert 4 / 0.05 < rate < 4 / 0.01  # about 4 images per 10 ms; all five passes' mean would give 4 / 0.21 s


def test_synthetic_step_rate_leaves_the_model_as_it_was():
    from imagenet_trainer.engine.trainer import synthetic_step_rate
    from imagenet_trainer.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", 5).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    rate = synthetic_step_rate(model, torch.nn.CrossEntropyLoss(), torch.device("cpu"), None, 2, 32, 5,
                               warmup=1, steps=2, min_seconds=0.0)
    assert rate > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng) and not model.training
