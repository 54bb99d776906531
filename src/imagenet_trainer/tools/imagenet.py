"""``prepare-imagenet``: the ILSVRC-2012 archives to ``train/<wnid>/`` and ``val/<wnid>/`` folders, offline.

The train archive holds one inner tar per class; each is unpacked into its class folder. Val images
are sorted into class folders by the ground truth, from the devkit (its meta.mat needs scipy) or
from Kaggle's ``LOC_val_solution.csv``. Members are extracted by name only (no
paths, no links), each file atomically; a class whose marker exists is skipped, so a rerun finishes
an interrupted one. At the end the counts are checked against the real set's.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import os
import tarfile
import zlib
from pathlib import Path

from imagenet_trainer.data.index import refuse_other_data
from imagenet_trainer.files import atomic_write
from imagenet_trainer.errors import UsageError

REAL_COUNTS = {"classes": 1000, "train": 1_281_167, "val": 50_000}


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> bool:
    """Write one regular file under ``dest`` by its base name; links and odd names are skipped."""
    name = os.path.basename(member.name)
    if not member.isfile() or not name or name.startswith("."):
        return False
    target = dest / name
    if target.exists() and target.stat().st_size == member.size:
        return True
    f = tar.extractfile(member)
    atomic_write(target, lambda out: out.write(f.read()))
    return True


PROGRESS_DIR = ".prepare-imagenet"  # in --out: a marker per finished class archive, and proof of our own output


def _claim_out(out: Path) -> None:
    """Continue an earlier run (its progress folder is there), or start in a new or empty folder: a folder
    holding another dataset would get ImageNet's 1000 classes added to it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder")
    if not (out / PROGRESS_DIR).is_dir():
        refuse_other_data(out, f"--out {out}", "prepare-imagenet")
    (out / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)


def prepare_train(train_tar: Path, out: Path, progress=None) -> int:
    done_dir = out / PROGRESS_DIR
    done_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    with tarfile.open(train_tar) as outer:
        for member in outer:
            if not member.isfile() or not member.name.endswith(".tar"):
                continue
            wnid = os.path.basename(member.name)[:-4]
            marker = done_dir / f"{wnid}.done"
            if marker.exists():
                total += int(marker.read_text() or 0)
                if progress:
                    progress(1)
                continue
            dest = out / "train" / wnid
            dest.mkdir(parents=True, exist_ok=True)
            n = 0
            with tarfile.open(fileobj=outer.extractfile(member)) as inner:
                for m in inner:
                    n += _extract_member(inner, m, dest)
            atomic_write(marker, lambda f: f.write(str(n).encode()))
            total += n
            if progress:
                progress(1)
    return total


def val_labels_from_csv(path: Path) -> dict[str, str]:
    """``ImageId,PredictionString`` (Kaggle's LOC_val_solution.csv): image id -> wnid (the first word)."""
    labels = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                labels[row["ImageId"]] = row["PredictionString"].split()[0]
    except (KeyError, IndexError, OSError) as e:
        raise UsageError(f"--val-labels {path}: expected columns ImageId,PredictionString ({e})") from None
    return labels


def val_labels_from_devkit(devkit: Path) -> dict[str, str]:
    """Image id -> wnid from ILSVRC2012_devkit_t12.tar.gz (data/meta.mat and the ground-truth list).

    The same reading as torchvision's ``parse_devkit_archive``, which cannot be called here: it
    insists on the archive's file name and MD5 and keeps its parsers inside the function.
    """
    try:
        import scipy.io
    except ImportError:
        raise UsageError("--devkit needs scipy to read meta.mat (pip install scipy), or pass --val-labels "
                         "LOC_val_solution.csv instead") from None
    import io

    try:
        with tarfile.open(devkit) as tar:
            files = {os.path.basename(m.name): m for m in tar if m.isfile()}
            meta = scipy.io.loadmat(io.BytesIO(tar.extractfile(files["meta.mat"]).read()), squeeze_me=True)["synsets"]
            truth = tar.extractfile(files["ILSVRC2012_validation_ground_truth.txt"]).read().decode().split()
    except KeyError as e:
        raise UsageError(f"--devkit {devkit}: {e.args[0]} is missing from the archive") from None
    leaves = [row for row in meta if int(row[4]) == 0]  # num_children == 0: the 1000 classes
    id_to_wnid = {int(row[0]): str(row[1]) for row in leaves}
    return {f"ILSVRC2012_val_{i:08d}": id_to_wnid[int(t)] for i, t in enumerate(truth, 1)}


def prepare_val(val_tar: Path, labels: dict[str, str], out: Path, progress=None) -> tuple[int, list[str]]:
    n, unlabeled = 0, []
    with tarfile.open(val_tar) as tar:
        for member in tar:
            if not member.isfile():
                continue
            image_id = os.path.splitext(os.path.basename(member.name))[0]
            wnid = labels.get(image_id)
            if wnid is None:
                unlabeled.append(member.name)
                continue
            dest = out / "val" / wnid
            dest.mkdir(parents=True, exist_ok=True)
            n += _extract_member(tar, member, dest)
            if progress:
                progress(1)
    return n, unlabeled


def count_tree(out: Path) -> dict:
    def count(split: str) -> tuple[int, int]:
        d = out / split
        if not d.is_dir():
            return 0, 0
        classes = [e for e in os.scandir(d) if e.is_dir()]
        return len(classes), sum(len([f for f in os.listdir(c.path) if not f.startswith(".")]) for c in classes)

    tc, tn = count("train")
    vc, vn = count("val")
    return {"classes": tc, "train": tn, "val": vn, "val_classes": vc}


def compare_with_real(counts: dict) -> list[str]:
    """Lines that say how the tree differs from the real ILSVRC-2012 (empty when it matches)."""
    return [f"{k}: {counts[k]:,} here, {v:,} in the real set" for k, v in REAL_COUNTS.items() if counts[k] != v]


@contextlib.contextmanager
def _archive(option: str, path):
    """An archive that tarfile cannot read (not a tar, truncated) is a one-line error naming it."""
    try:
        yield
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:  # tarfile's own, and a cut-off stream's
        why = str(e).splitlines()[0].rstrip(":") if str(e) else type(e).__name__
        raise UsageError(f"{option} {path}: not a readable tar archive ({why}); check that the download is whole") \
            from None


def prepare_imagenet(out: str | os.PathLike, train_tar=None, val_tar=None, devkit=None, val_labels=None,
                     progress=None) -> dict:
    out = Path(out)
    for opt, p in (("--train-tar", train_tar), ("--val-tar", val_tar), ("--devkit", devkit), ("--val-labels", val_labels)):
        if p is not None and not Path(p).is_file():
            raise UsageError(f"{opt} {p}: no such file")
    if train_tar is None and val_tar is None:
        raise UsageError("give --train-tar and/or --val-tar")
    if val_tar is not None and devkit is None and val_labels is None:
        raise UsageError("--val-tar needs the ground truth: --devkit ILSVRC2012_devkit_t12.tar.gz or --val-labels LOC_val_solution.csv")
    _claim_out(out)
    result: dict = {}
    if train_tar is not None:
        with _archive("--train-tar", train_tar):
            result["train_extracted"] = prepare_train(Path(train_tar), out, progress)
    if val_tar is not None:
        if val_labels:
            labels = val_labels_from_csv(Path(val_labels))
        else:
            with _archive("--devkit", devkit):
                labels = val_labels_from_devkit(Path(devkit))
        with _archive("--val-tar", val_tar):
            result["val_extracted"], result["unlabeled"] = prepare_val(Path(val_tar), labels, out, progress)
    result["counts"] = count_tree(out)
    result["differences"] = compare_with_real(result["counts"])
    return result
