"""Where a small model's training step goes: ResNet-9 on the CIFAR-10 JPEG cache, as ``train`` runs it.

Times whole epochs of the cached loader + model + SGD (+ EMA) in a few variants, then prints a profiler
table of a few steps. Run on a GPU:  python benchmarks/step_profile.py --data DIR [--variants ...]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import build_data
from imagenet_trainer.engine.ema import ema_decay, make_ema
from imagenet_trainer.engine.optim import Schedule, make_optimizer
from imagenet_trainer.engine.run import adapt_to_image_size
from imagenet_trainer.engine.trainer import StepContext, train_one_epoch
from imagenet_trainer.models import create_model


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def setup(data: str, batch: int, compile_mode: str | None, ema: bool, channels_last: bool = True):
    cfg = adapt_to_image_size(TrainConfig(data=data, arch="resnet9", batch_size=batch, cache="gpu" if torch.cuda.is_available() else "ram", print_freq=10**6,
                                          weight_decay=5e-4, ema=ema), verbose=False)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bundle = build_data(cfg, device, 0, 1)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model("resnet9", 10).to(device, memory_format=fmt)
    opt = make_optimizer(model, cfg)
    sched = Schedule(cfg, len(bundle.train))
    avg = make_ema(model, ema_decay(cfg.ema_half_life, cfg.epochs * len(bundle.train))) if ema else None
    torch.backends.cudnn.benchmark = True
    net = model if compile_mode is None else torch.compile(model, mode=None if compile_mode == "default" else compile_mode)
    ctx = StepContext(device, torch.bfloat16, None, sched, ema=avg, ema_source=model, print_freq=10**6)
    return cfg, bundle, net, opt, ctx


def timed_epochs(name: str, args, compile_mode=None, ema=True, channels_last=True) -> None:
    cfg, bundle, net, opt, ctx = setup(args.data, args.batch_size, compile_mode, ema, channels_last)
    if not channels_last:
        net = _Contiguous(net)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    t0 = time.perf_counter()
    bundle.train.batch_sampler.set_epoch(1)
    first = train_one_epoch(net, bundle.train, crit, opt, ctx, 1, 0, time_first_step=True)
    sync()
    t1 = time.perf_counter()
    n = 0
    for epoch in (2, 3):
        bundle.train.batch_sampler.set_epoch(epoch)
        train_one_epoch(net, bundle.train, crit, opt, ctx, epoch, 0)
        n += len(bundle.train_index)
    sync()
    t2 = time.perf_counter()
    print(f"{name:28s} first epoch {t1 - t0:6.2f} s (first step {first['first_step_s']:.2f} s) | "
          f"steady {n / (t2 - t1):9,.0f} img/s", flush=True)


class _Contiguous(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.contiguous())


def model_only(name: str, args, fused: bool) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model("resnet9", 10).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, fused=fused or None)
    x = torch.randn(args.batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = crit(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(20):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(100):
        step()
    sync()
    print(f"{name:28s} {100 * args.batch_size / (time.perf_counter() - t0):9,.0f} img/s", flush=True)


def profile(args) -> None:
    from torch.profiler import ProfilerActivity, profile as prof

    cfg, bundle, net, opt, ctx = setup(args.data, args.batch_size, None, True)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    bundle.train.batch_sampler.set_epoch(1)
    train_one_epoch(net, bundle.train, crit, opt, ctx, 1, 0)
    sync()
    bundle.train.batch_sampler.set_epoch(2)
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        train_one_epoch(net, bundle.train, crit, opt, ctx, 2, 0)
        sync()
    table = p.key_averages()
    print(table.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60))
    print(table.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--variants", nargs="+",
                    default=["model", "model-fused", "epochs", "epochs-noema", "profile"])
    args = ap.parse_args()
    for v in args.variants:
        if v == "model":
            model_only("model only, foreach SGD", args, False)
        elif v == "model-fused":
            model_only("model only, fused SGD", args, True)
        elif v == "epochs":
            timed_epochs("cache+model+SGD+EMA", args)
        elif v == "epochs-nchw":
            timed_epochs("cache+model+SGD+EMA, NCHW", args, channels_last=False)
        elif v == "epochs-noema":
            timed_epochs("cache+model+SGD", args, ema=False)
        elif v.startswith("compile"):  # compile, compile:max-autotune-no-cudagraphs, compile:reduce-overhead
            mode = v.split(":", 1)[1] if ":" in v else "default"
            timed_epochs(f"compiled ({mode})", args, compile_mode=mode)
        elif v == "profile":
            profile(args)


if __name__ == "__main__":
    main()
