"""The two zoos beside this project's own registry: every torchvision classification model by its torchvision
name, and every timm model as ``timm/NAME`` (timm is an optional extra).

Each zoo builds its models, loads its published weights through its own loading and cache (torch.hub's for
torchvision, the Hugging Face hub's for timm), and tells the input recipe those weights were trained with.
"""

from __future__ import annotations

import fnmatch
import functools
import os

import torch.nn as nn

from imagenet_trainer.errors import MissingExtra, UsageError

TIMM_PREFIX = "timm/"
DROP_PATH_MODELS = "timm's models mostly; torchvision's ConvNeXt, EfficientNet, Swin and MaxViT"
# torchvision builders that take the input side (their position embeddings or windows are sized at build time)
_TV_SIZE_ARG = {"vit_": "image_size", "maxvit_t": "input_size"}


def is_timm(name: str) -> bool:
    return name.lower().startswith(TIMM_PREFIX)


def timm_module():
    """timm, or the one-line error that says how to install it."""
    try:
        import timm
    except ImportError:
        raise MissingExtra("timm models need timm: pip install 'imagenet-trainer[timm]' (or pip install timm)") from None
    return timm


@functools.lru_cache(maxsize=1)
def torchvision_names() -> tuple[str, ...]:
    """torchvision's classification models (not its detection, segmentation or video ones)."""
    from torchvision import models as tvm

    return tuple(tvm.list_models(module=tvm))


def timm_names(pattern: str = "*") -> list[str]:
    """``timm/NAME`` for each timm model matching ``pattern`` (empty when timm is not installed)."""
    try:
        import timm
    except ImportError:
        return []
    return [TIMM_PREFIX + n for n in timm.list_models(pattern)]


def matches(name: str, pattern: str) -> bool:
    """``models --filter``: a shell pattern (``convnext*``), or a plain word found anywhere in the name."""
    pattern = pattern.lower()
    return fnmatch.fnmatch(name, pattern if any(c in pattern for c in "*?[") else f"*{pattern}*")


def timm_name(name: str) -> str:
    """The timm model name of ``timm/NAME``; an error naming ``models --filter`` for unknown ones."""
    timm = timm_module()
    bare = name[len(TIMM_PREFIX):]
    if not timm.is_model(bare.split(".")[0]):
        close = timm.list_models(f"*{bare.split('_')[0]}*")[:6]
        raise UsageError(f"--arch {name}: timm has no such model" + (f" (like it: {', '.join(close)})" if close else "")
                         + "; `imagenet-trainer models --filter WORD` searches both zoos")
    return bare


def _timm_cfg(name: str):
    """timm's pretrained config of ``timm/NAME[.TAG]``: the tag's own where a tag is given, else the default's."""
    return timm_module().get_pretrained_cfg(timm_name(name))


def has_published_weights(name: str, torchvision_name: str | None = None) -> bool:
    """Whether the zoo publishes weights for ``name`` (what ``--pretrained`` would load)."""
    if is_timm(name):
        cfg = _timm_cfg(name)
        return bool(cfg is not None and (cfg.hf_hub_id or cfg.url or cfg.file))
    from torchvision import models as tvm

    try:
        tvm.get_model_weights(torchvision_name or name)
    except (ValueError, KeyError):
        return False
    return True


def sized_at_build(name: str) -> bool:
    """Whether the model takes only the input side it was built for (ViTs, MaxViT): no progressive resizing."""
    if is_timm(name):
        cfg = _timm_cfg(name)
        return bool(cfg is not None and cfg.fixed_input_size)
    return any(name.startswith(prefix) for prefix in _TV_SIZE_ARG)


def build(name: str, num_classes: int, drop_path: float | None = None, image_size: int | None = None) -> nn.Module:
    """A freshly initialized zoo model (``timm/NAME`` or a torchvision name) for ``num_classes`` classes.

    ``drop_path``: stochastic depth, through the model's own argument (timm's ``drop_path_rate``, torchvision's
    ``stochastic_depth_prob``); an error for a model that has none. ``image_size``: the input side, for the
    models whose position embeddings or windows are sized when they are built (ViTs, MaxViT).
    """
    extra: dict = {}
    if is_timm(name):
        timm = timm_module()
        bare = timm_name(name)
        depth_arg = "drop_path_rate"
        cfg = _timm_cfg(name)
        if image_size is not None and cfg is not None and cfg.fixed_input_size:
            extra["img_size"] = image_size
        create = lambda **kw: timm.create_model(bare, pretrained=False, num_classes=num_classes, **kw)  # noqa: E731
    else:
        from torchvision import models as tvm

        depth_arg = "stochastic_depth_prob"
        for prefix, arg in _TV_SIZE_ARG.items():
            if name.startswith(prefix) and image_size is not None:
                extra[arg] = image_size if arg == "image_size" else (image_size, image_size)
        if name == "inception_v3":
            extra |= {"aux_logits": False, "init_weights": True}
        create = lambda **kw: tvm.get_model(name, weights=None, num_classes=num_classes, **kw)  # noqa: E731
    if drop_path is not None:
        extra[depth_arg] = drop_path
    try:
        return create(**extra)
    except TypeError as e:  # the builder takes no such argument
        if depth_arg in str(e):
            raise UsageError(f"--drop-path: {name} has no stochastic depth (it is in {DROP_PATH_MODELS})") from None
        raise


def pretrained_state_dict(name: str, torchvision_name: str | None = None) -> tuple[dict, str]:
    """(state dict, what they are) of the published weights of ``name``, through the zoo's own download and
    cache; one line naming the weights, the cache folder and ``--weights FILE`` where they cannot be had."""
    if is_timm(name):
        timm = timm_module()
        bare = timm_name(name)
        cfg = _timm_cfg(name)
        tag = (cfg.hf_hub_id or cfg.url or bare) if cfg is not None else bare
        if not has_published_weights(name):
            raise UsageError(f"--pretrained: timm publishes no weights for {bare}; give --weights FILE")
        try:
            model = timm.create_model(bare, pretrained=True)
        except Exception as e:  # noqa: BLE001 - hub and network errors come in many types
            raise _unavailable(name, tag, _hf_cache(), e) from None
        return model.state_dict(), f"timm's {tag}"
    from torchvision import models as tvm

    tv = torchvision_name or name
    try:
        weights = tvm.get_model_weights(tv).DEFAULT
    except (ValueError, KeyError):
        raise UsageError(f"--pretrained: torchvision publishes no weights for {name}; give --weights FILE") from None
    try:
        state = weights.get_state_dict(progress=False, check_hash=False)
    except Exception as e:  # noqa: BLE001 - urllib, socket and hash errors
        import torch.hub

        raise _unavailable(name, str(weights), os.path.join(torch.hub.get_dir(), "checkpoints"), e) from None
    return state, f"torchvision's {weights}"


def _hf_cache() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
        return HF_HUB_CACHE
    except ImportError:
        return os.path.expanduser("~/.cache/huggingface/hub")


def _unavailable(name: str, weights: str, cache: str, e: Exception) -> UsageError:
    from imagenet_trainer.errors import reason

    return UsageError(f"--pretrained: the weights {weights} of {name} are not in the cache ({cache}) and could not "
                      f"be downloaded ({reason(e, 100)}); download them where there is a network, or give "
                      "--weights FILE")


def input_recipe(name: str, torchvision_name: str | None = None) -> dict | None:
    """The input recipe of ``name``'s published weights: mean, std, crop (input side), resize (the shorter side
    before the centre crop) and interpolation; None for a model with no published weights."""
    if is_timm(name):
        cfg = _timm_cfg(name)
        if cfg is None:
            return None
        crop = int(cfg.input_size[-1])
        return {"mean": [float(v) for v in cfg.mean], "std": [float(v) for v in cfg.std], "crop_size": crop,
                "image_size": int(round(crop / (cfg.crop_pct or 0.875))), "interpolation": cfg.interpolation}
    from torchvision import models as tvm

    tv = torchvision_name or name
    try:
        t = tvm.get_model_weights(tv).DEFAULT.transforms()
    except (ValueError, KeyError):
        return None
    mean, std = [float(v) for v in t.mean], [float(v) for v in t.std]
    if tv in ("googlenet", "inception_v3"):
        # torchvision turns these nets' input back into the (x - 0.5) / 0.5 scaling their weights were trained on
        # (``transform_input``) only when it loads the weights itself; here the input is scaled so from the start
        mean, std = [0.5] * 3, [0.5] * 3
    return {"mean": mean, "std": std, "crop_size": int(t.crop_size[0]), "image_size": int(t.resize_size[0]),
            "interpolation": t.interpolation.value}
