"""The model-only ceiling under DDP: what each GPU trains on random batches already on the device.

Run under torchrun (one process per GPU) or alone; prints each rank's images/s, so that a 2-GPU
training run from JPEG can be compared with what DDP alone allows, not only with one GPU's ceiling:

    torchrun --nproc-per-node 2 benchmarks/ddp_ceiling.py --arch resnet50 --compile
    python benchmarks/ddp_ceiling.py --arch resnet50 --compile          # one GPU, no DDP

bf16 autocast, channels_last, SGD with momentum, ``--batch`` images per GPU, as ``train`` runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist

from imagenet_trainer.bench import make_step
from imagenet_trainer.models import create_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch", type=int, default=256, help="images per GPU")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--steps", type=int, default=60)
    a = p.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl", device_id=device)
    model = create_model(a.arch, 1000).to(device, memory_format=torch.channels_last)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank]) if world > 1 else model
    if a.compile:
        net = torch.compile(net)
    train_step = make_step(net, device, torch.bfloat16)
    x = torch.randn(a.batch, 3, a.size, a.size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (a.batch,), device=device)

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        train_step(x, y)
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        train_step(x, y)
    torch.cuda.synchronize()
    rate = a.steps * a.batch / (time.perf_counter() - t0)
    print(json.dumps({"arch": a.arch, "compile": a.compile, "processes": world, "rank": rank, "batch_per_gpu": a.batch,
                      "warmup_s": round(warm, 1), "images_per_s_per_gpu": round(rate)}), flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
