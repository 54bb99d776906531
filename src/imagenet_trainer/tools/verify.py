"""``verify``: find the files of a dataset that would hurt training, and optionally move them aside.

Faults found: undecodable and truncated files, CMYK JPEGs, files whose extension lies about their
format, classes with very few images, and exact duplicates across train and val (by content
hash). Nothing is deleted: ``quarantine`` moves undecodable and truncated files into another
folder, keeping their relative paths.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import warnings
from pathlib import Path

import simplejpeg
from PIL import Image, UnidentifiedImageError

from imagenet_trainer.data.decode import DecodeError, check_pixels
from imagenet_trainer.data.index import broken_links, build_index, find_split_dirs, stray_images
from imagenet_trainer.errors import UsageError
from imagenet_trainer.processes import worker_pool

# Faults that the quarantine moves out. Training skips undecodable and too-large images (logged); a truncated JPEG
# it decodes as far as the data goes, gray below, which is why verify reports it.
FATAL = ("undecodable", "truncated", "too large")
_FORMATS = {b"\xff\xd8": "JPEG", b"\x89P": "PNG", b"BM": "BMP", b"P6": "PPM", b"P3": "PPM", b"P5": "PGM", b"P2": "PGM",
            b"RI": "WEBP", b"II": "TIFF", b"MM": "TIFF"}
_EXT_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".ppm": "PPM", ".pgm": "PGM", ".webp": "WEBP",
               ".tif": "TIFF", ".tiff": "TIFF"}


def check_file(path: str) -> tuple[str, str, list[str]]:
    """(path, sha1 of the content, faults) for one image file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return path, "", [f"undecodable: cannot read ({e.strerror})"]
    return check_bytes(path, data)


def check_bytes(path: str, data: bytes) -> tuple[str, str, list[str]]:
    """(path, sha1 of ``data``, faults) for the content of one image file."""
    digest = hashlib.sha1(data).hexdigest()
    if not data:
        return path, digest, ["undecodable: empty file"]
    faults = []
    fmt = _FORMATS.get(data[:2])
    expected = _EXT_FORMAT.get(os.path.splitext(path)[1].lower())
    if fmt and expected and fmt != expected and not (fmt == "PGM" and expected == "PPM"):
        faults.append(f"extension says {expected}, content is {fmt}")
    if fmt == "JPEG":
        try:
            h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
            check_pixels(w, h)
            if colorspace in ("CMYK", "YCCK"):
                faults.append("CMYK JPEG (decoded through the slower fallback)")
            else:
                simplejpeg.decode_jpeg(data, strict=True)
            return path, digest, faults
        except DecodeError as e:
            return path, digest, faults + [f"too large: {e}"]
        except ValueError as e:
            msg = str(e)
            if "Premature end" in msg or "premature" in msg.lower():
                return path, digest, faults + ["truncated: the JPEG data ends early"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                check_pixels(*img.size)
                img.load()
    except DecodeError as e:
        faults.append(f"too large: {e}")
    except UnidentifiedImageError:  # its message names an internal buffer, not the file
        faults.append("undecodable: not an image format that JPEG or Pillow decoders read")
    except OSError as e:
        kind = "truncated" if "truncated" in str(e).lower() else "undecodable"
        faults.append(f"{kind}: {e}")
    except Exception as e:
        faults.append(f"undecodable: {type(e).__name__}: {e}")
    return path, digest, faults


def verify_dataset(data: str | os.PathLike, min_per_class: int = 10, workers: int | None = None,
                   progress=None) -> dict:
    """Check every image under data/train and data/val (or validation/, test/); returns the report."""
    train_dir, val_dir = find_split_dirs(data, option="")
    splits = {"train": train_dir, **({"val": val_dir} if val_dir else {})}
    report = {"data": str(data), "files": 0, "problems": [], "small_classes": [], "duplicates": [], "classes": 0}
    hashes: dict[str, dict[str, list[str]]] = {}
    train_classes: set[str] = set()
    for split, d in splits.items():
        empty: list[str] = []
        idx = build_index(d, use_cache=False, empty_classes=empty)
        report["classes"] = max(report["classes"], len(idx.classes))
        if split == "train":
            train_classes = set(idx.classes)
        else:  # train refuses these: the class index comes from train/
            report["problems"] += [{"path": str(Path(d) / c), "fault": "class folder not in train/: train refuses "
                                    "it; rename it as its train/ folder, or add the class to train/"}
                                   for c in idx.classes if c not in train_classes]
        report["problems"] += [{"path": e, "fault": "empty class folder"} for e in empty]
        report["problems"] += [{"path": f, "fault": "outside the class folders: not used; move it into the folder "
                                "of its class"} for f in stray_images(d)]
        report["problems"] += [{"path": f, "fault": f"broken link: {os.readlink(f)} does not exist; training skips "
                                "it"} for f in broken_links(d)]
        for c, n in zip(idx.classes, idx.class_counts()):
            if 0 < n < min_per_class:
                report["small_classes"].append({"split": split, "class": c, "images": int(n)})
        files = [idx.path(i) for i in range(len(idx))]
        with worker_pool(max(1, workers or os.cpu_count() or 1)) as pool:
            for path, digest, faults in pool.map(check_file, files, chunksize=64):
                report["files"] += 1
                report["problems"] += [{"path": path, "fault": f} for f in faults]
                if digest and not any(f.startswith(FATAL) for f in faults):  # two empty files are no duplicate
                    hashes.setdefault(digest, {}).setdefault(split, []).append(path)
                if progress:
                    progress(1)
    for digest, where in hashes.items():
        if "train" in where and "val" in where:
            report["duplicates"].append({"sha1": digest, "train": where["train"], "val": where["val"]})
    return report


def quarantine(report: dict, data: str | os.PathLike, dest: str | os.PathLike) -> list[tuple[str, str]]:
    """Move the undecodable and truncated files under ``dest``, keeping their paths; never deletes."""
    data, dest = Path(data).resolve(), Path(dest).resolve()
    if dest == data or data in dest.parents:
        raise UsageError(f"--quarantine {dest}: inside the dataset; choose a folder outside {data}")
    moved = []
    for p in report["problems"]:
        if not p["fault"].startswith(FATAL):
            continue
        src = Path(p["path"]).resolve()
        target = dest / src.relative_to(data) if data in src.parents else dest / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise UsageError(f"{target}: already in the quarantine; move it away first (nothing was overwritten)")
        shutil.move(str(src), str(target))
        moved.append((str(src), str(target)))
    return moved
