"""``train(cfg)``: the whole training run, top to bottom.

Data -> model -> optimizer and schedule -> resume -> run folder -> epochs (train, validate, log,
checkpoint). Single process by default; under torchrun (or ``--ngpu``) each process is one rank of
a DDP job, and only rank 0 writes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import imagenet_trainer
from imagenet_trainer.config import PRECISIONS, TrainConfig
from imagenet_trainer.cuda_env import prefer_many_hardware_queues
from imagenet_trainer.data.augment import BatchAugment, Cutout, MixUpCutMix, RandomErasing
from imagenet_trainer.data.autoaugment import AutoAugment
from imagenet_trainer.data.build import build_data, load_indexes, steps_per_epoch
from imagenet_trainer.data import build as data_build
from imagenet_trainer.data.index import find_split_dirs
from imagenet_trainer.data.shards import is_shard_data
from imagenet_trainer.engine import checkpoint as ckpt_io
from imagenet_trainer.engine.distributed import DistContext, choose_ddp_graph, ddp_options, init_from_env, set_ddp_graph
from imagenet_trainer.engine.ema import ema_decay, make_ema
from imagenet_trainer.engine.guard import LossGuard
from imagenet_trainer.engine.loop import BadImages, Run, run_epochs, stream_layout
from imagenet_trainer.engine.optim import Schedule, make_optimizer
from imagenet_trainer.engine.probe import choose_for_run
from imagenet_trainer.engine.resolve import adapt_to_data, check_input_size, resolved_config
from imagenet_trainer.engine.runlog import RunLog, find_latest_checkpoint, log, new_run_dir
from imagenet_trainer.engine.trainer import StepContext, synthetic_step_rate
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model, resolve_name
from imagenet_trainer.models.weights import (check_published, freeze_body, head_names, load_into, published,
                                             read_weights)



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


def train(cfg: TrainConfig, nprocs: int = 1, filesystem=None) -> int:
    """Run training as configured; returns the process exit code (130 after Ctrl-C).

    ``nprocs`` > 1: as that many local DDP processes, one per GPU (``--ngpu``; ``engine.launch.launch``).
    ``filesystem``: an fsspec filesystem that opens the shard URLs of ``cfg.data`` (one with its own credentials or
    endpoint); under torchrun each process passes its own.
    """
    if filesystem is not None:
        if nprocs > 1:
            raise UsageError("train(filesystem=...) with nprocs > 1: start the processes with torchrun, each calling "
                             "train(cfg, filesystem=fs)")
        data_build.FILESYSTEM = filesystem
        try:
            return train(cfg)
        finally:
            data_build.FILESYSTEM = None
    if nprocs > 1:
        from imagenet_trainer.engine.launch import launch as launch_processes

        return launch_processes(cfg, nprocs)
    launch = time.perf_counter()
    prefer_many_hardware_queues()  # for library callers; the CLI has asked already
    device, dist, dtype = _setup(cfg)
    resume_path, state = _resume_state(cfg)
    if state is not None:  # the run's own batch, sizes, stem and normalization, unless given again
        cfg = cfg.replace(**resumed_settings(cfg, state.get("config") or {}))
    cfg = adapt_to_data(cfg, dist.world_size, verbose=dist.is_main, resuming=state is not None)
    cfg = cfg.replace(cudnn_benchmark=cfg.tune_cudnn())  # saved resolved, as the other automatic choices
    check_input_size(cfg)
    _check_run_folder(cfg, resume_path)
    if state is not None and (cfg.retrain or cfg.weights or cfg.pretrained) and dist.is_main:
        log("note: a resumed run goes on from its checkpoint's weights: --retrain, --weights and --pretrained are "
            "left out")
    train_index, num_classes = _check_data(cfg, state, resume_path)
    run_dir = resume_path.parent if resume_path else Path(cfg.output) if cfg.output else new_run_dir(
        resolve_name(cfg.arch))
    torch.manual_seed(cfg.seed)
    model = _build_model(cfg, num_classes, train_index.classes, device, fresh=state is None)
    head = head_names(model, num_classes)
    if cfg.freeze_backbone:
        freeze_body(model, head)
    elif cfg.freeze_epochs and not head:
        raise UsageError(f"--freeze-epochs: {cfg.arch} has no classifier head found to train alone; leave it out")
    # the run folder is made once the model's weights are read (a file or a download that fails leaves none),
    # and a folder that cannot be written is an error now, before the data is built
    runlog = RunLog(run_dir, enabled=dist.is_main)
    optimizer = make_optimizer(model, cfg, head)
    schedule = Schedule(cfg, steps_per_epoch(cfg, len(train_index)))
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    ema = make_ema(model, ema_decay(cfg.ema_half_life, cfg.epochs * schedule.steps_per_epoch)) if cfg.ema else None
    start_epoch, step, best = (_restore(state, resume_path, model, ema, optimizer, scaler, device, cfg.epochs)
                               if state else (1, 0, {"top1": -1.0}))
    cfg = _resolve_ddp_graph(cfg, model, device, dist)
    model, net = _wrap(model, cfg, device, dist)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    per_process = cfg.batch_size // dist.world_size // max(cfg.accum, 1)
    choice = choose_for_run(cfg, device, dist.rank, dist.world_size, lambda beside: synthetic_step_rate(
        net, criterion, device, dtype, per_process, cfg.crop_size, num_classes, beside=beside))
    data = build_data(cfg, device, dist.rank, dist.world_size, choice)
    cfg = resolved_config(cfg, device, dtype, data, schedule.base_lr, schedule.weight_decay, num_classes,
                          dist.world_size)
    runlog.write_config(cfg.to_dict() | {"run_dir": str(run_dir), "world_size": dist.world_size}, data.classes)
    runlog.truncate_after(start_epoch - 1)
    bad = BadImages(cfg.max_bad_images, runlog, run_dir)
    augment = batch_augment(cfg, num_classes, dist.rank, data.mean, data.std, naive=data.loader == "naive")
    ctx = StepContext(device, dtype, scaler, schedule, dist, cfg.print_freq, cfg.accum, ema, model, cfg.tta,
                      cfg.tta_shift, augment, bad,
                      cuda_graphs=cfg.backend == "compile" and cfg.compile_mode == "reduce-overhead",
                      guard=LossGuard(num_classes, schedule.warmup * schedule.steps_per_epoch, schedule.base_lr)
                      if cfg.guard else None, clip_grad=cfg.clip_grad)
    for b in data.bad:  # found while filling the train cache, which every process fills alike: said once
        bad(b.path, b.reason, announce=dist.is_main)
    for b in data.shard_bad:  # this process's val shard
        bad(b.path, b.reason)
    if dist.is_main:
        _banner(cfg, device, dtype, model, data, dist)
        log(f"run folder {run_dir} | ready after {time.perf_counter() - launch:.1f} s")
    skip = _part_way(state, cfg, data, dist) if state else 0
    return run_epochs(Run(cfg, model, net, ema, optimizer, scaler, criterion, data, ctx, runlog, run_dir, device,
                          dist, bad, augment, start_epoch, step, best,
                          times={"setup": time.perf_counter() - launch}, skip=skip,
                          augment_state=state.get("augment", {}) if skip else {}))


def _part_way(state: dict, cfg: TrainConfig, data, dist: DistContext) -> int:
    """The batches of the resumed epoch that a checkpoint written part-way through it has done (0: start it again,
    with a note, where this run's batches are not the ones it counted)."""
    done = state.get("batches", 0)
    if not done:
        return 0
    epoch, saved = state["epoch"] + 1, state.get("config") or {}
    batches = len(data.train)  # the resumed epoch's, whole: the loader skips nothing yet
    why = None
    if (saved.get("batch_size"), saved.get("accum", 1)) != (cfg.batch_size, cfg.accum):
        why = (f"its batch was {saved.get('batch_size')} in {saved.get('accum', 1)} parts, this run's is "
               f"{cfg.batch_size} in {cfg.accum}")
    elif done >= batches:
        why = f"this run's epoch has {batches} batches"
    if why is not None:
        if dist.is_main:
            log(f"note: the checkpoint is {done} batches into epoch {epoch}, but {why}: epoch {epoch} starts again")
        return 0
    if dist.is_main and dist.world_size > 1 and state.get("augment"):
        log(f"note: the batch augmentations of ranks other than 0 draw afresh for the rest of epoch {epoch} (a "
            "checkpoint holds rank 0's draws only)")
    layout = stream_layout(data.train, dist.world_size)
    if dist.is_main and layout is not None and state.get("layout") not in (None, layout):
        log(f"note: the checkpoint's shard stream was read by {_layout(state['layout'])}, this run's by "
            f"{_layout(layout)}: the rest of epoch "
            f"{epoch} reads another part of the shards than the stopped run would have (some images twice, some "
            "not); the epochs after it are as usual")
    return done


def _layout(layout: dict) -> str:
    return f"{layout['processes']} process(es) x {layout['workers']} loader workers"


def batch_augment(cfg: TrainConfig, num_classes: int, rank: int, mean, std,
                  naive: bool = False) -> BatchAugment | None:
    """The run's augmentations of whole batches on the device; each process draws its own (seed, rank). The naive
    loader applies the policy itself, per image, with the library's own transform."""
    def seed(kind: int) -> int:  # one independent stream per augmentation and process
        return int(np.random.SeedSequence([cfg.seed, rank, kind]).generate_state(1)[0])

    policy = AutoAugment(cfg.auto_augment, mean, std, seed(1)) if cfg.auto_augment and not naive else None
    augment = BatchAugment(
        Cutout(cfg.cutout, cfg.seed * 4099 + rank) if cfg.cutout else None,
        RandomErasing(cfg.reprob, cfg.remode, cfg.recount, seed(2)) if cfg.reprob else None,
        MixUpCutMix(cfg.mixup, cfg.cutmix, num_classes, cfg.mix_prob, cfg.mix_switch_prob, seed(3))
        if (cfg.mixup or cfg.cutmix) and cfg.mix_prob > 0 else None, policy)
    return augment if augment else None


RESUMED = ("batch_size", "weight_decay", "crop_size", "image_size", "small_stem", "normalize", "mean", "std")


def resumed_settings(cfg: TrainConfig, saved: dict) -> dict:
    """The settings a resumed run takes from its checkpoint's config rather than from the data again (a batch that
    fits other processes, the LR and weight decay chosen with it, the input recipe of the weights it started
    from): each one the user did not give."""
    keep = {k: saved[k] for k in RESUMED if k in saved and k not in cfg.typed}
    # the LR the data chose with that batch (a small set's), unless the user gives it, or its batch, now
    if saved.get("lr") is not None and not {"lr", "lr_per_256", "batch_size"} & set(cfg.typed):
        keep["lr"] = saved["lr"]
    return keep


def _resume_state(cfg: TrainConfig) -> tuple[Path | None, dict | None]:
    """``--resume``: the checkpoint's path and contents (None, None for a new run)."""
    path = _locate_resume(cfg)
    state = ckpt_io.safe_load(path, ckpt_io.CHECKPOINT_FORMAT) if path else None
    if state is not None and state["arch"] != resolve_name(cfg.arch):
        raise UsageError(f"{path}: was trained with --arch {state['arch']}, not {cfg.arch}")
    return path, state


def _check_run_folder(cfg: TrainConfig, resume_path: Path | None) -> None:
    """A new run does not write over a run kept in ``--output`` (its checkpoint, model files and logs), and a
    resumed one goes on in its own folder."""
    if resume_path is not None:
        if cfg.output and Path(cfg.output).resolve() != resume_path.parent.resolve():
            raise UsageError(f"--output {cfg.output}: a resumed run goes on in its checkpoint's folder, "
                             f"{resume_path.parent}; leave --output out or give that folder")
        return
    last = Path(cfg.output) / "checkpoint_last.pt" if cfg.output else None
    if last is not None and last.exists():
        raise UsageError(f"--output {cfg.output}: holds a run already ({last.name}); continue it with --resume "
                         f"{last} (or --resume auto), or give another --output")


def _check_data(cfg: TrainConfig, state: dict | None, resume_path: Path | None):
    """(train index, number of classes), after checking the run folder, the class count and a resumed run's
    classes against the data."""
    train_index = load_indexes(cfg)[0]
    _check_outside_data(cfg, resume_path.parent if resume_path else Path(cfg.output or "runs"))
    num_classes = cfg.num_classes or len(train_index.classes)
    if num_classes < len(train_index.classes):
        raise UsageError(f"--num-classes {num_classes}: the data has {len(train_index.classes)} classes")
    if state is not None:
        _check_classes(state, resume_path, train_index.classes, cfg.data, resuming=True)
    return train_index, num_classes


def _build_model(cfg: TrainConfig, num_classes: int, classes: list[str], device: torch.device,
                 fresh: bool = True) -> nn.Module:
    """The model on ``device``: with random weights, ``--retrain``'s, ``--weights``' or ``--pretrained``'s (and a new
    head for the data's classes); ``fresh`` False (resuming): as built, for the checkpoint's weights."""
    model = create_model(cfg.arch, num_classes, small_stem=cfg.small_stem == "on", drop_path=cfg.drop_path,
                         image_size=cfg.crop_size)
    if fresh and (cfg.weights or cfg.pretrained):
        start = read_weights(cfg.weights) if cfg.weights else published(cfg.arch)
        log(load_into(model, start, num_classes, classes))
    elif fresh and cfg.retrain:
        weights = ckpt_io.safe_load(cfg.retrain, ckpt_io.MODEL_FORMAT)
        if weights.get("arch") not in (None, resolve_name(cfg.arch)):
            raise UsageError(f"--retrain {cfg.retrain}: was trained with --arch {weights['arch']}, not {cfg.arch}")
        _check_classes(weights, cfg.retrain, classes, cfg.data, resuming=False)
        ckpt_io.load_weights(model, weights["state_dict"], cfg.retrain)
        log(f"retraining from {cfg.retrain} (epoch {weights.get('epoch')}), with a fresh optimizer")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    return model.to(device, memory_format=memory_format)


def _resolve_ddp_graph(cfg: TrainConfig, model: nn.Module, device: torch.device, dist: DistContext) -> TrainConfig:
    """``--ddp-graph auto`` for a compiled DDP run, before DDP wraps the model (a collective, on every rank)."""
    if cfg.backend != "compile" or not dist.enabled:
        return cfg
    graph, why = choose_ddp_graph(cfg.ddp_graph, sum(p.numel() for p in model.parameters()), device, dist)
    if why and dist.is_main:
        log(why)
    return cfg.replace(ddp_graph=graph)


def _setup(cfg: TrainConfig) -> tuple[torch.device, DistContext, torch.dtype | None]:
    """Check the run-wide options; the device (this rank's GPU under DDP), the process group, the autocast dtype."""
    cfg.check()
    resolve_name(cfg.arch)
    if cfg.pretrained:
        check_published(cfg.arch)
    if cfg.opt in ("lamb", "lars") and importlib.util.find_spec("timm") is None:
        raise UsageError(f"--opt {cfg.opt}: timm's {cfg.opt.upper()} needs timm: "
                         "pip install 'imagenet-trainer[timm]'")
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
    if is_shard_data(cfg.data):  # shards: no class folders to be mistaken for
        return
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
        what = ("resume it on the data it was trained on" if resuming
                else "retraining keeps a model's classes; to fine-tune it on these, use --weights FILE")
        raise UsageError(f"{path}: trained {count}{detail}; {what}")
    log(f"note: {path} was trained on other class names{where}; retraining maps its outputs to {data}'s "
        "classes in sorted order")


def _restore(state: dict, path: Path, model: nn.Module, ema, optimizer, scaler, device,
             epochs: int) -> tuple[int, int, dict]:
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
    ckpt_io.set_rng_state(state["rng"], device)
    where = (f"{state['batches']} batches into epoch {state['epoch'] + 1}" if state.get("batches")
             else f"after epoch {state['epoch']}")
    log(f"resuming {path} {where} (step {state['step']})")
    before = (state.get("config") or {}).get("epochs")
    if before is not None and before != epochs:
        log(f"note: --epochs {epochs}, where the checkpoint's run had {before}: the LR schedule, warmup and EMA now "
            f"span {epochs} epochs from the start, so the LR moves at once to where {epochs} epochs put it at step "
            f"{state['step']}")
    return state["epoch"] + 1, state["step"], state.get("best", {"top1": -1.0})


def ddp_grads_dtype(cfg: TrainConfig) -> torch.dtype:
    """``--ddp-grads``: the dtype in which DDP sums the processes' gradients.

    bf16 (DDP's ``bf16_compress_hook``) halves the bytes the all-reduce moves. Under bf16 autocast it loses
    little: each process's convolution and linear gradients come out of bf16 kernels, so they are bf16 values
    already, and the sum is rounded once. On 2x H100 joined by NVLink it gained nothing (2026-11-26: one
    all-reduce of ResNet-50's gradients takes 0.39 ms in fp32, against 47-ms steps); it is for GPUs joined by
    PCIe, and for machines joined by a network.
    """
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


