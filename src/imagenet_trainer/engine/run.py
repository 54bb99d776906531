"""``train(cfg)``: the whole training run, top to bottom.

Data -> model -> optimizer and schedule -> resume -> run folder -> epochs (train, validate, log,
checkpoint). Single process by default; under torchrun (or ``--ngpu``) each process is one rank of
a DDP job, and only rank 0 writes.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import shlex
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn as nn

import imagenet_trainer
from imagenet_trainer.config import TrainConfig, without_options
from imagenet_trainer.cuda_env import prefer_many_hardware_queues
from imagenet_trainer.data.augment import Cutout
from imagenet_trainer.data.build import build_data, load_indexes, steps_per_epoch
from imagenet_trainer.data.index import find_split_dirs
from imagenet_trainer.engine.ema import ema_decay, ema_weights, make_ema
from imagenet_trainer.engine import checkpoint as ckpt_io
from imagenet_trainer.engine.distributed import (DistContext, broadcast_buffers, choose_ddp_graph, cleanup, ddp_options,
                                                 init_from_env, set_ddp_graph)
from imagenet_trainer.engine.guard import LossGuard
from imagenet_trainer.engine.probe import choose_for_run
from imagenet_trainer.engine.resolve import adapt_to_data, resolved_config
from imagenet_trainer.engine.metrics import fmt_time, process_age
from imagenet_trainer.engine.optim import Schedule, make_optimizer
from imagenet_trainer.engine.runlog import RunLog, find_latest_checkpoint, new_run_dir
from imagenet_trainer.engine.trainer import StepContext, evaluate, synthetic_step_rate, train_one_epoch
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model, resolve_name

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
BACKENDS = ("cudnn", "native", "compile")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec}: unknown; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: no CUDA GPU is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {spec}: unsupported; use cpu, cuda or cuda:N")
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: there are {torch.cuda.device_count()} GPUs (cuda:0..)")
        device = torch.device("cuda", index)
    return device


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    if spec not in PRECISIONS:
        raise UsageError(f"--precision {spec}: unknown; choose one of {', '.join(PRECISIONS)}")
    if spec == "auto":
        spec = "bf16" if device.type == "cuda" else "fp32"
    if spec == "fp16" and device.type != "cuda":
        raise UsageError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[spec]


def model_record(model: nn.Module, cfg: TrainConfig, classes, mean, std, epoch: int, metrics: dict) -> dict:
    """The contents of a model file: weights plus what is needed to use them."""
    return {"format": ckpt_io.MODEL_FORMAT, "version": 1, "arch": resolve_name(cfg.arch),
            "num_classes": len(classes) if cfg.num_classes is None else cfg.num_classes,
            "classes": list(classes), "mean": list(mean), "std": list(std), "image_size": cfg.image_size,
            "crop_size": cfg.crop_size, "small_stem": cfg.small_stem == "on", "epoch": epoch, "metrics": metrics,
            "data": str(Path(cfg.data).resolve()),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def resume_command(cfg: TrainConfig, checkpoint: Path) -> str:
    """The command that continues this run from ``checkpoint``."""
    args = without_options(cfg.command or ["imagenet-trainer", "train", "--data", cfg.data], {"--resume"})
    return shlex.join(args + ["--resume", str(checkpoint)])


def _locate_resume(cfg: TrainConfig) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "auto":
        found = find_latest_checkpoint(cfg.output, resolve_name(cfg.arch))
        if found is None:
            log("note: --resume auto found no checkpoint_last.pt; starting a new run")
        return found
    return Path(cfg.resume)


def torchvision_version() -> str:
    """torchvision's version, without importing it or scanning every installed package's metadata
    (``importlib.metadata`` took 0.3-0.5 s of the start-up on the GPU machine)."""
    module = sys.modules.get("torchvision")
    if module is not None:
        return module.__version__
    try:
        text = (Path(importlib.util.find_spec("torchvision").origin).parent / "version.py").read_text()
        return re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M).group(1)
    except (AttributeError, OSError, TypeError):  # no spec, no file, no match
        return importlib.metadata.version("torchvision")


def _banner(cfg, device, dtype, model, data, dist: DistContext) -> None:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    params = sum(p.numel() for p in model.parameters())
    log(f"imagenet-trainer {imagenet_trainer.__version__} | torch {torch.__version__} | "
        f"torchvision {torchvision_version()} | {gpu}")
    log(f"data {cfg.data}: {len(data.train_index)} train / {len(data.val_index) if data.val_index else 0} val images, "
        f"{len(data.classes)} classes | {data.train.num_workers} workers | "
        f"loader {data.loader}{' (auto)' if cfg.loader == 'auto' and 'cache' not in data.loader else ''}")
    per = cfg.batch_size // dist.world_size
    log(f"model {resolve_name(cfg.arch)} ({params / 1e6:.1f}M params) | batch {cfg.batch_size} "
        f"({per} per process x {dist.world_size}) | {len(data.train)} steps/epoch | "
        f"precision {'fp32' if dtype is None else str(dtype).split('.')[-1]} | backend {cfg.backend}"
        + (f" | gradients summed in {str(ddp_grads_dtype(cfg)).split('.')[-1]}" if dist.enabled else "")
        + (f" | DDP graph {cfg.ddp_graph}" if dist.enabled and cfg.backend == "compile" else ""))


_clock = time.monotonic  # when epoch files are due (--save-interval); tests replace it


def crop_size_at(cfg: TrainConfig, epoch: int) -> int | None:
    """Progressive resizing: the crop side for 1-based ``epoch``, or None for the configured size.

    ``prog_resize = [start, end]`` grows the crop linearly from ``start`` x crop_size at the first
    epoch to the full size at ``end`` of the run (a share of --epochs), in steps of 8 px.
    """
    if not cfg.prog_resize:
        return None
    start, end = cfg.prog_resize
    last = max(1, round(end * cfg.epochs))
    t = 1.0 if last <= 1 else min(1.0, (epoch - 1) / (last - 1))
    size = cfg.crop_size * (start + (1 - start) * t)
    return max(8, min(cfg.crop_size, int(round(size / 8)) * 8))


def time_left(cfg: TrainConfig, epoch: int, train_s: float, eval_s: float | None) -> float:
    """Seconds of the run left after ``epoch``: each later epoch trains at this one's pace per pixel (progressive
    resizing changes the crop, and an epoch's time follows its pixels), and each validation still due takes
    ``eval_s`` (the last one's; None: none has run yet, not counted)."""
    side = crop_size_at(cfg, epoch) or cfg.crop_size
    left = 0.0
    for e in range(epoch + 1, cfg.epochs + 1):
        left += train_s * ((crop_size_at(cfg, e) or cfg.crop_size) / side) ** 2
        if eval_s is not None and _val_due(cfg, e):
            left += eval_s
    return left


def train(cfg: TrainConfig) -> int:
    """Run training as configured; returns the process exit code (130 after Ctrl-C)."""
    launch = time.perf_counter()
    prefer_many_hardware_queues()  # for library callers; the CLI has asked already
    device, dist, dtype = _setup(cfg)
    resume_path = _locate_resume(cfg)
    state = ckpt_io.safe_load(resume_path, ckpt_io.CHECKPOINT_FORMAT) if resume_path else None
    if state is not None and state["arch"] != resolve_name(cfg.arch):
        raise UsageError(f"{resume_path}: was trained with --arch {state['arch']}, not {cfg.arch}")

    cfg = adapt_to_data(cfg, dist.world_size, verbose=dist.is_main)
    cfg = cfg.replace(cudnn_benchmark=cfg.tune_cudnn())  # saved resolved, as the other automatic choices
    train_index = load_indexes(cfg)[0]
    _check_outside_data(cfg, resume_path.parent if resume_path else Path(cfg.output or "runs"))
    num_classes = cfg.num_classes or len(train_index.classes)
    if num_classes < len(train_index.classes):
        raise UsageError(f"--num-classes {num_classes}: the data has {len(train_index.classes)} classes")
    if state is not None:
        _check_classes(state, resume_path, train_index.classes, cfg.data, resuming=True)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, num_classes, small_stem=cfg.small_stem == "on")
    if cfg.retrain:
        weights = ckpt_io.safe_load(cfg.retrain, ckpt_io.MODEL_FORMAT)
        _check_classes(weights, cfg.retrain, train_index.classes, cfg.data, resuming=False)
        ckpt_io.load_weights(model, weights["state_dict"], cfg.retrain)
        log(f"retraining from {cfg.retrain} (epoch {weights.get('epoch')}), with a fresh optimizer")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    optimizer = make_optimizer(model, cfg)
    schedule = Schedule(cfg, steps_per_epoch(cfg, len(train_index)))
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    start_epoch, step, best = 1, 0, {"top1": -1.0}
    run_dir = Path(cfg.output) if cfg.output else None
    ema = make_ema(model, ema_decay(cfg.ema_half_life, cfg.epochs * schedule.steps_per_epoch)) if cfg.ema else None
    if state is not None:
        start_epoch, step, best = _restore(state, resume_path, model, ema, optimizer, scaler, device)
        run_dir = resume_path.parent
    if cfg.backend == "compile" and dist.enabled:  # before DDP wraps the model; a collective, on every rank
        graph, why = choose_ddp_graph(cfg.ddp_graph, sum(p.numel() for p in model.parameters()), device, dist)
        cfg = cfg.replace(ddp_graph=graph)
        if why and dist.is_main:
            log(why)
    model, net = _wrap(model, cfg, device, dist)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    per_process = cfg.batch_size // dist.world_size // max(cfg.accum, 1)
    choice = choose_for_run(cfg, device, dist.rank, dist.world_size, lambda beside: synthetic_step_rate(
        net, criterion, device, dtype, per_process, cfg.crop_size, num_classes, beside=beside))
    data = build_data(cfg, device, dist.rank, dist.world_size, choice)
    if run_dir is None:
        run_dir = new_run_dir(resolve_name(cfg.arch))
    runlog = RunLog(run_dir, enabled=dist.is_main)
    cfg = resolved_config(cfg, device, dtype, data, schedule.base_lr, schedule.weight_decay, num_classes,
                          dist.world_size)
    runlog.write_config(cfg.to_dict() | {"run_dir": str(run_dir), "world_size": dist.world_size}, data.classes)
    runlog.truncate_after(start_epoch - 1)

    bad_seen: set[str] = set()  # this process's unreadable files
    eval_s = None  # the last validation's seconds, for the run's time left

    def on_bad_image(path: str, reason: str) -> None:
        # Each file once: without the decoded cache a bad file comes back every epoch (and in each validation
        # pass), and counted each time, a few of them would end a long run at --max-bad-images.
        if path in bad_seen:
            return
        bad_seen.add(path)
        runlog.bad_image(path, reason)  # every process warns; the first one writes bad_images.txt
        if len(bad_seen) > cfg.max_bad_images:
            raise UsageError(f"{len(bad_seen)} unreadable images, more than --max-bad-images {cfg.max_bad_images}; "
                             f"see {run_dir / 'bad_images.txt'} and run `imagenet-trainer verify`")

    cutout = Cutout(cfg.cutout, cfg.seed * 4099 + dist.rank) if cfg.cutout else None
    ctx = StepContext(device, dtype, scaler, schedule, dist, cfg.print_freq, cfg.accum, ema, model, cfg.tta,
                      cfg.tta_shift, cutout, on_bad_image,
                      cuda_graphs=cfg.backend == "compile" and cfg.compile_mode == "reduce-overhead",
                      guard=LossGuard(num_classes, schedule.warmup * schedule.steps_per_epoch, schedule.base_lr)
                      if cfg.guard else None)
    for bad in data.bad:  # found while filling the cache
        on_bad_image(bad.path, bad.reason)
    if dist.is_main:
        _banner(cfg, device, dtype, model, data, dist)
        log(f"run folder {run_dir} | ready after {time.perf_counter() - launch:.1f} s")
    times = {"setup": time.perf_counter() - launch, "first step": 0.0, "train": 0.0, "eval": 0.0}
    writer = ckpt_io.BackgroundWriter()
    last_path = run_dir / "checkpoint_last.pt"
    last_save = _clock()
    # model_best.pt: the best-validated of the epochs whose files were written (--save-interval)
    saved = best.get("saved", {"top1": best["top1"], "epoch": best.get("epoch")})
    data.train.batch_sampler.crop_schedule = functools.partial(crop_size_at, cfg)
    data.train.batch_sampler.last_epoch = cfg.epochs  # no workers decoding past the run's end
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            data.train.batch_sampler.set_epoch(epoch)
            if cutout is not None:
                cutout.set_epoch(epoch)
            t0 = time.perf_counter()
            tr = train_one_epoch(net, data.train, criterion, optimizer, ctx, epoch, step,
                                 time_first_step=epoch == start_epoch)
            epoch_s, first_step = time.perf_counter() - t0, tr.pop("first_step_s", 0.0)
            times["train"] += epoch_s
            times["first step"] += first_step
            if tr["count"] == 0:  # every image of the epoch was skipped: nothing can be learned from this data
                raise UsageError(f"epoch {epoch}: no training image could be read ({len(bad_seen)} skipped as unreadable, "
                                 f"listed in {run_dir / 'bad_images.txt'}); check the data with "
                                 f"`imagenet-trainer verify {cfg.data}`")
            step = tr.pop("steps")
            if ctx.guard is not None:
                ctx.guard.end_epoch(epoch, tr["loss"], step)
            tr["crop_size"] = crop_size_at(cfg, epoch) or cfg.crop_size
            t0 = time.perf_counter()
            va = _validate(net, ema, data.val, ctx) if data.val is not None and _val_due(cfg, epoch) else None
            val_s = time.perf_counter() - t0
            times["eval"] += val_s
            eval_s = val_s if va is not None else eval_s
            if dist.is_main:  # the time left at this epoch's pace, without its compile
                log(_epoch_line(cfg, epoch, tr, va, time_left(cfg, epoch, epoch_s - first_step, eval_s)))
            metrics = {"train": tr, "val": va}
            head = _headline(va)
            if head and head["top1"] > best["top1"]:
                best = head | {"epoch": epoch}
            # Files every --save-interval seconds: a run of 1-second epochs (CIFAR on a GPU) would otherwise
            # write a model file per second and wait for the disk.
            now = _clock()
            save = epoch == cfg.epochs or now - last_save >= cfg.save_interval
            if save:
                last_save = now
                is_best = bool(head) and head["top1"] > saved["top1"] or data.val is None
                if is_best and head:
                    saved = {"top1": head["top1"], "epoch": epoch}
            logged = threading.Event()  # the plots wait for this epoch's metrics row
            if dist.is_main and save:
                record, full = _epoch_files(model, ema, optimizer, scaler, cfg, data, epoch, metrics, step,
                                            best | {"saved": saved}, device)
                writer.submit(lambda e=epoch, r=record, f=full, b=is_best, ev=logged:
                              _write_epoch(run_dir, e, r, f, b, cfg, runlog, ev))
            if dist.is_main:
                try:
                    runlog.epoch_row("train.log", epoch, tr)
                    if va:
                        runlog.epoch_row("test.log", epoch, va)
                    runlog.metrics({"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()},
                                    **({f"val_{k}": v for k, v in va.items()} if va else {})})
                finally:
                    logged.set()
        writer.close()
    except KeyboardInterrupt:
        writer.close()
        if dist.is_main:
            log("\ninterrupted.")
            if last_path.exists():
                log(f"the last complete checkpoint is {last_path}; resume with:\n  {resume_command(cfg, last_path)}")
            else:
                log("no epoch had finished, so there is nothing to resume")
        return 130
    finally:
        writer.close()
        runlog.close()
        cleanup(dist)
    if dist.is_main:
        times["checkpoint waits"] = writer.waited
        log(_time_split(data.timings, times))
        if best["top1"] >= 0:
            which = ", the EMA's weights" if best.get("model") == "EMA" else ""
            line = (f"best val top-1 error {100 - best['top1']:.2f}%  top-5 error {100 - best['top5']:.2f}%  "
                    f"(epoch {best['epoch']}{which})")
            if saved.get("epoch") != best["epoch"]:  # that epoch ended between two saves
                line += (f"; model_best.pt holds epoch {saved['epoch']} ({100 - saved['top1']:.2f}%), the best "
                         "of the saved epochs (--save-interval)")
            print(f"{line}  run folder {run_dir}")
        else:
            why = "no validation folder" if data.val is None else "no val image could be read: see bad_images.txt"
            print(f"trained {cfg.epochs} epochs ({why})  run folder {run_dir}")
    return 0


def _setup(cfg: TrainConfig) -> tuple[torch.device, DistContext, torch.dtype | None]:
    """Check the run-wide options; the device (this rank's GPU under DDP), the process group, the autocast dtype."""
    if cfg.backend not in BACKENDS:
        raise UsageError(f"--backend {cfg.backend}: unknown; choose one of {', '.join(BACKENDS)}")
    cfg.check()
    resolve_name(cfg.arch)
    device = resolve_device(cfg.device)
    dist = init_from_env(device.type, cfg.dist_timeout)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device, dist, resolve_precision(cfg.precision, device)


def _check_outside_data(cfg: TrainConfig, run_dir: Path) -> None:
    """A run folder inside train/ or val/ would be taken for a class folder by the next run (its charts are
    PNG images): an error naming both."""
    where = run_dir.resolve()
    for split in find_split_dirs(cfg.data, cfg.val_dir):
        if split is not None and where.is_relative_to(split.resolve()):
            what = (f"--resume {cfg.resume}: its run folder {run_dir} is" if cfg.resume else
                    f"--output {run_dir}:" if cfg.output else f"runs/, the default run folder, is here ({where}),")
            raise UsageError(f"{what} inside the data's {split}, where the next run would take it for a class; "
                             "choose --output outside train/ and val/")


def _check_classes(record: dict, path, classes: list[str], data: str, resuming: bool) -> None:
    """A model file or checkpoint used on data whose class folders are not the ones it was trained on: an error
    when resuming (the labels would silently mean other classes), or when the count differs (the model's last
    layer does not fit); a note when retraining on as many classes under other names."""
    known = list(record.get("classes") or [])
    if not known or known == list(classes):
        return
    where = f" (from {record['data']})" if record.get("data") else ""
    if resuming or len(known) != len(classes):
        other = next((c for c in classes if c not in known), None)
        detail = f"; its {other!r} is not one of them" if other else ""
        count = (f"on {len(known)} classes{where}, but {data} has {len(classes)}" if len(known) != len(classes)
                 else f"on other classes{where} than {data}'s")
        what = "resume it on the data it was trained on" if resuming else "retraining keeps a model's classes"
        raise UsageError(f"{path}: trained {count}{detail}; {what}")
    log(f"note: {path} was trained on other class names{where}; retraining maps its outputs to {data}'s "
        "classes in sorted order")


def _restore(state: dict, path: Path, model: nn.Module, ema, optimizer, scaler, device) -> tuple[int, int, dict]:
    """Load a checkpoint's weights, EMA, optimizer, scaler and RNG; (first epoch to run, step, best)."""
    ckpt_io.load_weights(model, state["state_dict"], path)
    if ema is not None and state.get("ema"):
        ema.load_state_dict(state["ema"])
    kernels = [(g.get("fused"), g.get("foreach")) for g in optimizer.param_groups]
    optimizer.load_state_dict(state["optimizer"])
    for g, (fused, foreach) in zip(optimizer.param_groups, kernels):  # this device's, not the saving run's
        g["fused"], g["foreach"] = fused, foreach
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"], device)
    log(f"resuming {path} after epoch {state['epoch']} (step {state['step']})")
    return state["epoch"] + 1, state["step"], state.get("best", {"top1": -1.0})


def ddp_grads_dtype(cfg: TrainConfig) -> torch.dtype:
    """``--ddp-grads``: the dtype in which DDP sums the processes' gradients.

    bf16 (DDP's ``bf16_compress_hook``) halves the bytes the all-reduce moves. Under bf16 autocast it loses
    little: each process's convolution and linear gradients come out of bf16 kernels, so they are bf16 values
    already, and the sum is rounded once. On 2x H100 joined by NVLink it gained nothing (2026-11-26: one
    all-reduce of ResNet-50's gradients takes 0.39 ms in fp32, against 47-ms steps); it is for GPUs joined by
    PCIe, and for machines joined by a network.
    """
    if cfg.ddp_grads not in ("bf16", "fp32"):
        raise UsageError(f"--ddp-grads {cfg.ddp_grads}: choose fp32 or bf16")
    return torch.bfloat16 if cfg.ddp_grads == "bf16" else torch.float32


def _wrap(model: nn.Module, cfg: TrainConfig, device: torch.device, dist: DistContext) -> tuple[nn.Module, nn.Module]:
    """(model, net): the model (sync-BN converted when asked) and what the steps run (DDP, compiled)."""
    torch.backends.cudnn.enabled = cfg.backend != "native"
    torch.backends.cudnn.benchmark = cfg.tune_cudnn() and cfg.backend != "native"
    if cfg.sync_bn:
        if device.type != "cuda":
            raise UsageError("--sync-bn needs GPUs (torch's SyncBatchNorm runs on CUDA only)")
        if dist.enabled:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                  **ddp_options(cfg.accum))
        if ddp_grads_dtype(cfg) == torch.bfloat16:
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

            net.register_comm_hook(None, default_hooks.bf16_compress_hook)
    if cfg.backend == "compile":
        if dist.enabled:
            set_ddp_graph(cfg.ddp_graph)
        net = torch.compile(net, mode=None if cfg.compile_mode == "default" else cfg.compile_mode)
    return model, net


def _epoch_files(model, ema, optimizer, scaler, cfg: TrainConfig, data, epoch: int, metrics: dict, step: int,
                 best: dict, device: torch.device) -> tuple[dict, dict]:
    """(model file, full checkpoint) of this epoch, as CPU copies the writer thread can save while training goes on."""
    record = model_record(model, cfg, data.classes, data.mean, data.std, epoch, metrics)
    if ema is not None:
        record["ema_state_dict"] = ema_weights(ema)
    full = record | {"format": ckpt_io.CHECKPOINT_FORMAT, "optimizer": optimizer.state_dict(),
                     "scaler": scaler.state_dict() if scaler else {}, "rng": _rng_state(device),
                     "ema": ema.state_dict() if ema is not None else {},
                     "step": step, "best": best, "config": cfg.to_dict()}
    full = ckpt_io.cpu_copy(full)
    return {k: v for k, v in full.items() if k in record} | {"format": ckpt_io.MODEL_FORMAT}, full


def _val_due(cfg: TrainConfig, epoch: int) -> bool:
    """``--val-every N``: every N-th epoch and the last one; 0 = the last one only."""
    return epoch == cfg.epochs or (cfg.val_every > 0 and epoch % cfg.val_every == 0)


def _validate(net: nn.Module, ema, loader, ctx: StepContext) -> dict | None:
    """Val metrics of the model (and of its EMA), or None when no val image could be read (the run goes on:
    a broken val folder should not cost the training, and a 100% error would be a figure of nothing).

    Every rank first takes rank 0's batch-norm statistics (DDP does not broadcast them at each step: see
    ``distributed.ddp_options``), so that all ranks evaluate the model that rank 0 saves.
    """
    broadcast_buffers([net] + ([ema.module] if ema is not None else []), ctx.dist)
    va = evaluate(net, loader, ctx)
    if va["count"] == 0:
        if ctx.dist.is_main:
            log("warning: no val image could be read (see bad_images.txt); this epoch has no validation result")
        return None
    if ema is not None:
        va_ema = evaluate(ema.module, loader, ctx, label="val (EMA)")
        va |= {f"ema_{k}": v for k, v in va_ema.items() if k in ("top1", "top5", "loss")}
    return va


def _headline(va: dict | None) -> dict | None:
    """The run's model and its val figures: with an EMA, the EMA (the model files' users get it by default,
    ``inference.load_model_file``), else the weights. Over twelve 100-epoch CIFAR-10 runs (2026-11-26 and -27) the
    EMA's top-1 was the higher in 8, by 0.05 points on the mean, and ranged 93.02-93.35% against 92.94-93.32%."""
    if not va:
        return None
    if "ema_top1" in va:
        return {"top1": va["ema_top1"], "top5": va["ema_top5"], "model": "EMA"}
    return {"top1": va["top1"], "top5": va["top5"], "model": "weights"}


def _epoch_line(cfg: TrainConfig, epoch: int, tr: dict, va: dict | None, left: float = 0.0) -> str:
    crop = f" (crop {tr['crop_size']})" if cfg.prog_resize else ""
    line = (f"epoch {epoch}/{cfg.epochs}{crop}  train top1-err {100 - tr['top1']:.2f}  "
            f"top5-err {100 - tr['top5']:.2f}  loss {tr['loss']:.4f}  {tr['images_per_s']:,.0f} img/s")
    if va:
        line += f" | val top1-err {100 - va['top1']:.2f}  top5-err {100 - va['top5']:.2f}  loss {va['loss']:.4f}"
    if va and "ema_top1" in va:
        line += f" | EMA top1-err {100 - va['ema_top1']:.2f}"
    if epoch < cfg.epochs:
        line += f" | run ETA {fmt_time(left)}"
    return line


def _write_epoch(run_dir: Path, epoch: int, record: dict, full: dict, is_best: bool, cfg: TrainConfig,
                 runlog: RunLog, logged: threading.Event) -> None:
    """The epoch's files (on the writer thread): model_XX.pt, model_best.pt, checkpoint_last.pt, then the
    plots, once the main thread has written the epoch's metrics (``logged``)."""
    model_file = run_dir / f"model_{epoch:02d}.pt"
    ckpt_io.atomic_save(record, model_file)
    if is_best:  # the same bytes: a second name for the file, not a second save
        ckpt_io.atomic_link(model_file, run_dir / "model_best.pt", record)
    ckpt_io.atomic_save(full, run_dir / "checkpoint_last.pt")
    _prune(run_dir, cfg.keep_checkpoints)
    if logged.wait(timeout=60):
        runlog.plots(final=epoch == cfg.epochs)


def _time_split(data_times: dict, times: dict) -> str:
    """One line: where the wall-clock went."""
    parts = {"index": data_times.get("index", 0.0)}
    if "cache" in data_times:
        parts["decode to cache"] = data_times["cache"]
    if "probe" in data_times:
        parts["loader probe (its compile/autotune included)"] = data_times["probe"]
    parts["other setup"] = max(0.0, times["setup"] - sum(parts.values()))
    parts["first step (compile/autotune)"] = times["first step"]
    parts["train"] = times["train"] - times["first step"]
    parts["eval"] = times["eval"]
    parts["checkpoint waits"] = times.get("checkpoint waits", 0.0)
    age = process_age()
    total = f" | since the process started {age:.1f} s" if age is not None else ""
    return "time: " + " | ".join(f"{k} {v:.1f} s" for k, v in parts.items()) + total


def _prune(run_dir: Path, keep: int | None) -> None:
    """Keep only the newest ``keep`` model_XX.pt files."""
    if not keep:
        return
    files = sorted(run_dir.glob("model_[0-9]*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for p in files[:-keep]:
        p.unlink(missing_ok=True)
