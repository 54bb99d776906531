"""An exponential moving average of the weights (and BN buffers), updated after every optimizer step."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_decay(half_life_share: float, total_steps: int) -> float:
    """Per-step decay whose half-life is ``half_life_share`` of the whole run, so it adapts to --epochs."""
    half_life = max(1.0, half_life_share * total_steps)
    return 0.5 ** (1.0 / half_life)


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def ema_weights(ema: AveragedModel) -> dict[str, torch.Tensor]:
    """The averaged model's state dict, with the keys of the plain model."""
    return {k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
