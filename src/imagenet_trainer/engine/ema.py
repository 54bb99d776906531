"""An exponential moving average of the weights (and BN buffers), updated after every optimizer step."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def ema_decay(half_life_share: float, total_steps: int) -> float:
    """Per-step decay whose half-life is ``half_life_share`` of the whole run, so it adapts to --epochs."""
    half_life = max(1.0, half_life_share * total_steps)
    return 0.5 ** (1.0 / half_life)


class EMA:
    """A copy of a model whose floating-point parameters and buffers follow the model's as an EMA.

    Integer buffers (BN's step counters) are copied. One update is two multi-tensor kernels
    (``_foreach_lerp_`` and ``_foreach_copy_``) and no host-device sync; torch's ``AveragedModel``
    costs a kernel per integer buffer and a Python loop over every tensor each step, 17% of a
    ResNet-9 CIFAR step on an H200.

    ``state_dict`` has ``AveragedModel``'s layout (``module.*`` and ``n_averaged``), so checkpoints of
    either load into the other.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.n_averaged = 0
        # (source model, EMA floats, source floats, EMA integers, source integers), made on the first update
        self._pairs: tuple | None = None

    def _tensors(self, model: nn.Module):
        if self._pairs is None or self._pairs[0] is not model:
            mine = [*self.module.parameters(), *self.module.buffers()]
            theirs = [t.detach() for t in (*model.parameters(), *model.buffers())]
            if [t.shape for t in mine] != [t.shape for t in theirs]:
                raise ValueError("the EMA follows a model of another shape")
            floats = [(a, b) for a, b in zip(mine, theirs) if a.is_floating_point()]
            others = [(a, b) for a, b in zip(mine, theirs) if not a.is_floating_point()]
            self._pairs = (model, [a for a, _ in floats], [b for _, b in floats],
                           [a for a, _ in others], [b for _, b in others])
        return self._pairs[1:]

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        ema_f, src_f, ema_o, src_o = self._tensors(model)
        if self.n_averaged == 0:
            torch._foreach_copy_(ema_f, src_f)
        elif ema_f:
            torch._foreach_lerp_(ema_f, src_f, 1.0 - self.decay)
        if ema_o:
            torch._foreach_copy_(ema_o, src_o)
        self.n_averaged += 1

    def state_dict(self) -> dict:
        state = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        state["n_averaged"] = torch.tensor(self.n_averaged, dtype=torch.long)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict({k[len("module."):]: v for k, v in state.items() if k.startswith("module.")})
        self.n_averaged = int(state.get("n_averaged", 1))


def make_ema(model: nn.Module, decay: float) -> EMA:
    return EMA(model, decay)


def ema_weights(ema: EMA) -> dict[str, torch.Tensor]:
    """The averaged model's state dict, with the keys of the plain model."""
    return {k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
