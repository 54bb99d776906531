import numpy as np
import pytest

from imagenet_trainer.data.geometry import Geometry, center_box, five_boxes, padded_box, random_resized_box, seed_box


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


def test_padded_boxes_move_by_whole_pixels_up_to_an_eighth_past_the_edges():
    g = Geometry("pad", 32, 32)
    assert g.pad == 4 and Geometry("rrc", 32, 32).pad == 0
    rng = np.random.default_rng(0)
    boxes = np.array([padded_box(32, 32, 32, 32, g.pad, rng) for _ in range(2000)])
    assert (boxes[:, 2] - boxes[:, 0] == 32).all() and (boxes[:, 3] - boxes[:, 1] == 32).all()
    assert np.array_equal(boxes, boxes.round())
    assert set(boxes[:, 0]) == set(range(-4, 5)) and set(boxes[:, 1]) == set(range(-4, 5))
    # A larger image: the crop square of the image_size resize, in source pixels.
    l, t, r, b = padded_box(64, 48, 24, 16, 2, rng)
    assert r - l == pytest.approx(16 * 2) and -4 - 1e-9 <= l and r <= 64 + 4 + 1e-9
