"""Batch augmentations (data/augment.py): cutout, random erasing, MixUp/CutMix and their order; each repeatable for
its seed and epoch."""

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


# --- random erasing, MixUp and CutMix ---

from imagenet_trainer.data.augment import BatchAugment, MixUpCutMix, RandomErasing  # noqa: E402


def test_erasing_hits_the_share_of_images_asked_in_rectangles_inside_the_image():
    torch.manual_seed(0)
    x = torch.rand(400, 3, 32, 32) + 1
    RandomErasing(0.5, "const", seed=3)(x)
    erased = _erased(x)
    hit = erased.any(2).any(1)
    assert 0.42 < hit.float().mean() < 0.58  # 200 +- 16 of 400
    for m in erased[hit][:50]:
        rows, cols = m.any(1).nonzero().squeeze(1), m.any(0).nonzero().squeeze(1)
        assert m.sum() == len(rows) * len(cols)  # one full rectangle (count 1)
        area = m.sum() / (32 * 32)
        assert 0.015 <= area <= 0.36  # 2% to 33% of the image, rounding aside
        aspect = len(rows) / len(cols)
        assert 0.25 <= aspect <= 4.0


def test_erasing_differs_per_image_and_fills_pixel_noise():
    x = torch.zeros(64, 3, 24, 24)
    RandomErasing(1.0, "pixel", count=3, seed=1)(x)
    changed = x != 0
    assert changed.any(1).flatten(1).any(1).all()  # every image erased
    areas = changed.any(1).flatten(1).sum(1)
    assert len(set(areas.tolist())) > 20  # per-image rectangles
    noise = x[changed]
    assert abs(noise.mean()) < 0.1 and 0.9 < noise.std() < 1.1  # standard normal noise


def test_erasing_repeats_for_the_same_seed_and_epoch_and_leaves_p0_unchanged():
    a, b, c = (torch.rand(16, 3, 16, 16) for _ in range(3))
    b.copy_(a), c.copy_(a)
    RandomErasing(0.7, seed=5)(a)
    e = RandomErasing(0.7, seed=5)
    e(b)
    assert torch.equal(a, b)
    e.set_epoch(1)
    e(c)
    assert not torch.equal(a, c)
    d = torch.rand(8, 3, 16, 16)
    assert torch.equal(RandomErasing(0.0, seed=5)(d.clone()), d)


def test_mixup_targets_sum_to_one_and_mix_the_images_by_the_same_weight():
    mix = MixUpCutMix(0.8, 0.0, num_classes=5, seed=2)
    x = torch.rand(6, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    images, targets, top = mix(x.clone(), labels)
    assert torch.allclose(targets.sum(1), torch.ones(6))
    lam = float(targets[1, 1])  # image 1: its label 1 with weight lam, its partner's (label 4) with 1 - lam
    assert torch.allclose(images, lam * x + (1 - lam) * x.flip(0), atol=1e-6)
    assert torch.equal(top, labels if lam >= 0.5 else labels.flip(0))


def test_cutmix_pastes_one_box_and_weights_the_targets_by_its_area():
    mix = MixUpCutMix(0.0, 1.0, num_classes=4, seed=0)
    for _ in range(20):
        x = torch.rand(4, 3, 16, 16)
        labels = torch.tensor([0, 1, 2, 3])
        images, targets, _ = mix(x.clone(), labels)
        pasted = (images != x).any(1)  # (4, 16, 16)
        share = pasted[0].float().mean()
        assert torch.allclose(targets.sum(1), torch.ones(4))
        assert abs(float(targets[0, 3]) - float(share)) < 1e-6  # the partner's weight is the box's area
        assert torch.equal(images[:, :, pasted[0]], x.flip(0)[:, :, pasted[0]])


def test_mix_prob_and_switch_prob():
    never = MixUpCutMix(1.0, 1.0, num_classes=3, prob=0.0)
    x, labels = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    images, targets, top = never(x.clone(), labels)
    assert torch.equal(images, x) and torch.equal(targets.argmax(1), labels) and torch.equal(top, labels)
    both = MixUpCutMix(1.0, 1.0, num_classes=3, prob=1.0, switch_prob=0.5, seed=4)
    kinds = [both.draw(16, 16)[1] is not None for _ in range(400)]
    assert 0.4 < sum(kinds) / 400 < 0.6  # about half CutMix


def test_the_batch_augment_reseeds_per_epoch():
    aug = BatchAugment(erasing=RandomErasing(0.5, seed=1), mix=MixUpCutMix(0.2, 1.0, 3, seed=1))
    labels = torch.tensor([0, 1, 2, 0])
    x = torch.rand(4, 3, 8, 8)
    aug.set_epoch(2)
    first = aug(x.clone(), labels)
    aug.set_epoch(2)
    again = aug(x.clone(), labels)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
