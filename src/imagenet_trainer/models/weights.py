"""Starting weights for a new run: a weights file (``--weights``) or a zoo's published weights (``--pretrained``),
loaded into a model built for the data's classes, with a new classifier head where the classes differ.

A file may be a torchvision ``.pth`` (a bare state dict), a timm checkpoint (``state_dict``, ``state_dict_ema``,
``model``...), a ``.safetensors`` file, or one of this project's model files or checkpoints. Key prefixes of
wrappers (``module.``, ``_orig_mod.``) are dropped, and a timm model's own ``checkpoint_filter_fn`` adapts
the file to the model (a ViT's position embeddings to another input size). Every tensor outside the head must
fit: a shape mismatch in the body is an error, never a silent skip; body tensors the file lacks (at most half) are
named in the report.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from imagenet_trainer.errors import MissingExtra, UsageError, reason

OUR_FORMATS = "imagenet-trainer/"  # this project's model files and checkpoints (engine.checkpoint)
MIN_BODY_SHARE = 0.5  # fewer of the body's tensors found in a file than this share: the file is for another net
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_NESTED = ("state_dict_ema", "model_ema", "ema_state_dict", "state_dict", "model", "module", "net")


def strip_wrappers(state_dict: dict) -> dict:
    """Drop the key prefixes that DataParallel/DDP (``module.``) and torch.compile (``_orig_mod.``) add."""
    out = {}
    for k, v in state_dict.items():
        changed = True
        while changed:
            changed = False
            for p in _WRAPPER_PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = v
    return out


@dataclass
class WeightsFile:
    """The tensors of a weights file, and what the file says of itself (this project's files: classes, input)."""

    state_dict: dict
    source: str  # how the report names it
    meta: dict = field(default_factory=dict)  # this project's model files: arch, classes, mean, std, sizes


def read_weights(path: str | os.PathLike) -> WeightsFile:
    """The tensors of any supported weights file; a one-line error for a file that is none."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--weights {path}: " + ("no such file" if not path.exists() else "is not a file"))
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = _load(path)
    except pickle.UnpicklingError as e:
        raise UsageError(f"--weights {path}: refused to load: the file holds objects other than tensors and plain "
                         f"values ({reason(e, 100)}); save its state_dict() instead") from None
    except Exception:  # noqa: BLE001 - torch.load raises anything on a file it did not write
        raise UsageError(f"--weights {path}: not a weights file (torch.load cannot read it; give a .pth, .pt or "
                         ".safetensors file)") from None
    if isinstance(obj, dict) and str(obj.get("format", "")).startswith(OUR_FORMATS):
        ema = "ema_state_dict" in obj or bool(obj.get("ema"))
        state = obj.get("ema_state_dict") if isinstance(obj.get("ema_state_dict"), dict) else obj["state_dict"]
        meta = {k: obj[k] for k in ("arch", "classes", "mean", "std", "image_size", "crop_size", "small_stem")
                if k in obj}
        return WeightsFile(state, f"{path}" + (" (EMA weights)" if ema and "ema_state_dict" in obj else ""), meta)
    state = _find_state_dict(obj)
    if state is None:
        raise UsageError(f"--weights {path}: no tensors found (expected a state dict, or a checkpoint holding one "
                         f"under {', '.join(_NESTED[:5])})")
    return WeightsFile(state, str(path))


def _load(path: Path):
    """``torch.load`` with ``weights_only``, memory-mapped where the file allows (a zip archive): the run reads a file
    twice, for its input recipe and for its tensors, and a mapped read costs only the pages it touches."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e) and "zip" not in str(e):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def in_modules(name: str, modules: list[str]) -> bool:
    """Whether parameter or buffer ``name`` belongs to one of ``modules`` (module paths, the head's)."""
    return any(name == m or name.startswith(m + ".") for m in modules)


def _find_state_dict(obj) -> dict | None:
    """The state dict in a loaded file: the file itself, or one nested under a known key (EMA first, as timm)."""
    if not isinstance(obj, dict):
        return None
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors and len(tensors) >= len(obj) / 2:
        return tensors
    for key in _NESTED:
        inner = _find_state_dict(obj.get(key))
        if inner:
            return inner
    return None


def read_safetensors(path: Path, label: str) -> tuple[dict, dict]:
    """(tensors, metadata) of a ``.safetensors`` file; the metadata values that are JSON (this tool's: arch, classes,
    input recipe) decoded. ``label`` starts the one-line errors (``--weights FILE``, or the file alone)."""
    import json

    try:
        from safetensors import safe_open
    except ImportError:
        raise MissingExtra(f"{label}: reading .safetensors needs the export extras: "
                           "pip install 'imagenet-trainer[export]'") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own and Rust-side errors
        raise UsageError(f"{label}: not a readable safetensors file ({reason(e, 100)})") from None
    decoded = {}
    for k, v in meta.items():
        try:
            decoded[k] = json.loads(v)
        except ValueError:
            pass
    return state, decoded


def _read_safetensors(path: Path) -> WeightsFile:
    state, meta = read_safetensors(path, f"--weights {path}")
    return WeightsFile(state, str(path), meta if meta.get("classes") else {})


def head_names(model: nn.Module, num_classes: int) -> list[str]:
    """The module names of the classifier head: timm's ``pretrained_cfg['classifier']``, else the last linear or
    convolution with ``num_classes`` outputs (and any auxiliary classifier's)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    named = cfg.get("classifier")
    if named:
        return [named] if isinstance(named, str) else list(named)
    outputs = [(n, m) for n, m in model.named_modules()
               if (isinstance(m, nn.Linear) and m.out_features == num_classes)
               or (isinstance(m, nn.Conv2d) and m.out_channels == num_classes)]
    if not outputs:
        return []
    return [outputs[-1][0]] + [n for n, _ in outputs[:-1] if "aux" in n.lower()]


def _adapt(model: nn.Module, state: dict) -> dict:
    """A timm model's own ``checkpoint_filter_fn``: other key layouts, position embeddings to the model's size."""
    fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if fn is None or not type(model).__module__.startswith("timm."):
        return state
    try:
        return fn(state, model)
    except Exception:  # noqa: BLE001 - a filter for another layout: the keys are compared as they are
        return state


def load_into(model: nn.Module, weights: WeightsFile, num_classes: int, classes: list[str] | None = None) -> str:
    """Load ``weights`` into ``model`` (built for ``num_classes``), keeping the model's fresh head where the
    file's does not fit or names other classes. Returns the report line: ``loaded X of Y tensors; new head: N
    classes``. Errors: a shape mismatch outside the head; fewer than ``MIN_BODY_SHARE`` of the body's tensors found.
    """
    state = _adapt(model, strip_wrappers(weights.state_dict))
    own = model.state_dict()
    head = head_names(model, num_classes)
    body_keys = [k for k in own if not in_modules(k, head)]
    found, wrong = {}, []
    for k, v in own.items():
        if k not in state or not isinstance(state[k], torch.Tensor):
            continue
        if tuple(state[k].shape) == tuple(v.shape):
            found[k] = state[k]
        elif not in_modules(k, head):
            wrong.append(f"{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model")
    if wrong:
        raise UsageError(f"--weights {weights.source}: {len(wrong)} tensor(s) of the body have another shape than "
                         f"the model's, e.g. {wrong[0]}; the file is for another model or size (--arch)")
    body_found = sum(k in found for k in body_keys)
    if body_keys and body_found < MIN_BODY_SHARE * len(body_keys):
        missing = [k for k in body_keys if k not in found][:3]
        extra = [k for k in state if k not in own][:3]
        raise UsageError(f"--weights {weights.source}: only {body_found} of the model's {len(body_keys)} body tensors "
                         f"are in the file (missing e.g. {', '.join(missing)}"
                         + (f"; the file has e.g. {', '.join(extra)}" if extra else "")
                         + "); is it for another --arch?")
    head_keys = [k for k in own if in_modules(k, head)]
    same_classes = not classes or not weights.meta.get("classes") or list(weights.meta["classes"]) == list(classes)
    keep_head = bool(head_keys) and all(k in found for k in head_keys) and same_classes
    if not keep_head:
        for k in head_keys:
            found.pop(k, None)
    model.load_state_dict(own | {k: v.to(own[k].dtype) for k, v in found.items()})
    head_note = (f"head kept ({num_classes} classes, as in the file)" if keep_head
                 else f"new head: {num_classes} classes")
    missing = [k for k in body_keys if k not in found]
    missing_note = (f"; {len(missing)} body tensor(s) not in the file keep their initialization (e.g. {missing[0]})"
                    if missing else "")
    return f"loaded {len(found)} of {len(own)} tensors from {weights.source}; {head_note}{missing_note}"


def check_published(arch: str) -> str:
    """``arch``'s canonical name; an error, before anything is downloaded or built, for a network of this tool's
    own, which has no published weights."""
    from imagenet_trainer.models.registry import is_registered, resolve_name, torchvision_name

    key = resolve_name(arch)
    if is_registered(key) and torchvision_name(key) is None:
        raise UsageError(f"--pretrained: {key} is this tool's own network and has no published weights; give "
                         "--weights FILE, or choose a torchvision or timm model (`imagenet-trainer models`)")
    return key


def published(arch: str) -> WeightsFile:
    """The published weights of ``arch`` (``--pretrained``), through its zoo's own download and cache."""
    from imagenet_trainer.models import zoo
    from imagenet_trainer.models.registry import torchvision_name

    key = check_published(arch)
    state, source = zoo.pretrained_state_dict(key, torchvision_name(key))
    return WeightsFile(state, source)


def starting_recipe(arch: str, pretrained: bool, weights: str | None) -> dict | None:
    """The input recipe of the starting weights: mean, std, crop_size, image_size (and small_stem, interpolation
    where known). A model file of this tool records its own; published weights and other files get their zoo's
    (timm's ``pretrained_cfg``, torchvision's weight transforms). None where nothing is known."""
    from imagenet_trainer.models import zoo
    from imagenet_trainer.models.registry import is_registered, resolve_name, torchvision_name

    if weights:
        meta = read_weights(weights).meta
        if meta.get("mean") and meta.get("crop_size"):
            recipe = {k: meta[k] for k in ("mean", "std", "crop_size", "image_size")}
            return recipe | {"small_stem": bool(meta.get("small_stem")), "source": str(weights)}
    elif not pretrained:
        return None
    key = resolve_name(arch)
    if is_registered(key) and torchvision_name(key) is None:
        return None
    recipe = zoo.input_recipe(key, torchvision_name(key))
    return None if recipe is None else recipe | {"small_stem": False, "source": f"{key}'s published weights"}


def freeze_body(model: nn.Module, head: list[str]) -> None:
    """``--freeze-backbone``: only the head's parameters train."""
    if not head:
        raise UsageError("--freeze-backbone: this model has no classifier head to train alone")
    for name, p in model.named_parameters():
        p.requires_grad_(in_modules(name, head))
