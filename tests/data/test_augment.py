"""Cutout: one square per image, the right size, filled with 0 (the mean after normalization), repeatable."""

from __future__ import annotations

import pytest
import torch

from imagenet_trainer.data.augment import Cutout


def _erased(x: torch.Tensor) -> torch.Tensor:
    return (x == 0).all(1)  # (B, H, W): pixels whose every channel was set to 0


def test_each_image_loses_one_square_of_the_given_side():
    x = torch.rand(64, 3, 32, 32) + 1  # no zeros before
    Cutout(0.25)(x)
    erased = _erased(x)
    for m in erased:
        rows, cols = m.any(1).nonzero().squeeze(1), m.any(0).nonzero().squeeze(1)
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8  # 8 = 0.25 x 32, fewer where clipped at a border
        assert rows.max() - rows.min() + 1 == len(rows) and cols.max() - cols.min() + 1 == len(cols)  # one block
        assert m.sum() == len(rows) * len(cols)  # a full rectangle
    full = erased.sum((1, 2)) == 64
    assert 0 < full.sum() < 64  # most squares lie inside; some are clipped


def test_channels_last_and_in_place():
    x = (torch.rand(8, 3, 16, 16) + 1).contiguous(memory_format=torch.channels_last)
    y = Cutout(0.5)(x)
    assert y.data_ptr() == x.data_ptr() and x.is_contiguous(memory_format=torch.channels_last)
    assert _erased(x).any((1, 2)).all()


def test_same_seed_and_epoch_same_squares_other_epoch_others():
    def mask(seed, epoch):
        c = Cutout(0.3, seed)
        c.set_epoch(epoch)
        return _erased(c(torch.ones(16, 3, 20, 20)))

    assert torch.equal(mask(0, 1), mask(0, 1))
    assert not torch.equal(mask(0, 1), mask(0, 2))
    assert not torch.equal(mask(0, 1), mask(1, 1))


def test_bad_fraction():
    with pytest.raises(ValueError):
        Cutout(0.0)
    with pytest.raises(ValueError):
        Cutout(1.5)


@pytest.mark.gpu
def test_on_the_gpu_matches_the_mask_rule():
    x = torch.rand(32, 3, 24, 24, device="cuda") + 1
    Cutout(0.25)(x)
    assert _erased(x).any((1, 2)).all()


def test_each_batch_gets_new_squares():
    c = Cutout(0.25)
    first, second = _erased(c(torch.ones(16, 3, 32, 32))), _erased(c(torch.ones(16, 3, 32, 32)))
    assert not torch.equal(first, second)
