"""Crop geometry in original-image coordinates.

Every train and val transform of this project is "take a box of the source image and resize it to
the output size", optionally flipped. Choosing the box before decoding lets the decoder work at the
smallest DCT scale that still covers the box (see ``decode.py``), and lets one resize call do both
the crop and the scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in source pixels


@dataclass(frozen=True)
class Geometry:
    """How a sample's box is chosen.

    kind: ``rrc`` random-resized-crop + flip (default training), ``seed`` the original's training
      crop (shorter side to ``image_size``, random ``crop_size`` square, flip), ``pad`` the small-image
      crop (as ``seed``, but the square may stick out of the image by ``crop_size // 8`` pixels, which
      are black: torchvision's ``RandomCrop(padding=...)``), ``center`` the val
      transform (shorter side to ``image_size``, centre ``crop_size`` square), ``five`` the four
      corners and the centre of the val resize (with flips this gives 10-crop testing), ``full`` the whole
      image squeezed to a ``crop_size`` square (the decoded cache keeps training images so, and crops them
      later with boxes drawn in the original's coordinates).
    crop_size: output side in pixels.
    image_size: the shorter side before cropping, for ``seed``, ``center`` and ``five``.
    scale, ratio: random-resized-crop's area fraction and aspect-ratio ranges.
    """

    kind: str = "rrc"
    crop_size: int = 224
    image_size: int = 256
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    @property
    def random(self) -> bool:
        return self.kind in ("rrc", "seed", "pad")

    @property
    def pad(self) -> int:
        """Output pixels a ``pad`` crop may stick out of the image on each side."""
        return self.crop_size // 8 if self.kind == "pad" else 0

    @property
    def n_boxes(self) -> int:
        return 5 if self.kind == "five" else 1

    def boxes(self, width: int, height: int, rng: np.random.Generator | None) -> tuple[list[Box], bool]:
        """The crop box(es) for a ``width`` x ``height`` image, and whether to flip horizontally."""
        if self.kind == "rrc":
            return [random_resized_box(width, height, self.scale, self.ratio, rng)], bool(rng.random() < 0.5)
        if self.kind == "seed":
            return [seed_box(width, height, self.image_size, self.crop_size, rng)], bool(rng.random() < 0.5)
        if self.kind == "pad":
            return [padded_box(width, height, self.image_size, self.crop_size, self.pad, rng)], bool(rng.random() < 0.5)
        if self.kind == "center":
            return [center_box(width, height, self.image_size, self.crop_size)], False
        if self.kind == "five":
            return five_boxes(width, height, self.image_size, self.crop_size), False
        if self.kind == "full":
            return [(0, 0, width, height)], False
        raise ValueError(f"unknown geometry kind {self.kind!r}")


def random_resized_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
                       rng: np.random.Generator) -> Box:
    """torchvision's RandomResizedCrop box: area fraction in ``scale``, aspect ratio in ``ratio``."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return (left, top, left + w, top + h)
    # Fallback to a central crop with the aspect ratio clamped into range.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return (left, top, left + w, top + h)


def _short_side_scale(width: int, height: int, image_size: int) -> float:
    """Factor that brings the shorter side to ``image_size``."""
    return image_size / min(width, height)


def seed_box(width: int, height: int, image_size: int, crop_size: int, rng: np.random.Generator) -> Box:
    """The original's training crop: random ``crop_size`` square after the shorter side goes to ``image_size``."""
    s = _short_side_scale(width, height, image_size)
    side = min(crop_size / s, width, height)
    left = rng.uniform(0, width - side)
    top = rng.uniform(0, height - side)
    return (left, top, left + side, top + side)


def padded_box(width: int, height: int, image_size: int, crop_size: int, pad: int,
               rng: np.random.Generator) -> Box:
    """A ``crop_size`` square of the ``image_size`` resize, moved by whole output pixels, that may reach
    ``pad`` pixels past each edge (in source coordinates; whole pixels when no resize is needed)."""
    s = _short_side_scale(width, height, image_size)
    rw, rh = round(width * s), round(height * s)
    c = min(crop_size, rw, rh)
    left = int(rng.integers(-pad, rw - c + pad + 1))
    top = int(rng.integers(-pad, rh - c + pad + 1))
    return (left / s, top / s, (left + c) / s, (top + c) / s)


def center_box(width: int, height: int, image_size: int, crop_size: int) -> Box:
    """Val crop: centre ``crop_size`` square after the shorter side goes to ``image_size``."""
    s = _short_side_scale(width, height, image_size)
    side = min(crop_size / s, width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def five_boxes(width: int, height: int, image_size: int, crop_size: int) -> list[Box]:
    """Centre and the four corners, each ``crop_size`` after the shorter side goes to ``image_size``."""
    s = _short_side_scale(width, height, image_size)
    side = min(crop_size / s, width, height)
    r, b = width - side, height - side
    return [center_box(width, height, image_size, crop_size),
            (0, 0, side, side), (r, 0, width, side), (0, b, side, height), (r, b, width, height)]
