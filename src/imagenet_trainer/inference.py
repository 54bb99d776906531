"""Using a trained model file: load it, evaluate it on a folder, predict the classes of images."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from imagenet_trainer.data.build import default_workers, make_val_loader
from imagenet_trainer.data.decode import DecodeError, decode_crops
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import build_index, find_split_dirs
from imagenet_trainer.data.shards import ShardIndex, is_shard_data, load_shard_splits
from imagenet_trainer.engine import checkpoint as ckpt_io
from imagenet_trainer.engine.trainer import StepContext, evaluate
from imagenet_trainer.errors import MissingExtra, UsageError, reason
from imagenet_trainer.models import create_model
from imagenet_trainer.models.weights import read_safetensors, strip_wrappers
from imagenet_trainer.tools.images import image_files


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
    small_stem: bool = False
    data: str | None = None  # the dataset it was trained on, if recorded
    ema: bool = False  # the weights are the EMA's
    tta: bool = False  # training validated it with flip test-time augmentation ...
    tta_shift: int = 0  # ... and shifted copies (train's --tta-shift)


def _read_safetensors(path: Path) -> dict:
    state, meta = read_safetensors(path, str(path))
    if meta.get("format") != ckpt_io.MODEL_FORMAT:
        raise UsageError(f"{path}: a safetensors file without imagenet-trainer metadata (arch, classes)")
    return meta | {"state_dict": state, "num_classes": len(meta["classes"])}


def load_model_file(path: str | os.PathLike, device: torch.device, ema: bool | None = None) -> LoadedModel:
    """Build the model a model file (or checkpoint, or converted .pt/.safetensors) describes, in eval mode.

    ``ema``: True loads the moving average of the weights that EMA training saved, False the weights; None
    (the default) the EMA where the file has one, the model that ``train`` reports as the run's result.
    """
    path = Path(path)
    if path.suffix in (".ts", ".onnx") and path.is_file():
        raise UsageError(f"{path}: a converted model runs in predict and in Python (Predictor); evaluate and train "
                         "read the .pt or .safetensors model file it was converted from")
    if path.suffix == ".safetensors" and path.is_file():
        rec = _read_safetensors(path)
    else:
        rec = ckpt_io.safe_load(path, ckpt_io.MODEL_FORMAT)
    try:
        model = create_model(rec["arch"], rec["num_classes"], small_stem=bool(rec.get("small_stem", False)),
                             image_size=int(rec["crop_size"]))
    except MissingExtra as e:
        raise UsageError(f"{path}: made with {rec['arch']}; {e}") from None
    except UsageError:
        raise UsageError(f"{path}: made with model {rec['arch']!r}, which this version does not know") from None
    if ema and "ema_state_dict" not in rec:
        raise UsageError(f"{path}: has no EMA weights (train with --ema, or the fast recipe)")
    ema = "ema_state_dict" in rec if ema is None else ema
    weights = rec["ema_state_dict"] if ema else rec["state_dict"]
    state = {k: v.float() if v.is_floating_point() else v for k, v in strip_wrappers(weights).items()}
    ckpt_io.load_weights(model, state, path)
    model.to(device, memory_format=torch.channels_last).eval()
    return LoadedModel(model, list(rec["classes"]), list(rec["mean"]), list(rec["std"]),
                       int(rec["image_size"]), int(rec["crop_size"]), rec["arch"], rec.get("epoch"),
                       bool(rec.get("small_stem", False)), rec.get("data"), ema, bool(rec.get("tta", False)),
                       int(rec.get("tta_shift", 0)))


class Predictor:
    """Any model file as a function from float images in 0..1, (N, 3, H, W), to class probabilities."""

    def __init__(self, path: str | os.PathLike, device: torch.device):
        path = Path(path)
        self.device = device
        if path.suffix == ".ts":
            self._load_torchscript(path)
        elif path.suffix == ".onnx":
            self._load_onnx(path)
        else:
            lm = load_model_file(path, device)
            self.classes, self.image_size, self.crop_size = lm.classes, lm.image_size, lm.crop_size
            self.mean, self.std = lm.mean, lm.std
            self._fn = lambda x: lm.model(normalize_float(x, lm.mean, lm.std)).float().softmax(-1)

    def _set_meta(self, meta: dict, path: Path) -> None:
        try:
            self.classes, self.mean, self.std = list(meta["classes"]), list(meta["mean"]), list(meta["std"])
            self.image_size, self.crop_size = int(meta["image_size"]), int(meta["crop_size"])
            self.probabilities = meta.get("output") == "probabilities"
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"{path}: no imagenet-trainer metadata (classes, sizes) in this file; "
                             "convert models with `imagenet-trainer convert`") from None

    def _load_torchscript(self, path: Path) -> None:
        extra = {"meta.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's deprecation notice
                module = torch.jit.load(str(path), map_location=self.device, _extra_files=extra)
            meta = json.loads(extra["meta.json"] or "{}")
        except Exception as e:
            raise UsageError(f"{path}: not a readable TorchScript file ({reason(e)})") from None
        self._set_meta(meta, path)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(meta.get("dtype"), torch.float32)
        post = (lambda y: y) if self.probabilities else (lambda y: y.softmax(-1))
        self._fn = lambda x: post(module(x.to(dtype)).float())

    def _load_onnx(self, path: Path) -> None:
        try:
            import onnx
            import onnxruntime as ort
        except ImportError:
            raise UsageError(f"{path}: running .onnx models needs the export extras: "
                             "pip install 'imagenet-trainer[export]'") from None
        try:
            proto = onnx.load(str(path), load_external_data=False)
            meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
            runner = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise UsageError(f"{path}: not a readable ONNX model ({reason(e)})") from None
        self._set_meta(meta, path)
        np_dtype = "float16" if meta.get("dtype") == "fp16" else "float32"
        post = (lambda y: y) if self.probabilities else (lambda y: y.softmax(-1))
        self._fn = lambda x: post(torch.from_numpy(
            runner.run(None, {"image": x.cpu().numpy().astype(np_dtype)})[0]).float()).to(x.device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)


def normalize_float(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous(memory_format=torch.channels_last)


def evaluate_folder(lm: LoadedModel, data: str, device: torch.device, val_dir: str | None = None,
                    crops: int = 1, batch_size: int = 128, workers: int = -1, image_size: int | None = None,
                    crop_size: int | None = None, precision: torch.dtype | None = None,
                    collect: bool = False, tta: bool | None = None, tta_shift: int | None = None) -> dict:
    """Top-1/top-5 accuracy of a loaded model on a dataset's validation folder (1 or 10 crops). ``tta`` and
    ``tta_shift`` None: as training validated the model (so a run's figure and this one agree)."""
    if crops not in (1, 10):
        raise UsageError(f"--crops {crops}: choose 1 or 10")
    tta = lm.tta if tta is None else tta
    tta_shift = lm.tta_shift if tta_shift is None else tta_shift
    if crops == 10:  # ten crops hold the flips already; the shifted views are for one crop
        tta, tta_shift = False, 0
    crop, size = crop_size or lm.crop_size, image_size or lm.image_size
    if crop < 8 or size < crop:
        named = [f"--crop-size {crop}" + ("" if crop_size else " (the model file's)"),
                 f"--image-size {size}" + ("" if image_size else " (the model file's)")]
        raise UsageError(f"{' / '.join(named)}: need 8 <= crop-size <= image-size")
    if not 0 <= tta_shift < crop:
        raise UsageError(f"--tta-shift {tta_shift}: must be 0 (off) or a number of pixels smaller than the crop ({crop} px)")
    root = Path(data)
    if is_shard_data(data):  # the val shards, or the shards given (a pattern)
        train, val = load_shard_splits(str(data), None if val_dir is None else str(val_dir))
        index = val or train
        vdir = index.root
    else:
        _, vdir = find_split_dirs(root, val_dir) if (root / "train").is_dir() or val_dir else (None, None)
        if vdir is None:  # a folder of class folders given directly
            if not root.is_dir():
                raise UsageError(f"--data {root}: no such folder")
            vdir = root
        index = build_index(vdir)
    unknown = [c for c in index.classes if c not in set(lm.classes)]
    if unknown:
        where = f"{vdir}: class {unknown[0]}" if isinstance(index, ShardIndex) else f"{vdir / unknown[0]}: class"
        raise UsageError(f"{where} not known to the model ({len(unknown)} such)")
    remap = np.array([lm.classes.index(c) for c in index.classes])
    if isinstance(index, ShardIndex):
        index.label_map = remap
    else:
        index.labels = remap[index.labels]
    index.classes = lm.classes
    geometry = Geometry("five" if crops == 10 else "center", crop, size)
    workers = default_workers() if workers < 0 else workers
    loader = make_val_loader(index, geometry, batch_size, workers, device, lm.mean, lm.std)
    ctx = StepContext(device, precision, None, None, tta=tta, tta_shift=tta_shift)
    bad: list[str] = []
    ctx.on_bad_image = lambda p, r: bad.append(f"{p}: {r}")
    out = evaluate(lm.model, loader, ctx, label=f"evaluate ({crops} crop{'s' if crops > 1 else ''})", collect=collect)
    if out["count"] == 0:
        raise UsageError(f"{vdir}: no image could be read ({len(bad)} unreadable, the first {bad[0] if bad else '?'}); "
                         "check it with `imagenet-trainer verify`")
    out["bad_images"] = bad
    out["folder"] = str(vdir)
    out["tta"], out["tta_shift"] = tta, tta_shift
    if collect:
        out["paths"] = [index.path(int(i)) for i in out["indices"]]
    return out


def collect_images(inputs: list[str]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in the named folders."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = image_files(p)
            if not found:
                raise UsageError(f"{p}: no image files in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    return files


@torch.no_grad()
def predict_files(predictor: Predictor, files: list[Path], device: torch.device, topk: int = 5,
                  batch_size: int = 64) -> list[dict]:
    """Top-k classes with probabilities for each file; unreadable files get an ``error`` entry."""
    geometry = Geometry("center", predictor.crop_size, predictor.image_size)
    k = min(topk, len(predictor.classes))
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
        x = torch.from_numpy(np.stack(arrays)).to(device).permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W) in 0..1
        p, idx = predictor(x).topk(k, dim=1)
        for f, pr, ix in zip(ok, p.tolist(), idx.tolist()):
            results.append({"path": str(f), "top": [{"class": predictor.classes[i], "index": i,
                                                     "probability": round(q, 6)} for q, i in zip(pr, ix)]})
    order = {str(f): n for n, f in enumerate(files)}
    results.sort(key=lambda r: order[r["path"]])
    return results
