"""Decode an encoded image straight to the crop(s) it is needed for, as uint8 RGB arrays.

Fast path (JPEG): read the header, choose the box in source coordinates, decode with libjpeg-turbo
(simplejpeg) at the smallest power-of-two DCT scale (1/8, 1/4, 1/2, 1) that still gives at least the
output resolution over the box, then crop + resize in one call (torch's SIMD kernel for whole-pixel
boxes, Pillow for boxes that fall between pixels). Fallback path (everything else, and JPEGs the
fast path refuses: CMYK, truncated, EXIF-rotated, a PNG named .jpg): Pillow, with EXIF orientation
applied. A file that no decoder reads raises ``DecodeError``. ``decode_region`` stops before the resize,
for the hybrid loader, whose GPU resizes whole batches of such regions.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import simplejpeg
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imagenet_trainer.data.geometry import Box, Geometry

_JPEG_MAGIC = b"\xff\xd8"
_EXIF_ORIENTATION = 0x0112


class DecodeError(Exception):
    """No decoder could read the file."""


MAX_PIXELS = 2**30  # an image whose header claims more pixels (3 GB decoded) is refused before decoding


def check_pixels(width: int, height: int) -> None:
    """A ``DecodeError`` for a header that claims more than ``MAX_PIXELS`` (a decompression bomb: a few hundred
    bytes can claim 60,000 x 60,000 pixels, 10 GB decoded), raised before any decoding."""
    if width * height > MAX_PIXELS:
        raise DecodeError(f"its header claims {width} x {height} pixels, more than {MAX_PIXELS / 1e6:,.0f} million "
                          "(a decompression bomb, or an image to shrink first)")


def needs_exif_rotation(data: bytes) -> bool:
    if data.find(b"Exif\x00\x00", 0, 4096) < 0:
        return False
    try:
        return Image.open(io.BytesIO(data)).getexif().get(_EXIF_ORIENTATION, 1) not in (0, 1)
    except Exception:
        return True  # let the fallback path decide


def _pad_outside(arr: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, list[Box]]:
    """Black borders wide enough that every box lies inside (``pad`` crops), with the boxes moved to match."""
    h, w = arr.shape[:2]
    m = math.ceil(max(0.0, *(max(-l, -t, r - w, b - h) for l, t, r, b in boxes)))
    if m == 0:
        return arr, boxes
    return np.pad(arr, ((m, m), (m, m), (0, 0))), [(l + m, t + m, r + m, b + m) for l, t, r, b in boxes]


def _resize_boxes(img: Image.Image, boxes: list[Box], size: int) -> list[np.ndarray]:
    if any(l < 0 or t < 0 or r > img.width or b > img.height for l, t, r, b in boxes):
        arr, boxes = _pad_outside(np.asarray(img), boxes)
        img = Image.fromarray(arr)
    return [np.asarray(img.resize((size, size), Image.BILINEAR, box=box)) for box in boxes]


def _whole_pixels(boxes: list[Box]) -> bool:
    return all(abs(v - round(v)) < 1e-3 for box in boxes for v in box)


def _resize_boxes_array(arr: np.ndarray, boxes: list[Box], size: int) -> list[np.ndarray]:
    """Crop whole-pixel boxes and resize with torch's antialiased uint8 bilinear kernel (SIMD; about half
    Pillow's time). Pillow's resize takes sub-pixel boxes, so the two agree to rounding."""
    arr, boxes = _pad_outside(arr, boxes)
    if not arr.flags.writeable:
        arr = arr.copy()
    # (1, 3, H, W) view with channels_last strides. Unsqueezed before the permute, so the batch stride is
    # H*W*3: after it, the stride would be 3, which torch 2.14 does not take for channels_last, and it
    # then resized 2.4-3.5 times slower (0.47 against 0.20 ms for a 300 px crop to 224) into CHW order.
    t = torch.from_numpy(arr).unsqueeze(0).permute(0, 3, 1, 2)
    h, w = arr.shape[:2]
    out = []
    for l, tp, r, b in boxes:
        x0, y0 = min(int(round(l)), w - 1), min(int(round(tp)), h - 1)
        x1, y1 = max(int(round(r)), x0 + 1), max(int(round(b)), y0 + 1)
        crop = t[:, :, y0:y1, x0:x1]
        if crop.shape[2:] != (size, size):
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(crop[0].permute(1, 2, 0).numpy())  # (size, size, 3) view
    return out


def _dct_eighths(boxes: list[Box], size: int) -> int:
    """The smallest power-of-two DCT scale (1, 2 or 4 eighths; 8 = full size) that keeps every box at
    >= ``size`` pixels a side. The 3/8..7/8 scales are left out: they decode hardly faster than full
    size, and their boxes fall between pixels, which takes Pillow's resize at twice the cost."""
    side = min(min(r - l, b - t) for l, t, r, b in boxes)
    for eighths in (1, 2, 4):
        if side * eighths / 8 >= size:
            return eighths
    return 8


def _decode_jpeg_scaled(data: bytes, geometry: Geometry, rng: np.random.Generator | None,
                        scaled: bool) -> tuple[np.ndarray, list[Box], bool] | None:
    """The libjpeg-turbo decode at the chosen DCT scale: (pixels, the boxes in them, flip), or None where the
    fallback should take the file."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    check_pixels(width, height)
    if colorspace not in ("RGB", "YCbCr", "Gray") or needs_exif_rotation(data):
        return None
    boxes, flip = geometry.boxes(width, height, rng)
    eighths = _dct_eighths(boxes, geometry.crop_size) if scaled else 8
    min_w, min_h = math.ceil(width * eighths / 8), math.ceil(height * eighths / 8)
    try:
        arr = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False,
                                     min_height=min_h, min_width=min_w, strict=True)
    except ValueError:
        return None
    if arr.shape[1] != width:
        # libjpeg scales by M/8 and rounds the output size up; use the exact factor.
        s = round(8 * arr.shape[1] / width) / 8
        boxes = [(l * s, t * s, r * s, b * s) for l, t, r, b in boxes]
    return arr, boxes, flip


def _decode_jpeg_fast(data: bytes, geometry: Geometry, rng: np.random.Generator | None,
                      scaled: bool) -> tuple[list[np.ndarray], bool] | None:
    """The libjpeg-turbo path, or None where the fallback should take the file."""
    decoded = _decode_jpeg_scaled(data, geometry, rng, scaled)
    if decoded is None:
        return None
    arr, boxes, flip = decoded
    if _whole_pixels(boxes):
        return _resize_boxes_array(arr, boxes, geometry.crop_size), flip
    return _resize_boxes(Image.fromarray(arr), boxes, geometry.crop_size), flip  # sub-pixel boxes


def decode_region(data: bytes, geometry: Geometry, rng: np.random.Generator | None,
                  scaled: bool = True) -> tuple[np.ndarray, Box, bool] | None:
    """The JPEG path without the resize, for a resize on the GPU: the decoded pixels around the box (one
    box: ``geometry.n_boxes == 1``), the box in them, and the flip; None where ``decode_crops`` should take
    the file (not a JPEG, or one the fast path refuses).

    The region keeps one pixel beyond the box on each side where the image has it, so a bilinear resize of
    the box reads the same pixels from the region as from the whole image. The region is copied out, so a
    worker does not hold a batch's whole decoded images until it collates the batch.
    """
    if data[:2] != _JPEG_MAGIC:
        return None
    decoded = _decode_jpeg_scaled(data, geometry, rng, scaled)
    if decoded is None:
        return None
    arr, ((l, t, r, b),), flip = decoded
    h, w = arr.shape[:2]
    x0, y0 = min(max(0, math.floor(l) - 1), w - 1), min(max(0, math.floor(t) - 1), h - 1)
    x1, y1 = max(min(w, math.ceil(r) + 1), x0 + 1), max(min(h, math.ceil(b) + 1), y0 + 1)
    return np.ascontiguousarray(arr[y0:y1, x0:x1]), (l - x0, t - y0, r - x0, b - y0), flip


def _decode_pil(data: bytes, geometry: Geometry, rng: np.random.Generator | None) -> tuple[list[np.ndarray], bool]:
    """The Pillow path: any format Pillow reads, EXIF orientation applied, truncated files tolerated."""
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # a truncated file still gives its decoded part
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = Image.open(io.BytesIO(data))
        check_pixels(*img.size)
        img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                background = Image.new("RGB", img.size, (0, 0, 0))
                background.paste(img, mask=img.getchannel("A"))
                img = background
            else:
                img = img.convert("RGB")
        img.load()
    boxes, flip = geometry.boxes(img.width, img.height, rng)
    if _whole_pixels(boxes):
        return _resize_boxes_array(np.asarray(img), boxes, geometry.crop_size), flip
    return _resize_boxes(img, boxes, geometry.crop_size), flip


def decode_crops(data: bytes, geometry: Geometry, rng: np.random.Generator | None = None,
                 scaled: bool = True) -> tuple[list[np.ndarray], bool]:
    """Decode ``data`` to ``geometry.n_boxes`` arrays of (crop_size, crop_size, 3) uint8, and the flip flag.

    ``scaled`` allows DCT-domain downscaling on the JPEG path (it never drops below the output size).
    """
    if data[:2] == _JPEG_MAGIC:
        fast = _decode_jpeg_fast(data, geometry, rng, scaled)
        if fast is not None:
            return fast
    if not data:
        raise DecodeError("empty file")
    try:
        return _decode_pil(data, geometry, rng)
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError("not an image format that JPEG or Pillow decoders read") from None
    except Exception as e:  # Pillow raises many types for broken files
        raise DecodeError(f"undecodable ({type(e).__name__}: {e})") from None


def oriented_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image as the decoders hand it back: after its EXIF rotation."""
    w, h = image_size(data)
    if data[:2] != _JPEG_MAGIC or needs_exif_rotation(data):  # PNG, TIFF and WebP carry EXIF too
        try:
            if Image.open(io.BytesIO(data)).getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                return h, w
        except Exception:
            pass
    return w, h


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image, read from its header."""
    if data[:2] == _JPEG_MAGIC:
        try:
            h, w, _, _ = simplejpeg.decode_jpeg_header(data)
            return w, h
        except ValueError:
            pass
    try:
        return Image.open(io.BytesIO(data)).size
    except Exception as e:
        raise DecodeError(f"{type(e).__name__}: {e}") from None
