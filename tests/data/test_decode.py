import io

import numpy as np
import pytest
from PIL import Image

from imagenet_trainer.data.decode import DecodeError, decode_crops, image_size
from imagenet_trainer.data.geometry import Geometry
from tests.conftest import jpeg_bytes, random_image

CENTER = Geometry("center", crop_size=16, image_size=16)


def _two_halves(w: int = 40, h: int = 20) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (230, 20, 20)
    a[:, w // 2:] = (20, 20, 230)
    return a


@pytest.mark.parametrize("crop", [32, 64, 128])
def test_scaled_decode_matches_full_resolution(crop):
    """The DCT-scaled fast path computes (nearly) the same crop as decoding at full size."""
    data = jpeg_bytes(random_image(375, 500, seed=3), quality=90)
    g = Geometry("rrc", crop_size=crop, image_size=crop)
    diffs = []
    for s in range(30):
        fast, f1 = decode_crops(data, g, np.random.default_rng(s), scaled=True)
        full, f2 = decode_crops(data, g, np.random.default_rng(s), scaled=False)
        assert f1 == f2 and fast[0].shape == full[0].shape == (crop, crop, 3)
        diffs.append(np.abs(fast[0].astype(int) - full[0].astype(int)).mean())
    # DCT-domain scaling filters differently from a full-size antialiased resize: a few levels of 255.
    assert np.mean(diffs) < 4.0 and max(diffs) < 8.0


def test_rgb_jpeg_fast_path_shape_and_colours():
    out, flip = decode_crops(jpeg_bytes(_two_halves()), CENTER)
    assert out[0].shape == (16, 16, 3) and out[0].dtype == np.uint8 and flip is False
    assert out[0][:, 0, 0].min() > 200 and out[0][:, -1, 2].min() > 200


def test_grayscale_jpeg_becomes_rgb():
    data = jpeg_bytes(random_image(30, 30)[..., 0])
    out = decode_crops(data, CENTER)[0][0]
    assert out.shape == (16, 16, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_cmyk_jpeg_keeps_its_colours():
    buf = io.BytesIO()
    Image.fromarray(_two_halves()).convert("CMYK").save(buf, format="JPEG", quality=95)
    out = decode_crops(buf.getvalue(), CENTER)[0][0]
    assert out[8, 0, 0] > 180 and out[8, 0, 2] < 80  # red stays red (no inverted channels)
    assert out[8, -1, 2] > 180 and out[8, -1, 0] < 80


def test_progressive_jpeg_matches_baseline():
    a = random_image(48, 64, seed=5)
    base = decode_crops(jpeg_bytes(a, quality=95), CENTER)[0][0].astype(int)
    prog = decode_crops(jpeg_bytes(a, quality=95, progressive=True), CENTER)[0][0].astype(int)
    assert np.abs(base - prog).mean() < 2


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    data = jpeg_bytes(_two_halves(40, 20), exif=exif.tobytes())
    assert image_size(data) == (40, 20)
    out = decode_crops(data, CENTER)[0][0]
    assert out[0, 8, 0] > 200 and out[-1, 8, 2] > 200  # red on top, blue at the bottom


def test_png_named_jpg():
    buf = io.BytesIO()
    Image.fromarray(_two_halves()).save(buf, format="PNG")
    out = decode_crops(buf.getvalue(), CENTER)[0][0]
    assert out[:, 0, 0].min() > 200


@pytest.mark.parametrize("fmt,mode", [("TIFF", "RGB"), ("TIFF", "L"), ("PPM", "L")])  # PPM of mode L: a .pgm file
def test_tiff_and_pgm_decode_through_the_fallback(fmt, mode):
    """ImageFolder's other formats: torchvision users' trees hold them."""
    buf = io.BytesIO()
    Image.fromarray(_two_halves()).convert(mode).save(buf, format=fmt)
    out = decode_crops(buf.getvalue(), CENTER)[0][0]
    assert out.shape == (16, 16, 3)
    left, right = out[:, :4].mean(), out[:, -4:].mean()
    assert abs(left - right) > 10 if mode == "L" else (out[:, 0, 0].min() > 200 and out[:, -1, 2].min() > 200)


def test_rgba_png_loses_alpha():
    a = np.zeros((20, 20, 4), np.uint8)
    a[..., 1] = 200
    a[..., 3] = 255
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, format="PNG")
    out = decode_crops(buf.getvalue(), CENTER)[0][0]
    assert out.shape == (16, 16, 3) and out[..., 1].min() > 190


def test_truncated_jpeg_is_decoded_by_the_fallback():
    data = jpeg_bytes(random_image(64, 64))
    out = decode_crops(data[: len(data) * 2 // 3], CENTER)[0][0]
    assert out.shape == (16, 16, 3)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0garbage"])
def test_undecodable_raises_decode_error(data):
    with pytest.raises(DecodeError):
        decode_crops(data, CENTER)


def test_five_crops():
    out, _ = decode_crops(jpeg_bytes(random_image(60, 80)), Geometry("five", 16, 20))
    assert len(out) == 5 and all(o.shape == (16, 16, 3) for o in out)


def test_dct_scale_is_a_power_of_two_that_keeps_the_box_at_output_size():
    from imagenet_trainer.data.decode import _dct_eighths

    assert _dct_eighths([(0, 0, 400, 300)], 224) == 8  # 3/8..7/8 would do, but are not used
    assert _dct_eighths([(0, 0, 500, 460)], 224) == 4
    assert _dct_eighths([(0, 0, 500, 460)], 112) == 2
    assert _dct_eighths([(0, 0, 500, 460), (0, 0, 300, 300)], 112) == 4  # every box must keep its size
    assert _dct_eighths([(10, 10, 410, 410)], 50) == 1


def test_pad_crop_outside_the_image_is_black():
    data = jpeg_bytes(np.full((32, 32, 3), 200, np.uint8), quality=95)
    g = Geometry("pad", crop_size=32, image_size=32)
    seen = set()
    for s in range(40):
        out, _ = decode_crops(data, g, np.random.default_rng(s))
        out = out[0].astype(int)
        black_cols = int((out[16, :, 0] < 20).sum())
        black_rows = int((out[:, 16, 0] < 20).sum())
        assert black_cols <= 4 and black_rows <= 4 and out[16, 16, 0] > 180
        seen.add((black_cols, black_rows))
    assert (0, 0) in seen and any(c == 4 for c, _ in seen)  # from no border to the full 4 px


def test_resized_crops_come_back_in_hwc_order():
    """The resize takes torch's channels_last uint8 kernel: its output is already HWC, and it is the fast one
    (on torch 2.14 a batch stride of 3 sent it to a path 2.4-3.5 times slower, with CHW output)."""
    data = jpeg_bytes(random_image(300, 400, seed=5), quality=90)
    g = Geometry("rrc", crop_size=96, image_size=96)
    for s in range(5):
        out, _ = decode_crops(data, g, np.random.default_rng(s), scaled=False)
        assert out[0].shape == (96, 96, 3) and out[0].flags.c_contiguous


@pytest.mark.parametrize("kind", ["rrc", "pad", "center"])
def test_a_region_resizes_as_the_whole_image_does(kind):
    """``decode_region`` keeps the pixels around the box that a bilinear resize reads: resizing the box of the
    region gives what resizing it in the whole decoded image gives (here with roi_align, as the GPU does)."""
    import torch
    from torchvision.ops import roi_align

    from imagenet_trainer.data.decode import _decode_jpeg_scaled, decode_region

    data = jpeg_bytes(random_image(300, 420, seed=5), quality=90)
    g = Geometry(kind, crop_size=64, image_size=72)

    def resized(pixels: np.ndarray, box) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float()
        return roi_align(x, torch.tensor([[0.0, *box]]), (64, 64), 1.0, -1, aligned=True)

    for s in range(12):
        pixels, box, flip = decode_region(data, g, np.random.default_rng(s))
        whole, (whole_box,), whole_flip = _decode_jpeg_scaled(data, g, np.random.default_rng(s), True)
        assert flip == whole_flip and pixels.shape[0] <= whole.shape[0] and pixels.shape[1] <= whole.shape[1]
        torch.testing.assert_close(resized(pixels, box), resized(whole, whole_box), atol=1e-3, rtol=0)


def test_regions_only_for_jpegs_the_fast_path_takes():
    from imagenet_trainer.data.decode import decode_region

    g = Geometry("rrc", crop_size=16, image_size=16)
    png = io.BytesIO()
    Image.fromarray(random_image(40, 40)).save(png, format="PNG")
    assert decode_region(png.getvalue(), g, np.random.default_rng(0)) is None
    cmyk = io.BytesIO()
    Image.fromarray(random_image(40, 40)).convert("CMYK").save(cmyk, format="JPEG")
    assert decode_region(cmyk.getvalue(), g, np.random.default_rng(0)) is None
    pixels, box, _ = decode_region(jpeg_bytes(random_image(40, 40)), g, np.random.default_rng(0))
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3 and box[2] <= pixels.shape[1] and box[3] <= pixels.shape[0]
