"""The index of image files under a split folder (``train/<class>/...``), cached on disk.

The original cached its file list; so do we. The cache is keyed by the folder's real path and is
rebuilt when the modification time of any folder in the tree changed (adding, removing or renaming
a file changes its folder's mtime). Paths are kept in one numpy bytes array rather than a list of
Python strings, so forked loader workers share them without copy-on-write growth.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagenet_trainer.errors import UsageError
from imagenet_trainer.files import walk_folders

# torchvision ImageFolder's list: its users' data is found whole
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"})
VAL_DIR_NAMES = ("val", "validation", "test")
_CACHE_VERSION = 2  # 2: .pgm/.tif/.tiff files too


def is_image_name(name: str) -> bool:
    """Whether a file of this name is one of the dataset's images: an image extension, in any letter case, and not
    hidden (a dot file: a tool's own record, or an editor's or the OS's)."""
    return not name.startswith(".") and name[name.rfind("."):].lower() in IMAGE_EXTENSIONS  # splitext's, faster


@dataclass
class FileIndex:
    """Image files of one split: ``root/<paths[i]>`` has class ``classes[labels[i]]``."""

    root: Path
    classes: list[str]
    paths: np.ndarray  # (N,) bytes: paths relative to root, os.fsencode'd
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> str:
        return os.path.join(self.root, os.fsdecode(self.paths[i]))

    def read(self, i: int, size: int = -1) -> bytes:
        """The bytes of file ``i`` (its first ``size`` bytes, when given)."""
        with open(self.path(i), "rb") as f:
            return f.read(size)

    def identity(self) -> str:
        """What the run's caches (loader probe, dataset statistics) are keyed by: the folder's real path."""
        return str(self.root.resolve())

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))


def default_cache_dir() -> Path:
    """Where indexes, dataset statistics and the loader probe's choices are cached: $IMAGENET_TRAINER_CACHE or
    $XDG_CACHE_HOME/imagenet-trainer (~/.cache/imagenet-trainer)."""
    if os.environ.get("IMAGENET_TRAINER_CACHE"):
        return Path(os.environ["IMAGENET_TRAINER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imagenet-trainer"


def find_split_dirs(data: str | os.PathLike, val_dir: str | os.PathLike | None = None,
                    option: str = "--data") -> tuple[Path, Path | None]:
    """Return (train folder, val folder or None) for a dataset root, with clear errors for bad layouts.
    ``option``: how the errors name the root (the command's option; "" for a positional argument)."""
    root = Path(data)
    named = f"{option} {root}" if option else str(root)
    if not root.exists():
        raise UsageError(f"{named}: no such folder; give the folder that holds train/ and val/")
    if not root.is_dir():
        raise UsageError(f"{named}: is a file, not a folder; give the folder that holds train/ and val/")
    train = root / "train"
    if not train.is_dir():
        what = "is a file, not a folder" if train.exists() else "is missing"
        raise UsageError(f"{train} {what}; expected the layout {root}/train/<class>/<image> (and {root}/val/<class>/<image>)")
    if val_dir is not None:
        val = Path(val_dir)
        if not val.is_dir():
            raise UsageError(f"--val-dir {val}: " + ("is a file, not a folder" if val.exists() else "no such folder"))
        return train, val
    for name in VAL_DIR_NAMES:
        if (root / name).is_dir():
            return train, root / name
    return train, None


def list_classes(split_dir: Path) -> list[str]:
    """The sorted, non-hidden sub-folders of a split folder."""
    try:
        entries = sorted(e.name for e in os.scandir(split_dir) if not e.name.startswith(".") and e.is_dir())
    except OSError as e:
        raise UsageError(f"{split_dir}: cannot list the folder ({e.strerror})") from None
    if not entries:
        raise UsageError(f"{split_dir} has no class folders; put each class's images in {split_dir}/<class>/")
    return entries


def stray_images(split_dir: Path) -> list[str]:
    """Image files right in a split folder, outside every class folder: training never sees them (each
    image's class is the name of the class folder it is in)."""
    try:
        return sorted(os.path.join(split_dir, e.name) for e in os.scandir(split_dir)
                      if is_image_name(e.name) and e.is_file())
    except OSError:
        return []


def broken_links(split_dir: Path) -> list[str]:
    """Image-named links under the class folders whose target is gone: the index skips them (they are not
    files), so training never sees those images."""
    out = []
    for _, entries in walk_folders(split_dir):
        out += [e.path for e in entries if e.is_symlink() and is_image_name(e.name) and not os.path.exists(e.path)]
    return sorted(out)


def refuse_other_data(folder: Path, named: str, command: str, allowed=()) -> None:
    """A one-line error when ``folder`` holds a visible entry not in ``allowed``: ``command`` would add its classes
    to someone's dataset. Hidden entries (a tool's own records) do not count; a missing folder is fine."""
    if not folder.is_dir():
        return
    found = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in allowed)
    if found:
        raise UsageError(f"{named}: holds other data ({found[0]}); {command} writes into a new or empty folder, "
                         "or continues its own earlier output")


def claim_folder(folder: Path, named: str, command: str, record: str, settings: dict, allowed=()) -> None:
    """Where ``command`` writes a dataset: continue an earlier run of it made with the same ``settings`` (kept in
    ``folder/record``, a hidden file), or start in a new or empty folder (or one holding only ``allowed`` entries);
    anything else is a one-line error. Continued with other settings, the output would mix two datasets: another
    split's images in both train/ and val/, images of two sizes, more classes than either run asked for."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{named}: is a file, not a folder")
    path = folder / record
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            before = None
        if isinstance(before, dict):
            changed = [f"{k} {before.get(k)} now {v}" for k, v in settings.items() if before.get(k) != v]
            if changed:
                raise UsageError(f"{named}: an earlier {command} made it with other settings ({'; '.join(changed)}); "
                                 "continuing would mix the two; give a new folder")
            return
    refuse_other_data(folder, named, command, allowed)
    from imagenet_trainer.files import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(json.dumps(settings, indent=1).encode()))


def _check_link(link: str, class_real: str) -> None:
    """A folder link inside a class folder may point anywhere but above it: a link to the split folder (or
    higher) would file every other class's images under this class as well."""
    target = os.path.realpath(link)
    if class_real.startswith(target.rstrip(os.sep) + os.sep):
        raise UsageError(f"{link}: links to {target}, a folder that holds this class folder, so other classes' "
                         "images would be counted in this class too; remove the link")


def _scan_class(class_dir: str) -> tuple[list[bytes], dict[str, int]]:
    """All image files under one class folder (recursively, following links), and each folder's mtime."""
    files: list[bytes] = []
    mtimes: dict[str, int] = {}
    class_real = os.path.realpath(class_dir)
    encoding = sys.getfilesystemencoding()  # os.fsencode's, without its call per file
    for d, entries in walk_folders(class_dir):  # links followed, loops cut
        mtimes[d] = os.stat(d).st_mtime_ns
        for e in entries:
            if e.is_dir():
                if e.is_symlink():
                    _check_link(e.path, class_real)
            elif is_image_name(e.name) and e.is_file():
                files.append(e.path.encode(encoding, "surrogateescape"))
    files.sort()
    return files, mtimes


def _cache_path(cache_dir: Path, split_dir: Path, classes: list[str]) -> Path:
    key = hashlib.sha1(json.dumps([str(split_dir.resolve()), classes]).encode()).hexdigest()[:20]
    return cache_dir / "index" / f"{key}.npz"


def _load_cached(path: Path, split_dir: Path) -> FileIndex | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("version") != _CACHE_VERSION:
                return None
            for d, mtime in meta["dir_mtimes"].items():
                if os.stat(os.path.join(split_dir, d)).st_mtime_ns != mtime:
                    return None
            return FileIndex(split_dir, meta["classes"], z["paths"], z["labels"].astype(np.int64))
    except (OSError, ValueError, KeyError):
        return None


def _save_cache(path: Path, index: FileIndex, dir_mtimes: dict[str, int]) -> None:
    meta = {"version": _CACHE_VERSION, "classes": index.classes, "dir_mtimes": dir_mtimes}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, paths=index.paths, labels=index.labels.astype(np.int32),
                     meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache folder only costs speed
        print(f"note: could not write the index cache {path}: {e.strerror}", file=sys.stderr)


def build_index(split_dir: str | os.PathLike, classes: list[str] | None = None,
                cache_dir: Path | None = None, use_cache: bool = True,
                empty_classes: list[str] | None = None) -> FileIndex:
    """Index a split folder. ``classes`` fixes the label order (a val split uses train's classes).

    An empty class folder is an error, unless ``empty_classes`` is a list: then its path is appended
    there and the class is indexed with no files.
    """
    split_dir = Path(split_dir)
    own = list_classes(split_dir)
    if classes is None:
        classes = own
    else:
        odd = [c for c in own if c not in set(classes)]
        if odd:
            raise UsageError(f"{split_dir / odd[0]}: class folder not in train/ ({len(odd)} such); "
                             "val classes must be a subset of the train classes")
    cache = _cache_path(cache_dir or default_cache_dir(), split_dir, classes) if use_cache else None
    if empty_classes is not None:
        cache = None  # a lenient index is for checks only; never cache it
    if cache is not None and cache.exists():
        cached = _load_cached(cache, split_dir)
        if cached is not None:
            return cached
    label_of = {c: i for i, c in enumerate(classes)}
    prefix = len(os.fsencode(os.path.join(split_dir, "")))
    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 4)) as pool:
        scans = list(pool.map(_scan_class, [os.path.join(split_dir, c) for c in own]))
    paths: list[bytes] = []
    labels: list[int] = []
    dir_mtimes = {".": os.stat(split_dir).st_mtime_ns}
    for c, (files, mtimes) in zip(own, scans):
        if not files and empty_classes is not None:
            empty_classes.append(str(split_dir / c))
        elif not files:
            raise UsageError(f"{split_dir / c}: empty class folder (no {'/'.join(sorted(IMAGE_EXTENSIONS))} files); "
                             "add images or remove the folder")
        paths.extend(f[prefix:] for f in files)
        labels.extend([label_of[c]] * len(files))
        dir_mtimes.update({os.path.relpath(d, split_dir): m for d, m in mtimes.items()})
    index = FileIndex(split_dir, list(classes), np.array(paths, dtype=bytes), np.array(labels, dtype=np.int64))
    if cache is not None:
        _save_cache(cache, index, dir_mtimes)
    return index
