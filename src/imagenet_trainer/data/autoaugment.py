"""Learned and random augmentation policies, per image, on whole batches on the training device.

``--auto-augment`` takes three forms, with the meanings of the libraries that defined them:

- ``rand-mM[-nN][-mstdS][-incI][-pP]``: timm's RandAugment string. N ops per image (default 2), each applied
  with probability P (0.5), at magnitude M of 10, drawn per application from a normal of deviation S around
  M; ``inc1`` takes timm's "increasing" op set, where a higher magnitude is always a stronger change.
- ``trivial``: torchvision's TrivialAugmentWide, one op per image at a uniform magnitude of its wide range.
- ``autoaugment-imagenet``: torchvision's AutoAugment ImageNet policy, one of its 25 sub-policies per image.

The policies' tables (AutoAugment's sub-policies, TrivialAugment's magnitude ranges) are torchvision's own,
read from it. What is written here is the application: torchvision's and timm's transforms draw one parameter
set per call and work one image at a time, which would be thousands of small kernel launches per batch. Here
every image's ops and magnitudes are drawn at once on the host, from a generator seeded by (seed, rank, epoch)
so a resumed run repeats them; then each op runs once per layer on all the images that drew it, with
per-image parameters (one affine grid for the geometric ops, broadcast factors for the colour ops, one
batched histogram for Equalize). Pixels are taken back to 0..255 for the ops, rounded after each as uint8
images would be, and normalized again.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F

from imagenet_trainer.errors import UsageError

FORMS = "rand-mM[-nN][-mstdS][-incI][-pP] (timm's RandAugment, e.g. rand-m9-mstd0.5-inc1), trivial, autoaugment-imagenet"
_RAND_KEYS = {"m": float, "n": int, "mstd": float, "inc": int, "p": float, "mmax": float}

# timm's RandAugment op sets (timm.data.auto_augment: _RAND_TRANSFORMS, _RAND_INCREASING_TRANSFORMS)
_TIMM_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
             "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
_TIMM_INCREASING = {"Posterize": "PosterizeIncreasing", "Solarize": "SolarizeIncreasing",
                    "Color": "ColorIncreasing", "Contrast": "ContrastIncreasing",
                    "Brightness": "BrightnessIncreasing", "Sharpness": "SharpnessIncreasing"}
# timm negates these at random (its level functions call _randomly_negate); torchvision's spaces say their own
_TIMM_SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "BrightnessIncreasing",
                "ColorIncreasing", "ContrastIncreasing", "SharpnessIncreasing"}


def check_policy(text: str | None) -> None:
    """A one-line error naming the valid forms, for a policy string that is none of them."""
    if text:
        parse(text)


def parse(text: str) -> dict:
    """The settings of a policy string (``FORMS``)."""
    if text in ("trivial", "autoaugment-imagenet"):
        return {"kind": text}
    parts = text.split("-")
    settings = {"kind": "rand", "m": None, "n": 2, "mstd": 0.0, "inc": 0, "p": 0.5, "mmax": 10.0}
    if parts[0] != "rand":
        raise UsageError(f"--auto-augment {text}: unknown policy; the forms are {FORMS}")
    for part in parts[1:]:
        m = re.fullmatch(r"(mstd|mmax|inc|m|n|p)([0-9.]+)", part)
        if not m:
            raise UsageError(f"--auto-augment {text}: {part!r} is not one of m, n, mstd, inc, p, mmax with a "
                             f"number; the forms are {FORMS}")
        try:
            settings[m.group(1)] = _RAND_KEYS[m.group(1)](m.group(2))
        except ValueError:
            raise UsageError(f"--auto-augment {text}: {part!r} needs a number; the forms are {FORMS}") from None
    if settings["mmax"] > 10 or (settings["m"] or 0) > settings["mmax"]:
        raise UsageError(f"--auto-augment {text}: magnitudes go up to 10 (mmax at most 10, m at most mmax); the "
                         f"forms are {FORMS}")
    if settings["m"] is None:
        raise UsageError(f"--auto-augment {text}: RandAugment needs a magnitude (rand-m9...); the forms are {FORMS}")
    return settings


def reference_transform(text: str, mean):
    """The library's own per-image transform for a policy (PIL in, PIL out), for ``--loader naive``: torchvision's
    TrivialAugmentWide or AutoAugment, timm's ``rand_augment_transform`` (timm needed)."""
    settings = parse(text)
    if settings["kind"] == "trivial":
        from torchvision.transforms import TrivialAugmentWide

        return TrivialAugmentWide()
    if settings["kind"] == "autoaugment-imagenet":
        from torchvision.transforms import AutoAugment as TvAutoAugment, AutoAugmentPolicy

        return TvAutoAugment(AutoAugmentPolicy.IMAGENET)
    try:
        from timm.data.auto_augment import rand_augment_transform
    except ImportError:
        raise UsageError(f"--auto-augment {text} with --loader naive: the reference is timm's RandAugment: pip install "
                         "'imagenet-trainer[timm]'") from None
    return rand_augment_transform(text, {"img_mean": tuple(min(255, round(255 * m)) for m in mean)})


class AutoAugment:
    """A policy (``parse``) applied per image to a normalized (B, 3, H, W) float batch on any device.

    ``mean``/``std``: the batch's normalization (to work on 0..255 pixels). ``fill``: the 0..255 colour that
    geometric ops bring in (timm fills with the data's mean colour, torchvision with black).
    """

    GENERATORS = ("_rng",)  # what ``augment.BatchAugment.state_dict`` saves

    def __init__(self, text: str, mean, std, seed: int = 0):
        self.text = text
        self.settings = parse(text)
        self.seed = seed
        self.mean, self.std = list(mean), list(std)
        kind = self.settings["kind"]
        if kind == "rand":
            inc = bool(self.settings["inc"])
            self.ops = tuple(_TIMM_INCREASING.get(o, o) if inc else o for o in _TIMM_OPS)
            self.fill = [min(255, round(255 * m)) for m in self.mean]
            self.signed = np.array([o in _TIMM_SIGNED for o in self.ops])
        else:
            self.fill = [0, 0, 0]
            if kind == "trivial":
                from torchvision.transforms import TrivialAugmentWide

                self._space = TrivialAugmentWide()._augmentation_space(31)
                self.ops = tuple(self._space)
                self.signed = np.array([self._space[o][1] for o in self.ops])
            else:
                from torchvision.transforms import AutoAugmentPolicy
                from torchvision.transforms import AutoAugment as TvAutoAugment

                self._policies = TvAutoAugment(AutoAugmentPolicy.IMAGENET).policies
                self.ops = tuple(sorted({op for pair in self._policies for op, _, _ in pair}))
                space = TvAutoAugment()._augmentation_space(10, (224, 224))
                self.signed = np.array([space[o][1] for o in self.ops])
        # timm resamples its geometric ops bilinear or bicubic (at random); torchvision's policies nearest
        self.resample = "bilinear" if kind == "rand" else "nearest"
        self._consts = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self._rng = np.random.default_rng([self.seed, epoch, 104729])

    # --- drawing: (n, layers) op indices (-1: none) and magnitudes in each op's own unit ---

    def draw(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        kind = self.settings["kind"]
        g = self._rng
        if kind == "rand":
            s = self.settings
            layers = s["n"]
            ops = g.integers(0, len(self.ops), size=(n, layers))
            ops = np.where(g.random((n, layers)) < s["p"], ops, -1)
            level = np.full((n, layers), s["m"])
            if s["mstd"] > 0:
                level = level + g.normal(0, s["mstd"], size=(n, layers))
            level = np.clip(level, 0, s["mmax"])
            mags = np.zeros((n, layers))
            for i, name in enumerate(self.ops):
                hit = ops == i
                if hit.any():
                    mags[hit] = _timm_level(name, level[hit] / 10.0, h, w)
        elif kind == "trivial":
            layers = 1
            ops = g.integers(0, len(self.ops), size=(n, 1))
            bins = g.integers(0, 31, size=(n, 1))
            mags = np.zeros((n, 1))
            for i, name in enumerate(self.ops):
                table = self._space[name][0]
                if table.ndim > 0 and (ops == i).any():
                    mags[ops == i] = table.numpy()[bins[ops == i]]
        else:
            layers = 2
            picks = g.integers(0, len(self._policies), size=n)
            ops = np.full((n, 2), -1)
            mags = np.zeros((n, 2))
            applied = g.random((n, 2))
            from torchvision.transforms import AutoAugment as TvAutoAugment

            space = TvAutoAugment()._augmentation_space(10, (w, h))  # torchvision's (width, height)
            for k, pair in enumerate(self._policies):
                rows = picks == k
                for j, (name, prob, mag_id) in enumerate(pair):
                    on = rows & (applied[:, j] <= prob)
                    ops[on, j] = self.ops.index(name)
                    if mag_id is not None:
                        mags[on, j] = float(space[name][0][mag_id])
        flip = g.random((n, layers)) < 0.5
        negate = (ops >= 0) & self.signed[np.maximum(ops, 0)] & flip
        return ops, np.where(negate, -mags, mags)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Never waits for the device: every image's op rows and magnitudes reach it in two copies from pinned
        memory, and the ops run on slices of them (a blocking copy per op would stall the host on each)."""
        n, _, h, w = images.shape
        if n == 0:
            return images
        ops, mags = self.draw(n, h, w)
        groups, rows, values = [], [], []  # (op, start, count): one layer's run of an op on the images that drew it
        start = 0
        for layer in range(ops.shape[1]):
            for i in np.unique(ops[:, layer]):
                if i >= 0:
                    hit = np.flatnonzero(ops[:, layer] == i)
                    groups.append((int(i), start, len(hit)))
                    rows.append(hit)
                    values.append(mags[hit, layer])
                    start += len(hit)
        mean, std, fill = self._constants(images.device)
        x = ((images.float() * std + mean) * 255).round_().clamp_(0, 255)
        if groups:
            idx_all = _to_device(np.concatenate(rows), images.device)
            mag_all = _to_device(np.concatenate(values).astype(np.float32), images.device)
            for i, start, count in groups:  # in layer order; one layer's groups hold disjoint images
                idx, mag = idx_all[start:start + count], mag_all[start:start + count]
                y = _apply(self.ops[i], x.index_select(0, idx), mag, fill, self.resample)
                # to uint8 as torchvision's and PIL's ops do: truncated (the epsilon absorbs float error)
                x.index_copy_(0, idx, y.add_(1e-3).floor_().clamp_(0, 255))
        out = (x / 255 - mean) / std
        return images.copy_(out)

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mean, std and fill as (1, 3, 1, 1) float tensors on ``device``, made once per device."""
        if self._consts is None or self._consts[0] != device:
            made = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1).to(device)
                    for v in (self.mean, self.std, self.fill))
            self._consts = (device, *made)
        return self._consts[1:]


def _to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(a)
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


def _timm_level(name: str, level: np.ndarray, h: int, w: int) -> np.ndarray:
    """timm's level-to-argument functions (``timm.data.auto_augment``), for ``level`` = magnitude / 10."""
    if name == "Rotate":
        return level * 30.0
    if name in ("ShearX", "ShearY"):
        return level * 0.3
    if name == "TranslateXRel":
        return level * 0.45 * w
    if name == "TranslateYRel":
        return level * 0.45 * h
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):  # an enhance factor of 0.1 to 1.9
        return level * 1.8 + 0.1 - 1.0  # as 1 + magnitude, like torchvision's
    if name.endswith("Increasing") and not name.startswith(("Posterize", "Solarize")):
        return np.maximum(0.1, 1.0 + level * 0.9) - 1.0  # signed later: 1 +- 0.9 level
    if name == "Posterize":
        return np.floor(level * 4).astype(np.int64) + 0.0  # timm: int(level * 4) bits kept ... of 4
    if name == "PosterizeIncreasing":
        return 4 - np.floor(level * 4)
    if name == "Solarize":
        return np.minimum(256, np.floor(level * 256))
    if name == "SolarizeIncreasing":
        return 256 - np.floor(level * 256)
    if name == "SolarizeAdd":
        return np.floor(level * 110)
    return np.zeros_like(level)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _blend(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (degenerate + factor.view(-1, 1, 1, 1) * (x - degenerate)).clamp_(0, 255)


def _affine(x: torch.Tensor, matrix: torch.Tensor, fill: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """Resampling (``mode``: nearest or bilinear) of each image through its (n, 2, 3) pixel-space matrix, which
    maps output pixel centres to input coordinates; outside the image, ``fill``."""
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    coords = torch.stack([xs + 0.5, ys + 0.5, torch.ones_like(xs)], -1).view(1, h * w, 3)
    src = coords @ matrix.transpose(1, 2)  # (n, h*w, 2): input coordinates
    grid = torch.stack([src[..., 0] / w * 2 - 1, src[..., 1] / h * 2 - 1], -1).view(n, h, w, 2)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode=mode, padding_mode="zeros", align_corners=False)
    if mode == "nearest":
        return torch.where(inside > 0.5, out, fill.expand_as(out))
    return out + (1 - inside) * fill  # the fill blends in at the edges, as PIL's bilinear fill does


def _apply(name: str, x: torch.Tensor, mag: torch.Tensor, fill: torch.Tensor,
           resample: str = "nearest") -> torch.Tensor:
    """Op ``name`` on the 0..255 float images ``x`` (n, 3, H, W), with magnitude ``mag`` (n,) in the op's unit."""
    n, _, h, w = x.shape
    zero, one = torch.zeros_like(mag), torch.ones_like(mag)
    if name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "TranslateXRel", "TranslateYRel", "Rotate"):
        if name == "ShearX":  # about the top-left corner, as torchvision's and PIL's: x_in = x + s * y
            m = torch.stack([one, mag, zero, zero, one, zero], 1)
        elif name == "ShearY":
            m = torch.stack([one, zero, zero, mag, one, zero], 1)
        elif name in ("TranslateX", "TranslateXRel"):  # the content moves by +mag: x_in = x - mag
            m = torch.stack([one, zero, -mag.trunc(), zero, one, zero], 1)
        elif name in ("TranslateY", "TranslateYRel"):
            m = torch.stack([one, zero, zero, zero, one, -mag.trunc()], 1)
        else:  # counter-clockwise by mag degrees about the centre
            a = mag * (math.pi / 180)
            cos, sin = torch.cos(a), torch.sin(a)
            cx, cy = w / 2, h / 2
            m = torch.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy], 1)
        return _affine(x, m.view(n, 2, 3), fill, resample)
    if name in ("Brightness", "BrightnessIncreasing"):
        return (x * (1 + mag).view(-1, 1, 1, 1)).clamp_(0, 255)
    if name in ("Color", "ColorIncreasing"):
        return _blend(x, _gray(x).add(1e-3).floor().expand_as(x), 1 + mag)
    if name in ("Contrast", "ContrastIncreasing"):
        mean = _gray(x).add(1e-3).floor().mean((1, 2, 3), keepdim=True)
        return _blend(x, mean.expand_as(x), 1 + mag)
    if name in ("Sharpness", "SharpnessIncreasing"):
        # made on the device (setting one element from a Python number is a copy that waits for the GPU)
        kernel = F.pad(torch.full((1, 1), 5.0, dtype=x.dtype, device=x.device), (1, 1, 1, 1), value=1.0) / 13
        blurred = F.conv2d(x.reshape(-1, 1, h, w), kernel.view(1, 1, 3, 3)).round_().view(n, 3, h - 2, w - 2)
        degenerate = x.clone()
        degenerate[:, :, 1:-1, 1:-1] = blurred  # the border keeps its pixels, as PIL and torchvision
        return _blend(x, degenerate, 1 + mag)
    if name in ("Posterize", "PosterizeIncreasing"):
        step = torch.pow(2.0, 8 - mag.clamp(0, 8)).view(-1, 1, 1, 1)
        return torch.floor(x / step) * step
    if name in ("Solarize", "SolarizeIncreasing"):
        return torch.where(x >= mag.view(-1, 1, 1, 1), 255 - x, x)
    if name == "SolarizeAdd":
        return torch.where(x < 128, (x + mag.view(-1, 1, 1, 1)).clamp(max=255), x)
    if name == "AutoContrast":
        lo = x.amin((2, 3), keepdim=True)
        hi = x.amax((2, 3), keepdim=True)
        scale = torch.where(hi > lo, 255 / (hi - lo).clamp(min=1), torch.ones_like(hi))
        lo = torch.where(hi > lo, lo, torch.zeros_like(lo))
        return ((x - lo) * scale).clamp_(0, 255)
    if name == "Equalize":
        return _equalize(x)
    if name == "Invert":
        return 255 - x
    return x  # Identity


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalization per image and channel, torchvision's (and PIL's) rule, all images at once."""
    n, c, h, w = x.shape
    v = x.reshape(n * c, h * w).long()
    hist = torch.zeros(n * c, 256, device=x.device).scatter_add_(1, v, torch.ones_like(v, dtype=torch.float))
    last = hist.gather(1, (v.amax(1, keepdim=True)))  # the count of the highest value present
    step = torch.div(hist.sum(1, keepdim=True) - last, 255, rounding_mode="floor")
    lut = torch.div(hist.cumsum(1) + torch.div(step, 2, rounding_mode="floor"), step.clamp(min=1),
                    rounding_mode="floor")
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut[:, :-1]], 1).clamp_(0, 255)
    out = lut.gather(1, v).view(n, c, h, w)
    return torch.where((step == 0).view(n, c, 1, 1), x, out)
