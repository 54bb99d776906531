"""Image-file tools that never lose or silently change a user's file: ``resize`` and ``create-dataset``.

Every output is written to a temporary file and renamed into place; sources are only read (except
``resize --in-place``, which replaces each file atomically). Reruns skip finished files, so an
interrupted run is finished by running it again.
"""

from __future__ import annotations

import io
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from imagenet_trainer.data.decode import check_pixels
from imagenet_trainer.data.index import claim_folder, is_image_name
from imagenet_trainer.files import atomic_write, walk_files
from imagenet_trainer.errors import UsageError
from imagenet_trainer.processes import worker_pool

_PIL_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".ppm": "PPM", ".pgm": "PPM", ".webp": "WEBP",
               ".tif": "TIFF", ".tiff": "TIFF"}


def image_files(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive, links followed with loops cut, each real file once, hidden names
    skipped), sorted."""
    return sorted(Path(p) for p in walk_files(root, is_image_name))


def open_upright(path: Path, shorter: int | None = None) -> Image.Image:
    """The image with its EXIF orientation applied, fully loaded; raises on unreadable files, and on a header
    that claims more than ``decode.MAX_PIXELS`` (checked before decoding: Pillow's own, smaller limit would call
    a real 20,000 x 12,000 photo, whose shrinking is these tools' job, a bomb). ``shorter``: a JPEG is decoded
    at the smallest DCT scale that keeps its shorter side at least this long; ``img.info["full_size"]`` is then
    still the upright image's full (width, height)."""
    limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Image.MAX_IMAGE_PIXELS = None  # our limit, checked below, replaces Pillow's for this image
        try:
            img = Image.open(path)
            check_pixels(*img.size)
            full = img.size[::-1] if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else img.size  # upright
            if shorter:
                s = shorter / min(img.size)
                img.draft(img.mode, (max(1, round(img.width * s)), max(1, round(img.height * s))))
            img.load()
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        img = ImageOps.exif_transpose(img)
        img.info["full_size"] = full
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Grey becomes RGB; alpha is dropped (composited on black)."""
    if img.mode == "RGB":
        return img
    if "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (0, 0, 0))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img.convert("RGB")


def shrunk(img: Image.Image, size: int) -> Image.Image | None:
    """``img`` (from ``open_upright(..., shorter=size)``) with its shorter side brought down to ``size`` (Lanczos),
    or None where it is that short already. Palette and 1-bit images are resampled in colour or grey, not by
    nearest neighbour (Pillow's choice for those modes)."""
    w, h = img.info["full_size"]  # the decode may have been at a reduced scale
    if min(w, h) <= size:
        return None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    s = size / min(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS, reducing_gap=3.0)


def save_atomic(img: Image.Image, path: Path, quality: int) -> None:
    fmt = _PIL_FORMAT.get(path.suffix.lower(), "JPEG")
    buf = io.BytesIO()
    if fmt == "JPEG":
        img = to_rgb(img)
        img.save(buf, format=fmt, quality=quality, optimize=True)
    else:
        img.save(buf, format=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def _check_not_inside(src: Path, dst: Path, what: str) -> None:
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents:
        raise UsageError(f"{what} {dst}: inside the source folder {src}; write it somewhere else")


# --------------------------------------------------------------------------- resize

@dataclass(frozen=True)
class ResizeJob:
    src: str
    dst: str
    size: int
    quality: int


def _fits(path: Path, size: int) -> bool:
    """Whether an image's shorter side is at most ``size`` (its header only): an output file of an earlier run
    counts as done only if it is, so a run with a smaller --size does the work again."""
    try:
        with Image.open(path) as img:
            return min(img.size) <= size
    except Exception:  # unreadable: not a finished output
        return False


def _resize_one(job: ResizeJob) -> tuple[str, str]:
    """('resized'|'small'|'done'|'corrupt: ...', path) for one file."""
    src, dst = Path(job.src), Path(job.dst)
    if dst != src and dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime and _fits(dst, job.size):
        return "done", job.src
    try:
        img = open_upright(src, shorter=job.size)
    except Exception as e:
        return f"corrupt: {type(e).__name__}: {e}", job.src
    small = shrunk(img, job.size)
    if small is None:
        if dst != src:  # mirror the tree: small files are copied as they are
            data = src.read_bytes()
            dst.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(dst, lambda f: f.write(data))
        return "small", job.src
    save_atomic(small, dst, job.quality)
    return "resized", job.src


def resize_tree(src: str | os.PathLike, size: int, out: str | os.PathLike | None = None, in_place: bool = False,
                quality: int = 90, workers: int | None = None, progress=None) -> dict:
    """Shrink every image so that its shorter side is at most ``size`` (never enlarges); returns counts."""
    src = Path(src)
    if not src.is_dir():
        raise UsageError(f"{src}: no such folder")
    if (out is None) == (not in_place):
        raise UsageError("give either --out DST (a mirrored tree) or --in-place (each file replaced atomically)")
    if size < 8:
        raise UsageError(f"--size {size}: too small; use at least 8")
    if out is not None:
        _check_not_inside(src, Path(out), "--out")
    jobs = [ResizeJob(str(p), str(p if in_place else Path(out) / p.relative_to(src)), size, quality)
            for p in image_files(src)]
    return _run_jobs(_resize_one, jobs, {"resized": 0, "small": 0, "done": 0, "corrupt": []}, workers, progress)


def _run_jobs(fn, jobs: list, counts: dict, workers: int | None, progress) -> dict:
    """Run ``fn`` over ``jobs`` on all cores; count each returned status, list the corrupt files."""
    with worker_pool(max(1, workers or os.cpu_count() or 1)) as pool:
        for status, path in pool.map(fn, jobs, chunksize=16):
            if status.startswith("corrupt"):
                counts["corrupt"].append({"path": path, "fault": status[len("corrupt: "):]})
            else:
                counts[status] += 1
            if progress:
                progress(1)
    return counts


# --------------------------------------------------------------------------- create-dataset

@dataclass(frozen=True)
class CreateJob:
    src: str
    dst: str
    dim: int
    crop: str
    offset: int
    quality: int


def fit_image(img: Image.Image, dim: int, crop: str, offset: int) -> Image.Image:
    """``inner``: shorter side to ``dim``, centre ``dim`` x ``dim`` crop. ``outer``: longer side to ``dim``,
    padded to ``dim`` x ``dim`` with grey value ``offset``."""
    img = to_rgb(img)
    w, h = img.size
    if crop == "inner":
        s = dim / min(w, h)
        nw, nh = max(dim, round(w * s)), max(dim, round(h * s))
        img = img.resize((nw, nh), Image.LANCZOS, reducing_gap=3.0)
        left, top = (nw - dim) // 2, (nh - dim) // 2
        return img.crop((left, top, left + dim, top + dim))
    s = dim / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    canvas = Image.new("RGB", (dim, dim), (offset, offset, offset))
    canvas.paste(img.resize((nw, nh), Image.LANCZOS, reducing_gap=3.0), ((dim - nw) // 2, (dim - nh) // 2))
    return canvas


def _create_one(job: CreateJob) -> tuple[str, str]:
    dst = Path(job.dst)
    if dst.exists():
        return "done", job.src
    try:
        img = open_upright(Path(job.src), shorter=job.dim)
    except Exception as e:
        return f"corrupt: {type(e).__name__}: {e}", job.src
    save_atomic(fit_image(img, job.dim, job.crop, job.offset), dst, job.quality)
    return "written", job.src


SETTINGS_FILE = ".create-dataset.json"  # in --dst: the settings it was made with


def split_class(files: list[Path], ratio: float, rng: random.Random) -> tuple[list[Path], list[Path]]:
    """(train, val) of one class: a seeded shuffle; at least one val image when there are two or more."""
    files = list(files)
    rng.shuffle(files)
    n_val = round(len(files) * ratio)
    if len(files) >= 2:
        n_val = min(max(n_val, 1), len(files) - 1)
    else:
        n_val = 0
    return files[n_val:], files[:n_val]


def create_dataset(src: str | os.PathLike, dst: str | os.PathLike, ratio: float = 0.1, dim: int = 256,
                   crop: str = "inner", offset: int = 0, seed: int = 0, train_dir: str = "train",
                   val_dir: str = "val", quality: int = 95, workers: int | None = None, progress=None) -> dict:
    """Split ``src/<class>/...`` into ``dst/train`` and ``dst/val``, each image fitted to ``dim`` x ``dim``."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise UsageError(f"--src {src}: no such folder")
    _check_not_inside(src, dst, "--dst")
    if crop not in ("inner", "outer"):
        raise UsageError(f"--crop {crop}: choose inner or outer")
    if not 0.0 <= ratio < 1.0:
        raise UsageError(f"--ratio {ratio}: must be in [0, 1)")
    if not 0 <= offset <= 255:
        raise UsageError(f"--offset {offset}: a grey value in 0..255")
    classes = sorted(e.name for e in os.scandir(src) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise UsageError(f"--src {src}: no class folders; expected {src}/<class>/<images>")
    settings = {"--src": str(src.resolve()), "--ratio": ratio, "--seed": seed, "--dim": dim, "--crop": crop,
                "--offset": offset if crop == "outer" else None, "--train-dir": train_dir, "--val-dir": val_dir,
                "--quality": quality}
    claim_folder(dst, f"--dst {dst}", "create-dataset", SETTINGS_FILE, settings)
    jobs, summary = [], []
    for c in classes:
        files = image_files(src / c)
        train, val = split_class(files, ratio, random.Random(f"{seed}/{c}"))
        summary.append({"class": c, "images": len(files), "train": len(train), "val": len(val)})
        for split, part in ((train_dir, train), (val_dir, val)):
            for f in part:
                rel = f.relative_to(src / c)  # outputs are JPEG; a.png becomes a.png.jpg, never clashing with a.jpg
                rel = rel.with_suffix(".jpg") if rel.suffix.lower() in (".jpg", ".jpeg") else rel.with_name(rel.name + ".jpg")
                jobs.append(CreateJob(str(f), str(dst / split / c / rel), dim, crop, offset, quality))
    counts = _run_jobs(_create_one, jobs, {"written": 0, "done": 0, "corrupt": [], "classes": summary},
                       workers, progress)
    bad = {Path(b["path"]) for b in counts["corrupt"]}
    for row in summary:  # what actually landed, corrupt files excluded
        row["written"] = row["images"] - sum(1 for b in bad if (src / row["class"]) in b.parents)
    return counts
