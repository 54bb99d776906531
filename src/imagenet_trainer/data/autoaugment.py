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
so a resumed run repeats them. Then each layer runs each op family (``FAMILIES``) once, on every image that
drew one of its ops, with per-image parameters: one affine grid for the geometric ops, one pass for the
pointwise ones, one blend for Brightness, Color and Contrast, one batched histogram for Equalize: about 180
computing tensor operations for a batch of 256 under rand-m9-mstd0.5-inc1, where a computation per op ran
about 650. Pixels are taken back to 0..255 for the ops, truncated after each as uint8 images would be, and
normalized again.
"""

from __future__ import annotations

import re
from typing import NamedTuple

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
        # each op's family (FAMILIES' index; -1 for Identity), and a last -1 for the draw's -1: no op
        self._families = np.array([FAMILIES.index(_FAMILY[o]) if _FAMILY[o] else -1 for o in self.ops] + [-1])
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
        """Each layer runs each op family once, on every image that drew one of its ops; the parameters of every
        group reach the device in two copies from pinned memory. Never waits for the device: a blocking copy per
        op would stall the host on each; and a computation per op was some 650 tensor operations a batch."""
        n, _, h, w = images.shape
        if n == 0:
            return images
        ops, mags = self.draw(n, h, w)
        groups, rows, params = [], [], []  # (family, row start, count, param start): one layer's run of a family
        start = pstart = 0
        for layer in range(ops.shape[1]):
            family = self._families[ops[:, layer]]  # -1 (no op) takes the last entry: none
            for f in np.unique(family):
                if f < 0:
                    continue
                hit = np.flatnonzero(family == f)
                p = np.empty((len(hit), _WIDTH[FAMILIES[f]]))
                for i in np.unique(ops[hit, layer]):
                    at = ops[hit, layer] == i
                    p[at] = _op_params(self.ops[i], mags[hit[at], layer], h, w)
                groups.append((FAMILIES[f], start, len(hit), pstart))
                rows.append(hit)
                params.append(p.ravel())
                start, pstart = start + len(hit), pstart + p.size
        consts = self._constants(images.device)
        x = torch.addcmul(consts.pixel_shift, images.float(), consts.pixel_scale).round_().clamp_(0, 255)
        if groups:
            idx_all = _to_device(np.concatenate(rows), images.device)
            par_all = _to_device(np.concatenate(params).astype(np.float32), images.device)
            for family, start, count, pstart in groups:  # in layer order; one layer's groups hold disjoint images
                idx = idx_all[start:start + count]
                p = par_all[pstart:pstart + count * _WIDTH[family]].view(count, _WIDTH[family])
                x.index_copy_(0, idx, _run(family, x.index_select(0, idx), p, consts, self.resample))
        return images.copy_(torch.addcmul(consts.normal_shift, x, consts.normal_scale))

    def _constants(self, device: torch.device) -> "_Constants":
        """The normalization and the ops' constants on ``device``, made once per device."""
        if self._consts is None or self._consts.fill.device != device:
            self._consts = _Constants.make(self.mean, self.std, self.fill, device)
        return self._consts


class _Constants(NamedTuple):
    """(1, 3, 1, 1) columns: normalized to 0..255 pixels and back (scale and shift), the fill and grayscale
    weights; and the (3, 1, 3, 3) smoothing kernel of Sharpness."""

    pixel_scale: torch.Tensor
    pixel_shift: torch.Tensor
    normal_scale: torch.Tensor
    normal_shift: torch.Tensor
    fill: torch.Tensor
    gray: torch.Tensor
    smooth: torch.Tensor

    @staticmethod
    def make(mean, std, fill, device) -> "_Constants":
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        columns = [std * 255, mean * 255, 1 / (255 * std), -mean / std, fill, [0.2989, 0.587, 0.114]]
        smooth = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]]).div_(13).expand(3, 1, 3, 3).contiguous()
        return _Constants(*(torch.tensor(np.asarray(v, dtype=np.float32)).view(1, 3, 1, 1).to(device)
                            for v in columns), smooth.to(device))


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


# --- the ops, in families: a family's ops share one computation, and each op is that computation with its own
# per-image parameters (the others' set to values that change nothing), so one pass serves all of them ---

FAMILIES = ("geometric", "pointwise", "blend", "sharpness", "autocontrast", "equalize")
_WIDTH = {"geometric": 6, "pointwise": 3, "blend": 3, "sharpness": 1, "autocontrast": 0, "equalize": 0}
_GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "TranslateXRel", "TranslateYRel", "Rotate")
_POINTWISE = ("Invert", "Solarize", "SolarizeIncreasing", "SolarizeAdd", "Posterize", "PosterizeIncreasing")
_BLEND = ("Brightness", "BrightnessIncreasing", "Color", "ColorIncreasing", "Contrast", "ContrastIncreasing")
_FAMILY = {**{o: "geometric" for o in _GEOMETRIC}, **{o: "pointwise" for o in _POINTWISE},
           **{o: "blend" for o in _BLEND}, "Sharpness": "sharpness", "SharpnessIncreasing": "sharpness",
           "AutoContrast": "autocontrast", "Equalize": "equalize", "Identity": None}
_INTEGRAL = ("pointwise", "equalize")  # families whose results are whole levels already


def _op_params(name: str, mag: np.ndarray, h: int, w: int) -> np.ndarray:
    """The (k, width) parameters of op ``name``'s family that make it that op, at magnitudes ``mag`` (k,).

    geometric: the 2x3 matrix, in ``affine_grid``'s normalized coordinates, that maps each output pixel to the
    input point it samples. pointwise: the level from which pixels invert (256: none), the level added to those
    below 128, the posterize step. blend: the weights of the grayscale image and of its mean in the image the
    op blends with (both 0 for black), and the blend factor. sharpness: the blend factor."""
    k = len(mag)
    family = _FAMILY[name]
    if family == "geometric":
        m = np.tile(np.eye(3), (k, 1, 1))  # pixel space (centres at +0.5): output point -> input point
        if name == "ShearX":  # about the top-left corner, as torchvision's and PIL's: x_in = x + s * y
            m[:, 0, 1] = mag
        elif name == "ShearY":
            m[:, 1, 0] = mag
        elif name in ("TranslateX", "TranslateXRel"):  # the content moves by +mag: x_in = x - mag
            m[:, 0, 2] = -np.trunc(mag)
        elif name in ("TranslateY", "TranslateYRel"):
            m[:, 1, 2] = -np.trunc(mag)
        else:  # Rotate: counter-clockwise by mag degrees about the centre
            a = np.radians(mag)
            cos, sin, cx, cy = np.cos(a), np.sin(a), w / 2, h / 2
            m[:, 0] = np.stack([cos, -sin, cx - cos * cx + sin * cy], 1)
            m[:, 1] = np.stack([sin, cos, cy - sin * cx - cos * cy], 1)
        to_pixels = np.array([[w / 2, 0, w / 2], [0, h / 2, h / 2], [0, 0, 1]])
        to_unit = np.array([[2 / w, 0, -1], [0, 2 / h, -1], [0, 0, 1]])
        return (to_unit @ m @ to_pixels)[:, :2].reshape(k, 6)
    if family == "pointwise":
        p = np.tile([256.0, 0.0, 1.0], (k, 1))
        if name == "Invert":
            p[:, 0] = 0
        elif name.startswith("SolarizeAdd"):
            p[:, 1] = mag
        elif name.startswith("Solarize"):
            p[:, 0] = mag
        else:  # Posterize: keep mag bits
            p[:, 2] = 2.0 ** (8 - np.clip(mag, 0, 8))
        return p
    if family == "blend":
        weights = [1.0, 0.0] if name.startswith("Color") else [0.0, 1.0] if name.startswith("Contrast") else [0.0, 0.0]
        return np.concatenate([np.tile(weights, (k, 1)), 1 + mag[:, None]], 1)
    if family == "sharpness":
        return 1 + mag[:, None]
    return np.zeros((k, 0))


def _run(family: str, x: torch.Tensor, p: torch.Tensor, c: _Constants, resample: str) -> torch.Tensor:
    """Family ``family`` on the 0..255 float images ``x`` (k, 3, H, W), with their parameters ``p`` (k, width),
    taken back to whole levels as uint8 images would be (truncated; the epsilon absorbs float error)."""
    per_image = lambda j: p[:, j].view(-1, 1, 1, 1)  # noqa: E731
    epsilon = 1e-3
    if family == "geometric":  # outside the image, the fill (blended in at the edges under bilinear, as PIL)
        grid = F.affine_grid(p.view(-1, 2, 3), list(x.shape), align_corners=False)
        y = F.grid_sample(x - c.fill, grid, mode=resample, padding_mode="zeros", align_corners=False).add_(c.fill)
        # affine_grid's normalized points lie up to ~2e-5 px off the pixel centres: across an edge of 255 levels,
        # 0.005 of a level, which truncation would take a whole level down where PIL samples exactly
        epsilon = 1e-2
    elif family == "pointwise":
        y = torch.where(x >= per_image(0), 255 - x, x)
        y = y.add_(per_image(1) * (y < 128))
        y = y.div_(per_image(2)).floor_().mul_(per_image(2))
    elif family == "blend":
        gray = (x * c.gray).sum(1, keepdim=True).add_(1e-3).floor_()
        degenerate = torch.addcmul(gray.mean((2, 3), keepdim=True) * per_image(1), gray, per_image(0))
        y = torch.lerp(degenerate.expand_as(x), x, per_image(2)).clamp_(0, 255)
    elif family == "sharpness":
        if min(x.shape[2:]) < 3:  # no inside pixels to smooth: unchanged, as torchvision's
            return x
        degenerate = x.clone()  # the border keeps its pixels, as PIL and torchvision
        degenerate[:, :, 1:-1, 1:-1] = F.conv2d(x, c.smooth, groups=3).round_()
        y = torch.lerp(degenerate, x, per_image(0)).clamp_(0, 255)
    elif family == "autocontrast":
        lo = x.amin((2, 3), keepdim=True)
        span = x.amax((2, 3), keepdim=True) - lo
        flat = span == 0  # a flat channel stays as it is
        y = (x - lo * ~flat).mul_(torch.where(flat, 1.0, 255 / span.clamp(min=1))).clamp_(0, 255)
    else:
        return _equalize(x)
    return y if family in _INTEGRAL else y.add_(epsilon).floor_().clamp_(0, 255)


def _apply(name: str, x: torch.Tensor, mag: torch.Tensor, fill: torch.Tensor,
           resample: str = "nearest") -> torch.Tensor:
    """Op ``name`` alone on the 0..255 float images ``x`` (n, 3, H, W), with magnitude ``mag`` (n,) in the op's
    unit, as a batch runs it: its family's computation with the op's parameters, taken back to whole levels."""
    if _FAMILY[name] is None:
        return x
    p = torch.from_numpy(_op_params(name, mag.double().cpu().numpy(), *x.shape[2:])).float().to(x.device)
    consts = _Constants.make([0, 0, 0], [1, 1, 1], fill.flatten().tolist(), x.device)
    return _run(_FAMILY[name], x, p, consts, resample)


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
