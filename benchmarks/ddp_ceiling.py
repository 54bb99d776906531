"""The model-only ceiling under DDP: what each GPU trains on random batches already on the device.

Run under torchrun (one process per GPU) or alone; prints each rank's images/s, so that a 2-GPU
training run from JPEG can be compared with what DDP alone allows, not only with one GPU's ceiling:

    torchrun --nproc-per-node 2 benchmarks/ddp_ceiling.py --arch resnet50 --compile
    python benchmarks/ddp_ceiling.py --arch resnet50 --compile          # one GPU, no DDP

bf16 autocast, channels_last, SGD with momentum, ``--batch`` images per GPU, as ``train`` runs them.

``--data DIR`` splits what training from JPEG loses against that ceiling (2x H100, 2026-11-26: the compiled pair
trained 91-94% of it per GPU while it never waited for data). Each rank builds this project's training loader
on DIR (``--loader``, default cpu; ``--workers``, default as ``train``) and times three phases in turn:
``random`` (the ceiling), ``beside`` (random batches while the loader runs on a thread and its batches,
normalized on the GPU, are dropped: the workers' CPU load and the copies and kernels on the GPU, without
feeding) and ``fed`` (the loader's batches):

    torchrun --nproc-per-node 2 benchmarks/ddp_ceiling.py --arch resnet50 --compile --data /tmp/inet13k

With ``--data`` it also reports ``loader_beside``: the images/s the loader delivered to the dropping thread
during ``beside``, its rate while training runs; and a fourth phase, ``trainer``: the loader's batches through
``engine.trainer.train_one_epoch`` itself, with ``train``'s optimizer, schedule, loss, metrics and EMA (the
extra work of a ``train`` step against ``make_step``'s). ``--recipe fast`` takes those, and the loader's
random-resized crop scale, from that recipe, as ``train`` does by default. On 2x H200 (2026-11-26) this phase ran 3-5% below the
fed phases before and after it on one GPU too, where ``train`` keeps up with them: it carries costs of its own
(its progress lines' host syncs, gone since, explained about 1%; the rest is not separated), so it does not
measure what the 2-GPU ``train`` loses.

``--bucket-view`` and ``--no-broadcast-buffers`` set DDP's ``gradient_as_bucket_view`` and ``broadcast_buffers``:
without them DDP copies the gradients between themselves and its all-reduce buckets (a copy per parameter,
161 for ResNet-50) and broadcasts rank 0's batch-norm buffers before every forward.

``--profile DIR`` (with ``--data``) also records, on each rank, a trace of 12 steps of the ``fed`` and of the
``trainer`` phase (Chrome/Perfetto JSON, gzipped: ``DIR/fed_rank0.json.gz``...; the first 2 steps of each are
the profiler's warm-up and are left out), to open in Perfetto or ``chrome://tracing``. After
``trainer`` a second ``fed`` phase (``fed_again``) tells the phases' order apart from their work.

``--ddp-option KEY=VALUE`` (repeatable) passes a further keyword to DDP, e.g. ``bucket_cap_mb=128``.

``--comm-hook noop|sync`` splits what DDP costs: ``noop`` leaves each bucket's gradients as they are
(DDP's own work in the step, no communication and no wait between the ranks); ``sync`` all-reduces one element per
bucket instead of the bucket (the ranks wait for each other bucket by bucket, with almost no bytes and tiny NCCL
kernels beside the backward). The ranks' weights then drift apart, which does not change the timing; each rank
trains on a batch of its own, and the JSON's ``weights_in_sync`` says whether the gradients were summed.

``--python-reducer`` (with ``--compile``) compiles DDP as one graph with its all-reduces in it:
``torch._dynamo.config.optimize_ddp = "python_reducer"`` and the backward under compiled autograd, so inductor sees
the whole backward with the gradients' all-reduces and buckets and places them itself, where DDPOptimizer splits
the model into one graph per bucket.

``--grads bf16`` sums the gradients in bf16 (DDP's ``bf16_compress_hook``, as ``train --ddp-grads``). Under
DDP it also times one all-reduce of all the gradients' elements alone, in fp32 and in bf16 (``allreduce_ms``),
which tells how fast the GPUs reach each other.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import threading
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
    p.add_argument("--grads", choices=("fp32", "bf16"), default="fp32", help="DDP: dtype of the gradient all-reduce")
    p.add_argument("--bucket-view", action="store_true",
                   help="DDP(gradient_as_bucket_view=True): gradients live in the all-reduce buckets, no copies in and out")
    p.add_argument("--no-broadcast-buffers", action="store_true",
                   help="DDP(broadcast_buffers=False): no broadcast of rank 0's batch-norm buffers before every forward")
    p.add_argument("--ddp-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword for DDP (repeatable; the value a Python literal), e.g. bucket_cap_mb=128")
    p.add_argument("--comm-hook", choices=("allreduce", "noop", "sync"), default="allreduce",
                   help="DDP: what a bucket's hook does (noop: nothing; sync: an all-reduce of one element)")
    p.add_argument("--python-reducer", action="store_true",
                   help="with --compile: DDP's all-reduces traced into one compiled backward (compiled autograd)")
    p.add_argument("--whole-graph", action="store_true",
                   help="compile DDP's model as one graph (torch._dynamo.config.optimize_ddp = False): gradients are "
                        "all-reduced after the backward instead of bucket by bucket during it")
    p.add_argument("--data", help="also time the steps beside and fed by this project's loader on DIR")
    p.add_argument("--loader", default="cpu", help="with --data: cpu, gpu or hybrid")
    p.add_argument("--cpu-share", type=float, default=None, help="with --data and a hybrid loader: fixed CPU share")
    p.add_argument("--workers", type=int, default=-1, help="with --data: loader processes per rank (-1: as train)")
    p.add_argument("--profile", metavar="DIR", help="with --data: traces of 12 fed and 12 trainer steps per rank")
    p.add_argument("--recipe", default="none", help="with --data: the recipe whose values the loader and the trainer "
                   "phase take (fast: train's default; none: TrainConfig's defaults)")
    a = p.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()  # without a GPU it runs too (slowly), as a check of the script itself
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = create_model(a.arch, 1000).to(device, memory_format=torch.channels_last)
    net = model
    ddp_extra = {k: ast.literal_eval(v) for k, _, v in (o.partition("=") for o in a.ddp_option)}
    if a.python_reducer:  # before DDP is built: it reads the mode then
        import torch._dynamo as dynamo

        dynamo.config.optimize_ddp = "python_reducer"
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None,
                                                        gradient_as_bucket_view=a.bucket_view,
                                                        broadcast_buffers=not a.no_broadcast_buffers,
                                                        **ddp_extra)
    if world > 1 and a.grads == "bf16":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        net.register_comm_hook(None, default_hooks.bf16_compress_hook)
    if world > 1 and a.comm_hook != "allreduce":
        net.register_comm_hook(None, _noop_hook if a.comm_hook == "noop" else _sync_hook)
    if a.compile:
        if a.whole_graph:
            import torch._dynamo as dynamo

            dynamo.config.optimize_ddp = False
        net = torch.compile(net)
    train_step = make_step(net, device, torch.bfloat16)
    if a.python_reducer:
        train_step = _under_compiled_autograd(train_step)
    torch.manual_seed(1000 + rank)  # each rank its own batch: only summed gradients keep the ranks' weights equal
    x = torch.randn(a.batch, 3, a.size, a.size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (a.batch,), device=device)

    def timed(batches, run=None, marks: list | None = None) -> float:
        """Images/s per GPU over ``a.steps`` steps on ``batches`` (pairs of images and labels), or of ``run()``
        (which takes ``a.steps`` steps); ``marks`` gets the start and end times."""
        if world > 1:
            dist.barrier()
        sync()
        t0 = time.perf_counter()
        if run is not None:
            run()
        else:
            for images, labels in itertools.islice(batches, a.steps):
                train_step(images, labels)
        sync()
        t1 = time.perf_counter()
        if marks is not None:
            marks += [t0, t1]
        return a.steps * a.batch / (t1 - t0)

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        train_step(x, y)
    sync()
    warm = time.perf_counter() - t0
    rates = {"random": timed(itertools.repeat((x, y)))}
    if a.data:
        cfg = _config(a, world)
        loader = _loader(cfg, device, rank, world)
        device_batches = _endless(loader)
        batches = ((b.images, b.labels) for b in device_batches)
        for _ in range(a.warmup):  # the workers' start, and a compile for the loader's batches if any
            train_step(*next(batches))
        stop = threading.Event()
        dropped: list = []  # the time each batch was taken

        def drop() -> None:  # take the loader's batches and drop them, until told to stop
            for _ in batches:
                dropped.append(time.perf_counter())
                if stop.is_set():
                    return

        dropping = threading.Thread(target=drop, daemon=True)
        dropping.start()
        marks: list = []
        rates["beside"] = timed(itertools.repeat((x, y)), marks=marks)
        stop.set()
        dropping.join()
        taken = sum(marks[0] <= t <= marks[1] for t in dropped)
        rates["loader_beside"] = taken * a.batch / (marks[1] - marks[0])
        rates["fed"] = timed(batches)
        trainer = _trainer_phase(a, cfg, net, model, device_batches, device, rank, world)
        rates["trainer"] = timed(None, run=trainer)
        rates["fed_again"] = timed(batches)
        if a.profile:
            os.makedirs(a.profile, exist_ok=True)

            def fed_steps(n: int, step) -> None:
                for images, labels in itertools.islice(batches, n):
                    train_step(images, labels)
                    step()

            for name, run in (("fed", fed_steps), ("trainer", trainer)):
                _profile(run, os.path.join(a.profile, f"{name}_rank{rank}.json.gz"), cuda, sync)
    in_sync = _weights_in_sync(model) if world > 1 else None
    allreduce = _allreduce_ms(sum(p.numel() for p in model.parameters()), device, sync) if world > 1 else None
    print(json.dumps({"arch": a.arch, "compile": a.compile, "processes": world, "rank": rank, "batch_per_gpu": a.batch,
                      "grads": a.grads, "comm_hook": a.comm_hook, "python_reducer": a.python_reducer, "whole_graph": a.whole_graph, "ddp_options": ddp_extra, "bucket_view": a.bucket_view,
                      "broadcast_buffers": not a.no_broadcast_buffers, "warmup_s": round(warm, 1), "loader": a.loader if a.data else None,
                      "images_per_s_per_gpu": {k: round(v) for k, v in rates.items()},
                      "weights_in_sync": in_sync, "allreduce_ms": allreduce}), flush=True)
    if world > 1:
        dist.barrier()
    if a.data:  # the loader's threads and workers, still feeding the endless batches, kept the process from
        os._exit(0)  # exiting (each run would end at its time limit); nothing is left to write
    if world > 1:
        dist.destroy_process_group()


def _weights_in_sync(model) -> bool:
    """Whether every rank holds the same weights (the gradients were summed): the largest and the smallest of the
    ranks' weight sums agree."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    hi, lo = total.clone(), total.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return bool(torch.isclose(hi, lo, rtol=1e-9, atol=0).item())


def _under_compiled_autograd(step):
    """``step`` with its backward traced and compiled by compiled autograd (torch 2.11 and later name it ``_enable``)."""
    from torch._dynamo import compiled_autograd

    enable = getattr(compiled_autograd, "_enable", None) or compiled_autograd.enable

    def run(x, y):
        with enable(torch.compile):
            step(x, y)

    return run


def _noop_hook(state, bucket):
    """A DDP comm hook that sends nothing: the bucket's gradients come back as they are, at once."""
    fut = torch.futures.Future()
    fut.set_result(bucket.buffer())
    return fut


def _sync_hook(state, bucket):
    """A DDP comm hook that all-reduces one element of the bucket, not the bucket: the ranks still meet at every
    bucket, but move almost no bytes."""
    buffer = bucket.buffer()
    work = dist.all_reduce(buffer[:1], async_op=True)
    return work.get_future().then(lambda _: buffer)


def _profile(run, path: str, cuda: bool, sync, steps: int = 12, warmup: int = 2) -> None:
    """A trace of ``run(steps, step)`` (which calls ``step()`` after each of its steps), written to ``path``."""
    from torch.profiler import ProfilerActivity, profile, schedule

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, schedule=schedule(wait=0, warmup=warmup, active=steps - warmup, repeat=1)) as prof:
        run(steps, prof.step)
        sync()
    prof.export_chrome_trace(path)


def _allreduce_ms(numel: int, device: torch.device, sync, repeats: int = 10) -> dict:
    """Milliseconds of one all-reduce of ``numel`` elements, fp32 and bf16, with nothing else running."""
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        t = torch.ones(numel, dtype=dtype, device=device)
        dist.all_reduce(t)  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            dist.all_reduce(t)
        sync()
        out[str(dtype).split(".")[-1]] = round(1000 * (time.perf_counter() - t0) / repeats, 2)
    return out


def _config(a, world: int):
    """``train``'s configuration for these options: the recipe's values, then the script's."""
    from imagenet_trainer.config import TrainConfig, load_recipe

    values = load_recipe(a.recipe) if a.recipe != "none" else {}
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    return TrainConfig(**values).replace(
        data=a.data, arch=a.arch, batch_size=a.batch * world, crop_size=a.size, loader=a.loader, cpu_share=a.cpu_share,
        workers=a.workers, backend="compile" if a.compile else "cudnn", cache="off", epochs=1, epoch_size=a.steps,
        prog_resize=None)


def _loader(cfg, device: torch.device, rank: int, world: int):
    """This rank's training loader, as ``train`` builds it (``--loader`` fixed: no probe)."""
    from imagenet_trainer.data.build import build_data

    return build_data(cfg, device, rank, world).train


def _trainer_phase(a, cfg, net, model, device_batches, device: torch.device, rank: int, world: int):
    """``a.steps`` steps of ``train_one_epoch`` on the loader's batches, with ``train``'s optimizer, schedule,
    loss, metrics and EMA for ``cfg``; returned as a function to time: ``run(n, on_step)`` takes ``n`` steps."""
    from imagenet_trainer.engine.distributed import DistContext
    from imagenet_trainer.engine.ema import ema_decay, make_ema
    from imagenet_trainer.engine.optim import Schedule, make_optimizer
    from imagenet_trainer.engine.trainer import StepContext, train_one_epoch

    class Steps:  # the next n batches, as an epoch; ``on_step()`` after each step
        def __init__(self, n: int, on_step=None):
            self.n, self.on_step = n, on_step

        def __len__(self):
            return self.n

        def __iter__(self):
            for batch in itertools.islice(device_batches, self.n):
                yield batch
                if self.on_step:  # the step of this batch has been launched
                    self.on_step()

    optimizer = make_optimizer(model, cfg)
    ema = make_ema(model, ema_decay(cfg.ema_half_life, a.steps)) if cfg.ema else None
    ctx = StepContext(device, torch.bfloat16, None, Schedule(cfg, a.steps), DistContext(rank, world, rank),
                      cfg.print_freq, 1, ema, model)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    def run(n: int = a.steps, on_step=None) -> None:
        train_one_epoch(net, Steps(n, on_step), criterion, optimizer, ctx, 1, 0)

    return run


def _endless(loader):
    for epoch in itertools.count():
        loader.batch_sampler.set_epoch(epoch)
        yield from loader


if __name__ == "__main__":
    main()
