"""What cuDNN's autotuning costs at start-up, and what it buys in steady training.

Each measurement runs in a fresh process (cuDNN keeps its tuned algorithms per process): build the model
(bf16 autocast, channels_last, SGD), time the first training step (where ``cudnn.benchmark`` tries the
algorithms of every convolution shape), then the steady images/s over ``--steps`` steps.

    python benchmarks/cudnn_tuning.py --arch resnet50 resnet18 alexnet --modes on off limit1

Modes: ``on`` = ``cudnn.benchmark = True`` (what ``train`` uses), ``off`` = cuDNN's heuristics only,
``limitN`` = benchmark with ``cudnn.benchmark_limit = N`` algorithms tried per shape (torch's default: 10).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(arch: str, mode: str, batch: int, size: int, steps: int, compile: bool = False) -> dict:
    import torch

    from imagenet_trainer.bench import make_step
    from imagenet_trainer.models import create_model

    torch.backends.cudnn.benchmark = mode != "off"
    if mode.startswith("limit"):
        torch.backends.cudnn.benchmark_limit = int(mode[5:])
    device = torch.device("cuda")
    model = create_model(arch, 1000).to(device, memory_format=torch.channels_last)
    train_step = make_step(torch.compile(model) if compile else model, device, torch.bfloat16)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    train_step(x, y)
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    for _ in range(5):
        train_step(x, y)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(x, y)
    torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - t0)
    return {"arch": arch, "mode": mode, "compile": compile, "batch": batch, "size": size,
            "first_step_s": round(first, 2), "images_per_s": round(rate)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["resnet50", "resnet18", "alexnet"])
    p.add_argument("--modes", nargs="+", default=["on", "off", "limit1"])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--compile", action="store_true", help="torch.compile the model (first step = compilation)")
    p.add_argument("--repeat", type=int, default=2, help="rounds over all (arch, mode) pairs, interleaved")
    p.add_argument("--one", nargs=2, metavar=("ARCH", "MODE"), help=argparse.SUPPRESS)  # the child process
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(a.one[0], a.one[1], a.batch, a.size, a.steps, a.compile)))
        return
    for r in range(a.repeat):
        for arch in a.arch:
            for mode in a.modes:
                child = [sys.executable, __file__, "--one", arch, mode, "--batch", str(a.batch), "--size", str(a.size),
                         "--steps", str(a.steps)] + ["--compile"] * a.compile
                out = subprocess.run(child, capture_output=True, text=True)
                line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-300:]
                print(f"round {r + 1}: {line}", flush=True)


if __name__ == "__main__":
    main()
