"""The model registry: ``@register_model`` fills it with this project's networks; ``create_model`` builds those,
torchvision's classification models by their names and timm's as ``timm/NAME`` (``models.zoo``)."""

from __future__ import annotations

import functools
from typing import Callable

import torch.nn as nn

from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import zoo

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}
_TORCHVISION: dict[str, str] = {}  # registered name -> the torchvision model it builds (for its published weights)


def register_model(name: str, description: str = "", aliases: tuple[str, ...] = (), torchvision: str | None = None):
    """Register ``fn(num_classes) -> nn.Module`` under ``name`` (and aliases); duplicates are refused.
    ``torchvision``: the torchvision model ``fn`` builds, whose published weights ``--pretrained`` loads."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for n in (name, *aliases):
            if n in _BUILDERS or n in _ALIASES:
                raise ValueError(f"model name {n!r} is registered twice")
        _BUILDERS[name] = fn
        _DESCRIPTIONS[name] = description
        for a in aliases:
            _ALIASES[a] = name
        if torchvision:
            _TORCHVISION[name] = torchvision
        return fn

    return wrap


def resolve_name(name: str) -> str:
    """The canonical name for ``name`` or an alias; a clear error for unknown names."""
    if zoo.is_timm(name):
        return zoo.TIMM_PREFIX + zoo.timm_name(name)
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _BUILDERS and key not in zoo.torchvision_names():
        raise UsageError(f"--arch {name}: unknown model; `imagenet-trainer models` lists them, "
                         "`imagenet-trainer models --filter WORD` searches torchvision's and timm's (timm/NAME)")
    return key


def is_registered(name: str) -> bool:
    """Whether ``name`` is one of this project's own registered networks (not a zoo's)."""
    return not zoo.is_timm(name) and resolve_name(name) in _BUILDERS


def torchvision_name(name: str) -> str | None:
    """The torchvision model ``name`` builds (itself, for a torchvision name); None for timm's and our own."""
    key = resolve_name(name)
    if zoo.is_timm(key):
        return None
    return _TORCHVISION.get(key) if key in _BUILDERS else key


def create_model(name: str, num_classes: int = 1000, small_stem: bool = False, drop_path: float | None = None,
                 image_size: int | None = None) -> nn.Module:
    """Build a freshly initialized model by name (or alias) for ``num_classes`` classes.

    ``small_stem`` (ResNets): a 3x3 stride-1 first conv and no max-pool, so that 32-64 px images keep
    their resolution instead of shrinking 4x before the first block. ``drop_path``: the stochastic depth rate,
    for models that have it (``zoo.build``); ``image_size``: the input side, for models built for one (ViTs).
    """
    if num_classes < 1:
        raise UsageError(f"number of classes must be at least 1, got {num_classes}")
    key = resolve_name(name)
    if key not in _BUILDERS:
        model = zoo.build(key, num_classes, drop_path=drop_path, image_size=image_size)
    elif drop_path is not None:
        raise UsageError(f"--drop-path: {key} has no stochastic depth (it is in {zoo.DROP_PATH_MODELS})")
    else:
        model = _BUILDERS[key](num_classes=num_classes)
    if small_stem:
        if not supports_small_stem(name):
            raise UsageError(f"--small-stem: only the ResNets have one; {name} keeps its stem")
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    return model


@functools.lru_cache(maxsize=None)
def has_drop_path(name: str) -> bool:
    """Whether the model has stochastic depth (``create_model(..., drop_path=R)``): built on the meta device."""
    import torch

    key = resolve_name(name)
    if key in _BUILDERS:
        return False
    try:
        with torch.device("meta"):
            zoo.build(key, 2, drop_path=0.1)
    except UsageError:
        return False
    return True


def supports_small_stem(name: str) -> bool:
    """Whether ``create_model(..., small_stem=True)`` applies: torchvision's ResNets (conv1 + maxpool)."""
    return resolve_name(name) in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def all_names(pattern: str | None = None) -> list[str]:
    """The names ``--arch`` takes: this tool's and torchvision's (each once); with ``pattern`` (``zoo.matches``),
    those that match it, and timm's that do."""
    ours = list_models()
    listed = ours + [n for n in zoo.torchvision_names() if n not in ours]
    if pattern is None:
        return listed
    return [n for n in listed if zoo.matches(n, pattern)] + [n for n in zoo.timm_names() if zoo.matches(n, pattern)]


def has_weights(name: str) -> bool:
    """Whether ``--pretrained`` has published weights to load for ``name``."""
    key = resolve_name(name)
    if key in _BUILDERS and key not in _TORCHVISION:
        return False
    return zoo.has_published_weights(key, torchvision_name(key))


def aliases_of(name: str) -> list[str]:
    return sorted(a for a, n in _ALIASES.items() if n == name)


def describe(name: str) -> str:
    key = resolve_name(name)
    if key in _DESCRIPTIONS:
        return _DESCRIPTIONS[key]
    return "timm" if zoo.is_timm(key) else "torchvision"


def fits_input(name: str, side: int) -> bool:
    """Whether a model built for ``side`` takes ``side``-px inputs: one forward pass on the meta device (shapes
    only). For the models sized when built (ViTs), whose patches must divide the side."""
    import torch

    try:
        with torch.device("meta"), torch.no_grad():
            model = create_model(name, 2, image_size=side).eval()
            model(torch.zeros(1, 3, side, side))
    except (RuntimeError, AssertionError, ValueError):  # timm asserts on sides its patches do not divide
        return False
    # a ViT that runs on a side its patches do not divide drops the last pixels: not a side it takes
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None) or getattr(model, "patch_size", None)
    return all(side % int(p) == 0 for p in ((patch,) if isinstance(patch, int) else patch or ()))


def fitting_side(name: str, side: int) -> int:
    """The smallest side from ``side`` up that the model takes: ``side`` itself, except for a model sized when
    built (a ViT with 16-px patches takes multiples of 16)."""
    key = resolve_name(name)
    if key in _BUILDERS or not zoo.sized_at_build(key):
        return side
    return next((s for s in range(side, side + 65) if fits_input(key, s)), side)


@functools.lru_cache(maxsize=None)
def min_input_size(name: str, small_stem: bool = False) -> int:
    """The smallest square input side (pixels) the model takes, found by forward passes of one CPU image
    (a binary search from 8 to 512 px; AlexNet's strides and pools need 63 px, ResNets 8). A model sized when
    built (a ViT): its smallest fitting side (``fitting_side``)."""
    import torch

    key = resolve_name(name)
    if key not in _BUILDERS and zoo.sized_at_build(key):
        return fitting_side(key, 8)
    model = create_model(name, 2, small_stem=small_stem).eval()

    def fits(side: int) -> bool:
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, side, side))
            return True
        except RuntimeError:
            return False

    lo, hi = 8, 512
    if fits(lo):
        return lo
    if not fits(hi):
        return hi
    while hi - lo > 1:  # fits(hi), not fits(lo)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi
