import numpy as np
import pytest

from imagenet_trainer.data.geometry import Geometry, center_box, five_boxes, random_resized_box, seed_box


@pytest.mark.parametrize("w,h", [(500, 375), (32, 32), (1000, 100), (90, 700)])
def test_random_boxes_lie_inside(w, h):
    rng = np.random.default_rng(0)
    for _ in range(200):
        for box in (random_resized_box(w, h, (0.08, 1.0), (3 / 4, 4 / 3), rng), seed_box(w, h, 256, 224, rng)):
            l, t, r, b = box
            assert 0 <= l < r <= w + 1e-6 and 0 <= t < b <= h + 1e-6


def test_center_box_matches_resize_then_crop():
    # 512x384 -> shorter side 256 is a factor 2/3; a 224 crop is 336 source pixels, centred.
    assert center_box(512, 384, 256, 224) == pytest.approx((88, 24, 424, 360))


def test_five_boxes_are_centre_and_corners():
    boxes = five_boxes(512, 384, 256, 224)
    assert boxes[0] == center_box(512, 384, 256, 224)
    assert boxes[1] == (0, 0, 336, 336) and boxes[4] == (176, 48, 512, 384)


def test_flip_is_random_for_training_only():
    g = Geometry("rrc", 32, 36)
    flips = {g.boxes(100, 80, np.random.default_rng(s))[1] for s in range(20)}
    assert flips == {True, False}
    assert Geometry("center", 32, 36).boxes(100, 80, None)[1] is False
