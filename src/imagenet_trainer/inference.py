"""Using a trained model file: load it, evaluate it on a folder, predict the classes of images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from imagenet_trainer.data.build import default_workers, make_val_loader
from imagenet_trainer.data.decode import DecodeError, decode_crops
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import IMAGE_EXTENSIONS, build_index, find_split_dirs
from imagenet_trainer.data.loader import Normalizer
from imagenet_trainer.engine import checkpoint as ckpt_io
from imagenet_trainer.engine.trainer import StepContext, evaluate
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model


@dataclass
class LoadedModel:
    model: nn.Module
    classes: list[str]
    mean: list[float]
    std: list[float]
    image_size: int
    crop_size: int
    arch: str
    epoch: int | None


def load_model_file(path: str | os.PathLike, device: torch.device) -> LoadedModel:
    """Build the model a model file (or checkpoint) describes and load its weights, in eval mode."""
    rec = ckpt_io.safe_load(path, ckpt_io.MODEL_FORMAT)
    try:
        model = create_model(rec["arch"], rec["num_classes"])
    except UsageError:
        raise UsageError(f"{path}: made with model {rec['arch']!r}, which this version does not know") from None
    ckpt_io.load_weights(model, rec["state_dict"], path)
    model.to(device, memory_format=torch.channels_last).eval()
    return LoadedModel(model, list(rec["classes"]), list(rec["mean"]), list(rec["std"]),
                       int(rec["image_size"]), int(rec["crop_size"]), rec["arch"], rec.get("epoch"))


def evaluate_folder(lm: LoadedModel, data: str, device: torch.device, val_dir: str | None = None,
                    crops: int = 1, batch_size: int = 128, workers: int = -1, image_size: int | None = None,
                    crop_size: int | None = None, precision: torch.dtype | None = None) -> dict:
    """Top-1/top-5 accuracy of a loaded model on a dataset's validation folder (1 or 10 crops)."""
    if crops not in (1, 10):
        raise UsageError(f"--crops {crops}: choose 1 or 10")
    root = Path(data)
    _, vdir = find_split_dirs(root, val_dir) if (root / "train").is_dir() or val_dir else (None, None)
    if vdir is None:  # a folder of class folders given directly
        if not root.is_dir():
            raise UsageError(f"--data {root}: no such folder")
        vdir = root
    index = build_index(vdir)
    unknown = [c for c in index.classes if c not in set(lm.classes)]
    if unknown:
        raise UsageError(f"{vdir / unknown[0]}: class not known to the model ({len(unknown)} such)")
    remap = np.array([lm.classes.index(c) for c in index.classes])
    index.labels = remap[index.labels]
    index.classes = lm.classes
    geometry = Geometry("five" if crops == 10 else "center", crop_size or lm.crop_size, image_size or lm.image_size)
    workers = default_workers() if workers < 0 else workers
    loader = make_val_loader(index, geometry, batch_size, workers, device, lm.mean, lm.std)
    ctx = StepContext(device, precision, None, None)
    bad: list[str] = []
    ctx.on_bad_image = lambda p, r: bad.append(f"{p}: {r}")
    out = evaluate(lm.model, loader, ctx, label=f"evaluate ({crops} crop{'s' if crops > 1 else ''})")
    out["bad_images"] = bad
    out["folder"] = str(vdir)
    return out


def collect_images(inputs: list[str]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in the named folders."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file()
                           and not any(part.startswith(".") for part in q.relative_to(p).parts))
            if not found:
                raise UsageError(f"{p}: no image files in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    return files


@torch.no_grad()
def predict_files(lm: LoadedModel, files: list[Path], device: torch.device, topk: int = 5,
                  batch_size: int = 64) -> list[dict]:
    """Top-k classes with probabilities for each file; unreadable files get an ``error`` entry."""
    geometry = Geometry("center", lm.crop_size, lm.image_size)
    normalize = Normalizer(lm.mean, lm.std, device)
    k = min(topk, len(lm.classes))
    results: list[dict] = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        arrays, ok = [], []
        for f in chunk:
            try:
                arrays.append(decode_crops(f.read_bytes(), geometry)[0][0])
                ok.append(f)
            except (OSError, DecodeError) as e:
                results.append({"path": str(f), "error": str(e)})
        if not arrays:
            continue
        x = normalize(torch.from_numpy(np.stack(arrays)).to(device))
        probs = lm.model(x).float().softmax(-1)
        p, idx = probs.topk(k, dim=1)
        for f, pr, ix in zip(ok, p.tolist(), idx.tolist()):
            results.append({"path": str(f), "top": [{"class": lm.classes[i], "index": i, "probability": round(q, 6)}
                                                    for q, i in zip(pr, ix)]})
    order = {str(f): n for n, f in enumerate(files)}
    results.sort(key=lambda r: order[r["path"]])
    return results
