"""Built-in synthetic datasets written as JPEG folders (``imagenet-trainer sample-data``).

``shapes``: a small learnable set. Each class is a (shape, colour) pair drawn at a random size,
position and rotation over a noisy background, in images of varied size.
``imagenet-like``: ImageNet's file shape for speed work: 300-520 px a side, about 90 KB at quality
90. Each class has its own dominant colour and texture scale, so it is learnable too.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from imagenet_trainer.data.index import claim_folder, refuse_other_data
from imagenet_trainer.errors import UsageError
from imagenet_trainer.processes import worker_pool

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "bar", "star")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40),
           "magenta": (210, 50, 200), "cyan": (40, 200, 210), "orange": (240, 140, 30), "white": (245, 245, 245)}
KINDS = ("shapes", "imagenet-like")
SETTINGS_FILE = ".sample-data.json"  # in the output folder: the settings it was made with


@dataclass(frozen=True)
class SampleSpec:
    kind: str = "shapes"
    classes: int = 10
    per_class: int = 100
    val_per_class: int = 20
    seed: int = 0
    size: int = 64  # typical side for ``shapes``; ignored by ``imagenet-like``
    quality: int = 90


def class_names(spec: SampleSpec) -> list[str]:
    if spec.kind == "shapes":
        # Class k has colour k % 8 and shape (k + k // 8) % 8: the first 8 classes differ in both,
        # and all 64 pairs appear once.
        colours, shapes = list(COLOURS), list(SHAPES)
        return [f"{colours[k % 8]}_{shapes[(k + k // 8) % 8]}" for k in range(spec.classes)]
    return [f"n{index:08d}" for index in range(spec.classes)]


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "bar":  # a rotated 2r x 0.5r rectangle
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + dx * c - dy * s, cy + dx * s + dy * c)
                for dx, dy in ((r, r / 4), (-r, r / 4), (-r, -r / 4), (r, -r / 4))]
    if shape == "triangle":
        k, radii = 3, [r]
    elif shape == "square":
        k, radii = 4, [r]
    elif shape == "diamond":
        k, radii = 4, [r, r * 0.5]
    elif shape == "star":
        k, radii = 5, [r, r * 0.45]
    else:
        raise ValueError(shape)
    pts = []
    n = k * len(radii)
    for i in range(n):
        a = angle + 2 * math.pi * i / n
        rr = radii[i % len(radii)]
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def draw_shape_image(shape: str, colour: tuple[int, int, int], rng: np.random.Generator, size: int) -> Image.Image:
    """One ``shapes`` image: a coloured shape over a noisy grey background."""
    w = int(size * rng.uniform(0.8, 1.3))
    h = int(size * rng.uniform(0.8, 1.3))
    bg = rng.integers(60, 160)
    noise = rng.normal(bg, 25, size=(h // 4 + 1, w // 4 + 1, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(noise).resize((w, h), Image.BILINEAR)
    d = ImageDraw.Draw(img)
    r = min(w, h) * rng.uniform(0.22, 0.4)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    col = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)
    angle = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=col, width=max(2, int(r * 0.3)))
    elif shape == "cross":
        t = r * 0.3
        d.rectangle([cx - r, cy - t, cx + r, cy + t], fill=col)
        d.rectangle([cx - t, cy - r, cx + t, cy + r], fill=col)
    else:
        d.polygon(_polygon(shape, cx, cy, r, angle), fill=col)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


def draw_imagenet_like(label: int, rng: np.random.Generator) -> Image.Image:
    """One ``imagenet-like`` image: 300-520 px a side, textured so that JPEG q90 gives about 90 KB."""
    w, h = int(rng.integers(300, 521)), int(rng.integers(300, 521))
    crng = np.random.default_rng(label)  # the class's own colour and texture scale
    base = crng.integers(30, 226, size=3)
    cell = int(crng.integers(6, 24))
    coarse = rng.normal(0, 45, size=(h // cell + 2, w // cell + 2, 3))
    img = np.asarray(Image.fromarray((coarse + 128).clip(0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC),
                     dtype=np.float32) - 128
    img += base + rng.normal(0, 11, size=(h, w, 3))
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def _write_one(args) -> bool:
    """Write one image unless it is there (idempotent reruns); whether it was written now."""
    spec, split, name, label, i, out = args
    path = Path(out) / split / name / f"{name}_{split}_{i:05d}.jpg"
    if path.exists():
        return False
    rng = np.random.default_rng([spec.seed, label, i, 0 if split == "train" else 1])
    if spec.kind == "shapes":
        shape, colour = name.split("_", 1)[1], COLOURS[name.split("_", 1)[0]]
        img = draw_shape_image(shape, colour, rng, spec.size)
    else:
        img = draw_imagenet_like(label, rng)
    tmp = path.with_name(f".{path.name}.tmp")
    img.save(tmp, format="JPEG", quality=spec.quality)
    os.replace(tmp, path)
    return True


def write_sample_dataset(out: str | os.PathLike, spec: SampleSpec, workers: int | None = None,
                         progress=None) -> tuple[int, int]:
    """Write ``out/train/<class>/*.jpg`` and ``out/val/<class>/*.jpg``; returns (images in the set, written now)."""
    if spec.kind not in KINDS:
        raise UsageError(f"--kind {spec.kind}: unknown; choose one of {', '.join(KINDS)}")
    max_classes = len(SHAPES) * len(COLOURS) if spec.kind == "shapes" else 100_000
    if not 1 <= spec.classes <= max_classes:
        raise UsageError(f"--classes {spec.classes}: must be between 1 and {max_classes} for --kind {spec.kind}")
    if spec.per_class < 1 or spec.val_per_class < 0:
        raise UsageError("--per-class must be at least 1 and --val-per-class at least 0")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: is a file; give a folder to write the dataset into")
    names = class_names(spec)
    if not (out / SETTINGS_FILE).is_file():  # an output of an earlier version, which kept no settings: its classes
        for split in ("train", "val"):
            refuse_other_data(out / split, str(out), "sample-data", set(names))
    settings = {"--kind": spec.kind, "--classes": spec.classes, "--per-class": spec.per_class,
                "--val-per-class": spec.val_per_class, "--seed": spec.seed,
                "--size": spec.size if spec.kind == "shapes" else None}
    claim_folder(out, str(out), "sample-data", SETTINGS_FILE, settings, allowed=("train", "val"))
    jobs = []
    for split, count in (("train", spec.per_class), ("val", spec.val_per_class)):
        for label, name in enumerate(names):
            if count:
                (out / split / name).mkdir(parents=True, exist_ok=True)
            jobs.extend((spec, split, name, label, i, str(out)) for i in range(count))
    workers = workers or os.cpu_count() or 1
    pool = worker_pool(workers) if workers > 1 and len(jobs) >= 200 else None
    written = 0
    with pool or contextlib.nullcontext():
        for new in pool.map(_write_one, jobs, chunksize=64) if pool else map(_write_one, jobs):
            written += new
            if progress:
                progress(1)
    return len(jobs), written
