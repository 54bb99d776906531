"""Which test-time combination of a CIFAR run's saved model gives the best top-1? Issue #8, session 15.

    python benchmarks/ensemble_probe.py DATA run1/model_best.pt [run2/model_best.pt ...]

For each model file, the weights (W) and their EMA (E) are evaluated on DATA's val folder, each view once,
and the views' class probabilities are then combined in several ways:

- ``flip+shift1``: what ``train --tta-shift 1`` reports (``engine.trainer.tta_probs``: the image and its
  mirror, 1/2, and the two diagonal 1 px shifts with their mirrors, 1/4 each; edge pixels repeated);
- ``flip``: the image and its mirror only;
- ``flip+shift1x4``: the four diagonal 1 px shifts (1/8 each) beside the unmoved image (1/2);
- ``flip+shift1x8``: the eight 1 px neighbours (1/16 each) beside the unmoved image (1/2);
- ``flip+shift1+2``: ``flip+shift1`` (1/2) beside the two diagonal 2 px shifts (1/4 each).

and for the model: W, E, and W+E (the mean of both models' probabilities). One line per file, then the mean
over the files of each combination, and its mean difference from ``W flip+shift1`` (what ``train`` reports as
the run's val error), so that differences are paired by run.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from imagenet_trainer.data.build import make_val_loader
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import build_index, find_split_dirs
from imagenet_trainer.engine.trainer import tta_probs
from imagenet_trainer.inference import load_model_file

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)] + [(-2, -2), (2, 2)]


def moved(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` moved dy px down and dx px right, edge pixels repeated (as ``tta_probs`` moves it)."""
    p = max(abs(dy), abs(dx))
    h, w = x.shape[-2:]
    padded = F.pad(x, (p,) * 4, mode="replicate")
    return padded[:, :, p - dy:p - dy + h, p - dx:p - dx + w].contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def view_probs(model, loader, dev) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """{view: (N, C) probabilities}, each the mean of the view and its mirror; the labels; tta_probs' own."""
    out, labels, reference = {}, [], []
    for b in loader:
        x = b.images
        with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"):
            reference.append(tta_probs(model, x, flip=True, shift=1).float())
            for v in [(0, 0)] + SHIFTS:
                xv = x if v == (0, 0) else moved(x, *v)
                p = (model(xv).float().softmax(-1) + model(xv.flip(3)).float().softmax(-1)) / 2
                out.setdefault(v, []).append(p)
        labels.append(b.labels)
    return {k: torch.cat(v) for k, v in out.items()}, torch.cat(labels), torch.cat(reference)


def combos(v: dict) -> dict:
    c = v[(0, 0)]
    one = [s for s in SHIFTS if max(map(abs, s)) == 1]
    diag = [s for s in one if 0 not in s]
    return {
        "flip": c,
        "flip+shift1": c / 2 + (v[(-1, -1)] + v[(1, 1)]) / 4,
        "flip+shift1x4": c / 2 + sum(v[s] for s in diag) / 8,
        "flip+shift1x8": c / 2 + sum(v[s] for s in one) / 16,
        "flip+shift1+2": (c / 2 + (v[(-1, -1)] + v[(1, 1)]) / 4) / 2 + (v[(-2, -2)] + v[(2, 2)]) / 4,
    }


def main() -> None:
    data, files = sys.argv[1], sys.argv[2:]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    table: dict[str, list[float]] = {}
    for path in files:
        per_model = {}
        for name, ema in (("W", False), ("E", True)):
            lm = load_model_file(path, dev, ema=ema)
            _, vdir = find_split_dirs(data, None)
            loader = make_val_loader(build_index(vdir), Geometry("center", lm.crop_size, lm.image_size), 500, 8, dev,
                                     lm.mean, lm.std)
            views, labels, reference = view_probs(lm.model, loader, dev)
            per_model[name] = combos(views)
            check = (per_model[name]["flip+shift1"] - reference).abs().max().item()
            print(f"{path} {name}: flip+shift1 as tta_probs computes it: max difference {check:.2e}", flush=True)
        per_model["W+E"] = {k: (per_model["W"][k] + per_model["E"][k]) / 2 for k in per_model["W"]}
        row = []
        for m, cs in per_model.items():
            for k, p in cs.items():
                top1 = 100 * (p.argmax(1) == labels).float().mean().item()
                table.setdefault(f"{m} {k}", []).append(top1)
                row.append(f"{m} {k} {top1:.2f}")
        print(path, " | ".join(row), flush=True)
    base = table["W flip+shift1"]
    print(f"mean over {len(files)} runs (difference from 'W flip+shift1', paired by run; runs at 93% or more):")
    for k, v in table.items():
        d = [a - b for a, b in zip(v, base)]
        print(f"  {k:18s} {sum(v) / len(v):.3f}%  {sum(d) / len(d):+.3f} (min {min(d):+.2f}, max {max(d):+.2f})  "
              f"{sum(x >= 93 for x in v)}/{len(v)}")


if __name__ == "__main__":
    main()
