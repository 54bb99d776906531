"""What the batch augmentations cost per batch on the device, each alone and together.

    python benchmarks/augment_cost.py --batch 256 --size 224 --json augment_cost.json

times ``data.augment.BatchAugment`` (the object a training step calls) on normalized channels_last float batches
already on the device, as the loaders deliver them: RandAugment ``rand-m9-mstd0.5-inc1``, TrivialAugmentWide,
random erasing 0.25, MixUp 0.1 / CutMix 1.0 and the set of all three that timm's recipes use. CUDA events around
each call (on a GPU), the median of ``--steps`` calls after ``--warmup``. The end-to-end figure, a ``train`` run
with and without the augmentations, is ``benchmarks/steady_rate.py`` on the two logs.

``--against FILE`` also times the three policies of another version of ``data/autoaugment.py`` in turn with the
current ones, call for call, and counts the tensor operations (kernel launches on a GPU) of one call of each:

    git show c9e747a:src/imagenet_trainer/data/autoaugment.py > /tmp/autoaugment_old.py
    python benchmarks/augment_cost.py --device cpu --batch 32 --against /tmp/autoaugment_old.py
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


def once_ms(call, batch: torch.Tensor) -> float:
    """One call on a copy of ``batch``: CUDA events around it on a GPU, the wall-clock on a CPU."""
    x = batch.clone()
    if batch.is_cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call(x)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    call(x)
    return (time.perf_counter() - t0) * 1000


def time_ms(augment: BatchAugment, batch: torch.Tensor, labels: torch.Tensor, steps: int, warmup: int) -> float:
    times = [once_ms(lambda x: augment(x, labels), batch) for _ in range(warmup + steps)]
    return statistics.median(times[warmup:])


# aten ops that only make a new view of a tensor's memory: no kernel on a GPU
VIEWS = {f"aten::{name}" for name in ("view", "view_as", "_unsafe_view", "slice", "select", "expand", "expand_as",
                                      "unbind", "as_strided", "alias", "unsqueeze", "squeeze", "t", "transpose",
                                      "permute", "detach", "lift_fresh")}


def tensor_ops(call, batch: torch.Tensor) -> int:
    """The computing tensor operations of one call: top-level aten ops that are not views (each launches one
    kernel or more on a GPU)."""
    from torch.profiler import profile

    with profile() as prof:
        call(batch.clone())
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None and e.name not in VIEWS)


def against(path: str, batch: torch.Tensor, steps: int, warmup: int) -> dict:
    """The three policies, current and ``path``'s version, timed call for call, with their tensor operations."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("autoaugment_against", path)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    rows = {}
    for text in ("rand-m9-mstd0.5-inc1", "trivial", "autoaugment-imagenet"):
        calls = {"current": AutoAugment(text, IMAGENET_MEAN, IMAGENET_STD),
                 path: other.AutoAugment(text, IMAGENET_MEAN, IMAGENET_STD)}
        times = {k: [] for k in calls}
        for i in range(warmup + steps):
            for k, call in calls.items():
                ms = once_ms(call, batch)
                if i >= warmup:
                    times[k].append(ms)
        rows[text] = {k: {"ms": round(statistics.median(times[k]), 3), "tensor_ops": tensor_ops(call, batch)}
                      for k, call in calls.items()}
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--against", metavar="FILE", help="another version of data/autoaugment.py to time the policies "
                   "against, call for call")
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
    record = {"card": card, "batch": args.batch, "size": args.size, "ms_per_batch": rows,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    if args.against:
        record["against"] = against(args.against, batch, args.steps, args.warmup)
        for text, pair in record["against"].items():
            print(f"{text:<24} " + "  ".join(f"{k}: {v['ms']:.2f} ms, {v['tensor_ops']} tensor ops"
                                             for k, v in pair.items()), file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
