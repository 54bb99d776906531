"""What the batch augmentations cost per batch on the device, each alone and together.

    python benchmarks/augment_cost.py --batch 256 --size 224 --json augment_cost.json

times ``data.augment.BatchAugment`` (the object a training step calls) on normalized channels_last float batches
already on the device, as the loaders deliver them: RandAugment ``rand-m9-mstd0.5-inc1``, TrivialAugmentWide,
random erasing 0.25, MixUp 0.1 / CutMix 1.0 and the set of all three that timm's recipes use. CUDA events around
each call (on a GPU), the median of ``--steps`` calls after ``--warmup``. The end-to-end figure, a ``train`` run
with and without the augmentations, is ``benchmarks/steady_rate.py`` on the two logs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from imagenet_trainer.data.augment import BatchAugment, MixUpCutMix, RandomErasing
from imagenet_trainer.data.autoaugment import AutoAugment
from imagenet_trainer.data.loader import IMAGENET_MEAN, IMAGENET_STD

SETS = {
    "rand-m9-mstd0.5-inc1": lambda: BatchAugment(policy=AutoAugment("rand-m9-mstd0.5-inc1", IMAGENET_MEAN,
                                                                     IMAGENET_STD)),
    "trivial": lambda: BatchAugment(policy=AutoAugment("trivial", IMAGENET_MEAN, IMAGENET_STD)),
    "reprob 0.25": lambda: BatchAugment(erasing=RandomErasing(0.25)),
    "mixup 0.1 / cutmix 1.0": lambda: BatchAugment(mix=MixUpCutMix(0.1, 1.0, 1000)),
    "all three (RandAugment m9, erasing 0.25, MixUp/CutMix)": lambda: BatchAugment(
        policy=AutoAugment("rand-m9-mstd0.5-inc1", IMAGENET_MEAN, IMAGENET_STD), erasing=RandomErasing(0.25),
        mix=MixUpCutMix(0.1, 1.0, 1000)),
}


def time_ms(augment: BatchAugment, batch: torch.Tensor, labels: torch.Tensor, steps: int, warmup: int) -> float:
    cuda = batch.is_cuda
    times = []
    for i in range(warmup + steps):
        x = batch.clone()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            augment(x, labels)
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
        else:
            t0 = time.perf_counter()
            augment(x, labels)
            ms = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            times.append(ms)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    g = torch.Generator(device=device).manual_seed(0)
    batch = torch.randn(args.batch, 3, args.size, args.size, generator=g, device=device).clamp_(-2, 2)
    batch = batch.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (args.batch,), generator=g, device=device)
    rows = {name: round(time_ms(make(), batch, labels, args.steps, args.warmup), 3) for name, make in SETS.items()}
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    for name, ms in rows.items():
        print(f"{name:<55} {ms:8.2f} ms per batch of {args.batch} at {args.size} px ({card})", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"card": card, "batch": args.batch, "size": args.size, "ms_per_batch": rows,
                       "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
