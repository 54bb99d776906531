"""Augmentations of whole batches on the training device, after normalization: cutout, random erasing,
MixUp and CutMix. Each draws from generators seeded by (seed, rank, epoch), so a resumed run repeats them.

``Cutout`` (DeVries & Taylor, 2017; torchvision's ``RandomErasing`` with a fixed square): each image
loses one square of side ``fraction`` x its side, centred anywhere in the image (so it may be clipped
at the border), filled with 0, which after normalization is the dataset's mean colour. One mask and
one fill per batch, whatever the loader: it runs on the batch the training step is about to take.
"""

from __future__ import annotations

import numpy as np
import torch


class Cutout:
    """Erase one random square per image of a normalized (B, C, H, W) batch, in place.

    The squares come from a generator on the batch's device seeded with ``seed`` and the epoch
    (``set_epoch``), so a run draws the same squares each time it is repeated.
    """

    GENERATORS = ("_generator",)  # what ``BatchAugment.state_dict`` saves

    def __init__(self, fraction: float, seed: int = 0):
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"cutout fraction {fraction} is not in (0, 1]")
        self.fraction = fraction
        self.seed = seed
        self.epoch = 0
        self._generator: torch.Generator | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._generator = None

    def _gen(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        return self._generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        if n == 0:
            return images
        side_h, side_w = max(1, round(self.fraction * h)), max(1, round(self.fraction * w))
        centres = torch.rand(n, 2, generator=self._gen(images.device), device=images.device)
        top = (centres[:, 0] * h).long() - side_h // 2  # (n,): may start above the image
        left = (centres[:, 1] * w).long() - side_w // 2
        rows = torch.arange(h, device=images.device).view(1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, w)
        top, left = top.view(n, 1, 1), left.view(n, 1, 1)
        mask = (rows >= top) & (rows < top + side_h) & (cols >= left) & (cols < left + side_w)  # (n, h, w)
        return images.masked_fill_(mask.unsqueeze(1), 0.0)


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, 7919])


class RandomErasing:
    """Random erasing (Zhong et al. 2017) with timm's meanings, per image, on a normalized batch, in place.

    Each image is erased with probability ``prob``, in 1 to ``count`` rectangles (a number drawn per image), each
    of 2-33% of the image's area divided by that number and of aspect ratio 0.3-3.3 (log-uniform), placed
    wholly inside the image; a draw that does not fit is tried again, up to 10 times, as in timm. ``mode``
    ``pixel`` fills with per-pixel normal noise (the normalized data's scale), ``const`` with 0 (the mean
    colour).

    timm's ``RandomErasing`` loops over the images in Python and draws from Python's global generator; this
    draws every image's rectangles at once from a generator seeded by (seed, epoch), so a resumed run erases
    the same rectangles, and masks the batch in one pass.
    """

    ATTEMPTS = 10

    GENERATORS = ("_rng", "_noise")

    def __init__(self, prob: float, mode: str = "pixel", count: int = 1, seed: int = 0):
        if mode not in ("pixel", "const"):
            raise ValueError(f"erasing mode {mode!r} is not pixel or const")
        self.prob, self.mode, self.count, self.seed = prob, mode, count, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self._rng = _epoch_rng(self.seed, epoch)
        self._noise: torch.Generator | None = None
        self._epoch = epoch

    def boxes(self, n: int, h: int, w: int) -> np.ndarray:
        """(n, count, 4) int boxes ``top, left, height, width`` per image and slot; height 0 where none."""
        g = self._rng
        on = g.random(n) < self.prob
        counts = g.integers(1, self.count + 1, size=n)
        shape = (n, self.count, self.ATTEMPTS)
        area = h * w * g.uniform(0.02, 1 / 3, size=shape) / counts[:, None, None]
        ratio = np.exp(g.uniform(np.log(0.3), np.log(1 / 0.3), size=shape))
        bh = np.round(np.sqrt(area * ratio)).astype(np.int64)
        bw = np.round(np.sqrt(area / ratio)).astype(np.int64)
        fits = (bh < h) & (bw < w)
        first = fits.argmax(axis=2)  # the first attempt that fits
        take = lambda a: np.take_along_axis(a, first[..., None], axis=2)[..., 0]  # noqa: E731
        bh, bw, ok = take(bh), take(bw), take(fits)
        top = (g.random((n, self.count)) * (h - bh + 1)).astype(np.int64)
        left = (g.random((n, self.count)) * (w - bw + 1)).astype(np.int64)
        active = ok & on[:, None] & (np.arange(self.count)[None, :] < counts[:, None])
        return np.stack([top, left, np.where(active, bh, 0), np.where(active, bw, 0)], axis=-1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        if n == 0:
            return images
        b = torch.from_numpy(self.boxes(n, h, w)).to(images.device, non_blocking=True)
        top, left, bh, bw = (b[..., i].view(n, -1, 1, 1) for i in range(4))
        rows = torch.arange(h, device=images.device).view(1, 1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, 1, w)
        mask = ((rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)).any(1, keepdim=True)
        if self.mode == "const":
            return images.masked_fill_(mask, 0.0)
        if self._noise is None or self._noise.device != images.device:
            self._noise = torch.Generator(device=images.device)
            self._noise.manual_seed(self.seed * 1_000_003 + self._epoch)
        noise = torch.randn(images.shape, generator=self._noise, device=images.device, dtype=images.dtype)
        return images.copy_(torch.where(mask, noise, images))


class MixUpCutMix:
    """MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019) per batch, with timm's ``Mixup`` meanings: with
    probability ``prob`` a batch is mixed with itself reversed; CutMix is chosen with probability ``switch_prob``
    when both alphas are set; the mixing weight comes from Beta(alpha, alpha), and CutMix's is corrected to the
    pasted box's true area (timm's ``correct_lam``). The targets become soft: ``lam`` of each image's label and
    ``1 - lam`` of its partner's; the loss smooths them (``CrossEntropyLoss(label_smoothing)``, as timm's
    smoothed one-hots mix).

    timm's class draws from NumPy's global generator, which a resumed process does not restore; this draws from
    a generator seeded by (seed, epoch), one draw per batch on the host (no GPU sync).
    """

    GENERATORS = ("_rng",)

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, num_classes: int, prob: float = 1.0,
                 switch_prob: float = 0.5, seed: int = 0):
        self.mixup_alpha, self.cutmix_alpha, self.num_classes = mixup_alpha, cutmix_alpha, num_classes
        self.prob, self.switch_prob, self.seed = prob, switch_prob, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self._rng = _epoch_rng(self.seed, epoch + 1_000_000)

    def draw(self, h: int, w: int) -> tuple[float, tuple[int, int, int, int] | None]:
        """(lam, CutMix box ``(y0, y1, x0, x1)`` or None) for the next batch."""
        g = self._rng
        if g.random() >= self.prob or (self.mixup_alpha <= 0 and self.cutmix_alpha <= 0):
            return 1.0, None
        cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or g.random() < self.switch_prob)
        lam = float(g.beta(self.cutmix_alpha, self.cutmix_alpha) if cutmix else g.beta(self.mixup_alpha,
                                                                                        self.mixup_alpha))
        if not cutmix:
            return lam, None
        cut = np.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(g.integers(0, h)), int(g.integers(0, w))
        y0, y1 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
        x0, x1 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
        return 1.0 - (y1 - y0) * (x1 - x0) / (h * w), (int(y0), int(y1), int(x0), int(x1))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixed images, soft targets (n, classes), the dominant labels for top-1/top-5)."""
        n, _, h, w = images.shape
        lam, box = self.draw(h, w)
        partner = labels.flip(0)
        one_hot = torch.nn.functional.one_hot(labels, self.num_classes).to(images.dtype)
        targets = one_hot * lam + torch.nn.functional.one_hot(partner, self.num_classes).to(images.dtype) * (1 - lam)
        if lam < 1.0 and n > 1:
            if box is None:
                images = images.mul(lam).add_(images.flip(0), alpha=1 - lam)
            else:
                y0, y1, x0, x1 = box
                images[:, :, y0:y1, x0:x1] = images.flip(0)[:, :, y0:y1, x0:x1]
        return images, targets.float(), labels if lam >= 0.5 else partner


class BatchAugment:
    """The batch augmentations of a run, in order: a policy (``data.autoaugment.AutoAugment``), cutout, random
    erasing, MixUp/CutMix (timm's order: the policy on pixels, erasing after normalization, mixing last);
    ``set_epoch`` reseeds all."""

    def __init__(self, cutout: Cutout | None = None, erasing: RandomErasing | None = None,
                 mix: MixUpCutMix | None = None, policy=None):
        self.cutout, self.erasing, self.mix, self.policy = cutout, erasing, mix, policy

    def _parts(self) -> tuple:
        return self.policy, self.cutout, self.erasing, self.mix

    def __bool__(self) -> bool:
        return any(a is not None for a in self._parts())

    def set_epoch(self, epoch: int) -> None:
        for a in self._parts():
            if a is not None:
                a.set_epoch(epoch)

    def _generators(self):
        """(key, part, attribute, generator) of each random generator the parts hold now (numpy's and torch's)."""
        for k, part in enumerate(self._parts()):
            for name in getattr(part, "GENERATORS", ()):
                yield f"{k}.{name}", part, name, getattr(part, name, None)

    def state_dict(self) -> dict:
        """Where the generators are part-way through an epoch (saved with a checkpoint written mid-epoch)."""
        state = {}
        for key, _, _, g in self._generators():
            if isinstance(g, np.random.Generator):
                state[key] = {"numpy": g.bit_generator.state}
            elif isinstance(g, torch.Generator):
                state[key] = {"torch": g.get_state(), "device": str(g.device)}
        return state

    def load_state_dict(self, state: dict) -> None:
        """After ``set_epoch``: continue the epoch where ``state_dict`` was taken. A torch generator saved on
        another kind of device than this run's starts again from its seed when first used."""
        for key, part, name, g in self._generators():
            st = state.get(key)
            if st is None:
                continue
            if "numpy" in st:
                g.bit_generator.state = st["numpy"]
            else:
                try:
                    g = torch.Generator(device=st["device"])
                    g.set_state(st["torch"])
                except RuntimeError:  # no such device here: the generator is made again when first used
                    continue
                setattr(part, name, g)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor):
        """(images, loss targets, labels for top-1/top-5): the targets are ``labels`` unless the batch is mixed."""
        if self.policy is not None:
            images = self.policy(images)
        if self.cutout is not None:
            images = self.cutout(images)
        if self.erasing is not None:
            images = self.erasing(images)
        if self.mix is not None:
            return self.mix(images, labels)
        return images, labels, labels
