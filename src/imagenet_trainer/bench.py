"""Throughput benchmarks: the loader alone, the model alone (the ceiling), and training end to end.

Each figure is images per second over ``steps`` batches after ``warmup`` batches (compilation and
worker start-up stay out of the timing). ``compare`` also runs the naive torchvision pipeline
(ImageFolder + PIL + RandomResizedCrop + ToTensor + Normalize, fp32) in the same process and
reports our figure over it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn as nn

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import build_data, load_indexes
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.loader import IMAGENET_MEAN, IMAGENET_STD, Normalizer
from imagenet_trainer.engine.probe import choose_for_run
from imagenet_trainer.engine.trainer import synthetic_step_rate
from imagenet_trainer.errors import UsageError


@dataclass
class BenchOptions:
    steps: int = 50
    warmup: int = 10
    compare: bool = False
    epochs: int = 0  # loader only: full epochs, recording resident memory after each
    rounds: int = 1  # loader --compare: ours and the naive pipeline alternate this many times; medians reported
    naive_data: str | None = None  # --compare: the folder the naive pipeline reads (default: --data)


def card(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def environment(device: torch.device) -> dict:
    import torchvision

    return {"card": card(device), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "cpu_cores": os.cpu_count(),
            "date": datetime.date.today().isoformat(), "command": " ".join(["imagenet-trainer", *sys.argv[1:]])}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(batches, device: torch.device, warmup: int, steps: int, work=None) -> float:
    """Images per second over ``steps`` items of ``batches`` after ``warmup`` items."""
    it = iter(batches)
    for _ in range(warmup):
        b = next(it)
        if work:
            work(b)
    _sync(device)
    t0, n = time.perf_counter(), 0
    for _ in range(steps):
        b = next(it)
        if work:
            work(b)
        n += _batch_len(b)
    _sync(device)
    return n / (time.perf_counter() - t0)


def _batch_len(b) -> int:
    if hasattr(b, "labels"):
        return int(b.labels.shape[0])
    return int(b[1].shape[0])


def _endless(loader, sampler=None):
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def make_step(model: nn.Module, device: torch.device, dtype: torch.dtype | None):
    """One SGD step on a normalized batch: the work whose speed is the ceiling."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def build_model(cfg: TrainConfig, device: torch.device, num_classes: int) -> nn.Module:
    from imagenet_trainer.models import create_model

    torch.backends.cudnn.benchmark = cfg.tune_cudnn()
    model = create_model(cfg.arch, num_classes, image_size=cfg.crop_size).to(device, memory_format=torch.channels_last)
    return torch.compile(model) if cfg.backend == "compile" else model


def bench_model(cfg: TrainConfig, device: torch.device, dtype, opts: BenchOptions, num_classes: int = 1000) -> float:
    """The model-only ceiling: SGD steps on random uint8 batches already on the device."""
    model = build_model(cfg, device, num_classes)
    return _ceiling(make_step(model, device, dtype), cfg, device, opts, num_classes)


def _ceiling(step, cfg: TrainConfig, device: torch.device, opts: BenchOptions, num_classes: int) -> float:
    """Images/s of ``step`` on random batches already on the device, normalized as the loader does."""
    norm = Normalizer(IMAGENET_MEAN, IMAGENET_STD, device)
    g = torch.Generator(device=device).manual_seed(0)
    batches = [(torch.randint(0, 256, (cfg.batch_size, cfg.crop_size, cfg.crop_size, 3), dtype=torch.uint8,
                              device=device, generator=g),
                torch.randint(0, num_classes, (cfg.batch_size,), device=device, generator=g)) for _ in range(4)]

    def cycle():
        while True:
            yield from batches

    return _timed(cycle(), device, opts.warmup, opts.steps, lambda b: step(norm(b[0]), b[1]))


def naive_loader(cfg: TrainConfig, workers: int, device: torch.device, data: str | None = None):
    """pytorch/examples' pipeline: ImageFolder + PIL + RandomResizedCrop + flip + ToTensor + Normalize, over the
    folder ``data`` (default: ``cfg.data``)."""
    import torchvision.datasets as tvd

    from imagenet_trainer.data.index import find_split_dirs
    from imagenet_trainer.data.naive import naive_transform
    from imagenet_trainer.data.shards import is_shard_data

    if data is None and is_shard_data(cfg.data):
        raise UsageError(f"--compare: the naive pipeline reads a folder, and --data {cfg.data} is shards; give the "
                         "folder of the same images with --naive-data")
    train_dir, _ = find_split_dirs(data or cfg.data, None if data else cfg.val_dir)
    rrc = Geometry("rrc", cfg.crop_size, cfg.image_size)  # torchvision's defaults, as pytorch/examples uses them
    ds = tvd.ImageFolder(str(train_dir), naive_transform(rrc, IMAGENET_MEAN, IMAGENET_STD))
    kwargs = dict(persistent_workers=True, prefetch_factor=4) if workers else {}
    return torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=device.type == "cuda", drop_last=True, **kwargs)


def _children_cpu_s() -> float | None:
    """CPU seconds used so far by this process's child processes (the loader workers), from /proc; None
    where there is no /proc."""
    me, total, found = os.getpid(), 0, False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else 0.0


def wait_for_idle_workers(poll: float = 0.1, limit: float = 20.0) -> float:
    """Wait until the loader workers stop using CPU (at most ``limit`` s); the seconds waited.

    When a timed loader stops being read, its workers still finish the batches they were asked for
    ahead of time. Timing the other loader meanwhile would charge it for that work: for the naive
    pipeline that is 4 batches per worker, seconds of CPU on 2 cores.
    """
    t0 = time.perf_counter()
    last = _children_cpu_s()
    while last is not None and time.perf_counter() - t0 < limit:
        time.sleep(poll)
        now = _children_cpu_s()
        if now - last < 0.2 * poll:  # all workers together used under a fifth of one core
            break
        last = now
    return time.perf_counter() - t0


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def bench_loader(cfg: TrainConfig, device: torch.device, opts: BenchOptions) -> dict:
    """Our training loader alone (delivered, normalized, to the device), optionally against the naive one.

    With ``compare`` and ``rounds`` > 1 the two alternate, each round timing ``steps`` batches of ours
    then of the naive pipeline after ``warmup`` batches of each, and the medians are reported: on a
    shared machine the load of other tenants moves from minute to minute, and alternating lets both
    pipelines see the same conditions. Each timing starts once the other loader's workers are idle.
    """
    data = build_data(cfg, device)
    out = {"loader": data.loader, "workers": data.train.num_workers,
           "images": len(data.train_index)}
    sampler = data.train.batch_sampler
    ours = _endless(data.train, sampler)
    if opts.epochs:
        rss = []
        t0, n = time.perf_counter(), 0
        for epoch in range(opts.epochs):
            sampler.set_epoch(epoch)
            for b in data.train:
                n += b.labels.shape[0]
            _sync(device)
            it = data.train.loader._iterator
            workers = [w.pid for w in getattr(it, "_workers", [])]
            rss.append({"epoch": epoch + 1, "main_mb": _rss_mb(os.getpid()),
                        "workers_mb": [round(_rss_mb(p), 1) for p in workers]})
        out.update(images_per_s=n / (time.perf_counter() - t0), memory=rss)
    elif not opts.compare:
        out["images_per_s"] = _timed(ours, device, opts.warmup, opts.steps)
    if opts.compare:
        naive = _endless(naive_loader(cfg, data.train.num_workers, device, opts.naive_data))

        def deliver(b):
            b[0].to(device, non_blocking=True)

        rounds = []
        for _ in range(opts.rounds):
            a = out["images_per_s"] if opts.epochs else _timed(ours, device, opts.warmup, opts.steps)  # epochs: 1 round
            wait_for_idle_workers()
            b = _timed(naive, device, opts.warmup, opts.steps, deliver)
            wait_for_idle_workers()
            rounds.append({"images_per_s": a, "baseline_images_per_s": b, "ratio": a / b})
        out["images_per_s"] = statistics.median(r["images_per_s"] for r in rounds)
        out["baseline"] = {"name": "torchvision ImageFolder + PIL + ToTensor + Normalize",
                           "images_per_s": statistics.median(r["baseline_images_per_s"] for r in rounds)}
        out["ratio"] = statistics.median(r["ratio"] for r in rounds)
        if opts.rounds > 1:
            out["rounds"] = rounds
    return out


def bench_train(cfg: TrainConfig, device: torch.device, dtype, opts: BenchOptions, launch: float) -> dict:
    """Training end to end from the JPEG folder, against the model-only ceiling measured in the same run."""
    classes = load_indexes(cfg)[0].classes
    model = build_model(cfg, device, len(classes))
    choice = choose_for_run(cfg, device, 0, 1, lambda beside: synthetic_step_rate(
        model, nn.CrossEntropyLoss(), device, dtype, cfg.batch_size, cfg.crop_size, len(classes), beside=beside))
    data = build_data(cfg, device, choice=choice)
    step = make_step(model, device, dtype)
    first = {}

    def work(b):
        step(b.images, b.labels)
        if not first:
            _sync(device)
            first["s"] = time.perf_counter() - launch

    ips = _timed(_endless(data.train, data.train.batch_sampler), device, opts.warmup, opts.steps, work)
    out = {"loader": data.loader, "workers": data.train.num_workers,
           "images_per_s": ips, "first_batch_s": first.get("s")}
    if data.choice is not None:
        out["probe"] = dataclasses.asdict(data.choice)
    ctrl = data.train.controller
    if ctrl is not None:
        out["cpu_share"] = ctrl.share.value
        out["device_side_s_per_batch"] = ctrl.gpu
        out["split_windows"] = [{"cpu_share": round(w.share, 3), "images_per_s": round(w.rate * cfg.batch_size),
                                 "producer_waited": round(w.producer_waited, 3),
                                 "producer_blocked": round(w.producer_blocked, 3),
                                 "training_waited": round(w.training_waited, 3),
                                 "device_side_ms": round(1000 * w.device_s, 2)} for w in ctrl.history]
    out["ceiling"] = {"images_per_s": _ceiling(step, cfg, device, opts, len(data.classes))}
    out["of_ceiling"] = ips / out["ceiling"]["images_per_s"]
    if opts.compare:
        fp32 = TrainConfig(**{**cfg.to_dict(), "backend": "cudnn"})
        naive_model = build_model(fp32, device, len(data.classes))
        naive_step = make_step(naive_model, device, None)
        naive = naive_loader(cfg, data.train.num_workers, device, opts.naive_data)

        def naive_work(b):
            naive_step(b[0].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
                       b[1].to(device, non_blocking=True))

        wait_for_idle_workers()  # our workers' batches asked for ahead of time are not the baseline's cost
        out["baseline"] = {"name": "torchvision ImageFolder + PIL pipeline, fp32 eager",
                           "images_per_s": _timed(_endless(naive), device, opts.warmup, opts.steps, naive_work)}
        out["ratio"] = ips / out["baseline"]["images_per_s"]
    return out
