"""The model registry: ``@register_model`` fills it, ``create_model`` and ``list_models`` read it."""

from __future__ import annotations

import functools
from typing import Callable

import torch.nn as nn

from imagenet_trainer.errors import UsageError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str = "", aliases: tuple[str, ...] = ()):
    """Register ``fn(num_classes) -> nn.Module`` under ``name`` (and aliases); duplicates are refused."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for n in (name, *aliases):
            if n in _BUILDERS or n in _ALIASES:
                raise ValueError(f"model name {n!r} is registered twice")
        _BUILDERS[name] = fn
        _DESCRIPTIONS[name] = description
        for a in aliases:
            _ALIASES[a] = name
        return fn

    return wrap


def resolve_name(name: str) -> str:
    """The canonical name for ``name`` or an alias; a clear error for unknown names."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _BUILDERS:
        raise UsageError(f"--arch {name}: unknown model; `imagenet-trainer models` lists them "
                         f"({', '.join(sorted(_BUILDERS))})")
    return key


def create_model(name: str, num_classes: int = 1000, small_stem: bool = False) -> nn.Module:
    """Build a freshly initialized model by name (or alias) for ``num_classes`` classes.

    ``small_stem`` (ResNets): a 3x3 stride-1 first conv and no max-pool, so that 32-64 px images keep
    their resolution instead of shrinking 4x before the first block.
    """
    if num_classes < 1:
        raise UsageError(f"number of classes must be at least 1, got {num_classes}")
    model = _BUILDERS[resolve_name(name)](num_classes=num_classes)
    if small_stem:
        if not supports_small_stem(name):
            raise UsageError(f"--small-stem: only the ResNets have one; {name} keeps its stem")
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    return model


def supports_small_stem(name: str) -> bool:
    """Whether ``create_model(..., small_stem=True)`` applies: torchvision's ResNets (conv1 + maxpool)."""
    return resolve_name(name) in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def aliases_of(name: str) -> list[str]:
    return sorted(a for a, n in _ALIASES.items() if n == name)


def describe(name: str) -> str:
    return _DESCRIPTIONS[resolve_name(name)]


@functools.lru_cache(maxsize=None)
def min_input_size(name: str, small_stem: bool = False) -> int:
    """The smallest square input side (pixels) the model takes, found by forward passes of one CPU image
    (a binary search from 8 to 512 px; AlexNet's strides and pools need 63 px, ResNets 8)."""
    import torch

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
