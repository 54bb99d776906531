"""The epochs of a training run: train, validate, log, save; Ctrl-C and the closing summary.

``engine.run.train`` builds a ``Run`` (model, optimizer, data, run folder...) and hands it to ``run_epochs``.
"""

from __future__ import annotations

import functools
import shlex
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from imagenet_trainer.config import TrainConfig, without_options
from imagenet_trainer.data.build import crop_size_at
from imagenet_trainer.engine import checkpoint as ckpt_io
from imagenet_trainer.engine.distributed import DistContext, broadcast_buffers, cleanup
from imagenet_trainer.engine.ema import ema_weights
from imagenet_trainer.engine.metrics import fmt_time, process_age
from imagenet_trainer.engine.runlog import RunLog, log
from imagenet_trainer.engine.trainer import StepContext, evaluate, train_one_epoch
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import resolve_name


def model_record(model: nn.Module, cfg: TrainConfig, classes, mean, std, epoch: int, metrics: dict) -> dict:
    """The contents of a model file: weights plus what is needed to use them."""
    return {"format": ckpt_io.MODEL_FORMAT, "version": 1, "arch": resolve_name(cfg.arch),
            "num_classes": len(classes) if cfg.num_classes is None else cfg.num_classes,
            "classes": list(classes), "mean": list(mean), "std": list(std), "image_size": cfg.image_size,
            "crop_size": cfg.crop_size, "small_stem": cfg.small_stem == "on", "epoch": epoch, "metrics": metrics,
            "tta": cfg.tta, "tta_shift": cfg.tta_shift,  # how its val figures were made: evaluate repeats them
            "data": str(Path(cfg.data).resolve()),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def resume_command(cfg: TrainConfig, checkpoint: Path) -> str:
    """The command that continues this run from ``checkpoint``: ``imagenet-trainer ...`` where that is on the
    PATH, else this Python's ``-m imagenet_trainer ...`` (after ``make demo`` the command is in .venv/bin)."""
    args = without_options(cfg.command or ["imagenet-trainer", "train", "--data", cfg.data], {"--resume"})
    program = ["imagenet-trainer"] if shutil.which("imagenet-trainer") else [sys.executable, "-m", "imagenet_trainer"]
    return shlex.join(program + args[1:] + ["--resume", str(checkpoint)])


_clock = time.monotonic  # when epoch files are due (--save-interval); tests replace it


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


class BadImages:
    """This process's unreadable files, each logged once: without the decoded cache a bad file comes back every
    epoch (and in each validation pass), and counted each time, a few would end a long run at --max-bad-images."""

    def __init__(self, limit: int, runlog: RunLog, run_dir: Path):
        self.limit, self.runlog, self.run_dir = limit, runlog, run_dir
        self.seen: set[str] = set()

    def __call__(self, path: str, reason: str, announce: bool = True) -> None:
        """``announce``: say so on stderr (every process's own files; those all processes found, once)."""
        if path in self.seen:
            return
        self.seen.add(path)
        self.runlog.bad_image(path, reason, announce)  # the first process writes bad_images.txt
        if len(self.seen) > self.limit:
            raise UsageError(f"{len(self.seen)} unreadable images, more than --max-bad-images {self.limit}; "
                             f"see {self.run_dir / 'bad_images.txt'} and run `imagenet-trainer verify`")


@dataclass
class Run:
    """What the epochs of one run use (``engine.run.train`` builds it)."""

    cfg: TrainConfig
    model: nn.Module  # the plain model, whose weights are saved
    net: nn.Module  # what the steps run: the model under DDP and torch.compile
    ema: object  # engine.ema.EMA or None
    optimizer: torch.optim.Optimizer
    scaler: object  # torch.amp.GradScaler or None
    criterion: nn.Module
    data: object  # data.build.DataBundle
    ctx: StepContext
    runlog: RunLog
    run_dir: Path
    device: torch.device
    dist: DistContext
    bad: BadImages
    augment: object = None  # data.augment.BatchAugment or None
    start_epoch: int = 1
    step: int = 0  # optimizer steps done
    best: dict = field(default_factory=lambda: {"top1": -1.0})  # the best validated epoch
    times: dict = field(default_factory=dict)  # seconds: setup, first step, train, eval
    skip: int = 0  # batches of the start epoch done before (a checkpoint written part-way through it)
    augment_state: dict = field(default_factory=dict)  # the batch augmentations' generators at that point


def run_epochs(run: Run) -> int:
    """Train ``run`` from its start epoch to the end; the exit code (130 after Ctrl-C)."""
    cfg, dist = run.cfg, run.dist
    run.times |= {"first step": 0.0, "train": 0.0, "eval": 0.0}
    writer = ckpt_io.BackgroundWriter()
    last_path = run.run_dir / "checkpoint_last.pt"
    # model_best.pt: the best-validated of the epochs whose files were written (--save-interval)
    saves = {"last": _clock(), "best": run.best.get("saved", {"top1": run.best["top1"], "epoch": run.best.get("epoch")}),
             "eval_s": None, "finished": run.start_epoch - 1, "saved": run.start_epoch - 1,
             "part": (run.start_epoch, run.skip) if run.skip else None}
    saves["last_any"] = saves["last"]  # the last checkpoint_last.pt, at an epoch's end or part-way through one
    try:
        for epoch in range(run.start_epoch, cfg.epochs + 1):
            _one_epoch(run, epoch, writer, saves)
        writer.close()
    except KeyboardInterrupt:
        writer.close()
        if dist.is_main:
            log("\n" + _interrupted(cfg, last_path, saves))
        return 130
    finally:
        writer.close()
        run.runlog.close()
        cleanup(dist)
    if dist.is_main:
        run.times["checkpoint waits"] = writer.waited
        log(_time_split(run.data.timings, run.times))
        print(_result_line(run, saves["best"]))
    return 0


def _one_epoch(run: Run, epoch: int, writer: ckpt_io.BackgroundWriter, saves: dict) -> None:
    """Train and validate one epoch, log it, and save its files when due."""
    cfg, data, dist = run.cfg, run.data, run.dist
    skip = run.skip if epoch == run.start_epoch else 0
    data.train.batch_sampler.set_epoch(epoch, skip)
    if run.augment is not None:
        run.augment.set_epoch(epoch)
        if skip and dist.rank == 0:
            run.augment.load_state_dict(run.augment_state)
        elif skip:  # only rank 0's generators were saved: the others draw afresh for the rest of this epoch
            run.augment.set_epoch(epoch + 1_000_003 * skip)
    if dist.is_main and cfg.save_mid_epoch > 0:
        run.ctx.after_step = functools.partial(_save_part_way, run, epoch, len(data.train) + skip, writer, saves)
    t0 = time.perf_counter()
    tr = train_one_epoch(run.net, data.train, run.criterion, run.optimizer, run.ctx, epoch, run.step,
                         time_first_step=epoch == run.start_epoch, skipped=skip)
    epoch_s, first_step = time.perf_counter() - t0, tr.pop("first_step_s", 0.0)
    run.times["train"] += epoch_s
    run.times["first step"] += first_step
    if tr["count"] == 0:  # every image of the epoch was skipped: nothing can be learned from this data
        raise UsageError(f"epoch {epoch}: no training image could be read ({len(run.bad.seen)} skipped as "
                         f"unreadable, listed in {run.run_dir / 'bad_images.txt'}); check the data with "
                         f"`imagenet-trainer verify {cfg.data}`")
    run.step = tr.pop("steps")
    if run.ctx.guard is not None:
        run.ctx.guard.end_epoch(epoch, tr["loss"], run.step)
    tr["crop_size"] = crop_size_at(cfg, epoch) or cfg.crop_size
    t0 = time.perf_counter()
    va = _validate(run.net, run.ema, data.val, run.ctx) if data.val is not None and _val_due(cfg, epoch) else None
    val_s = time.perf_counter() - t0
    run.times["eval"] += val_s
    saves["eval_s"] = val_s if va is not None else saves["eval_s"]
    if dist.is_main:  # the time left at this epoch's pace, without its compile
        log(_epoch_line(cfg, epoch, tr, va, time_left(cfg, epoch, epoch_s - first_step, saves["eval_s"])))
    head = _headline(va)
    if head and head["top1"] > run.best["top1"]:
        run.best = head | {"epoch": epoch}
    # Files every --save-interval seconds: a run of 1-second epochs (CIFAR on a GPU) would otherwise
    # write a model file per second and wait for the disk.
    now = _clock()
    save = epoch == cfg.epochs or now - saves["last"] >= cfg.save_interval
    is_best = False
    saves["finished"] = epoch
    if save:
        saves["last"], saves["last_any"], saves["saved"], saves["part"] = now, now, epoch, None
        is_best = bool(head) and head["top1"] > saves["best"]["top1"] or data.val is None
        if is_best and head:
            saves["best"] = {"top1": head["top1"], "epoch": epoch}
    logged = threading.Event()  # the plots wait for this epoch's metrics row
    if dist.is_main and save:
        record, full = _epoch_files(run.model, run.ema, run.optimizer, run.scaler, cfg, data, epoch,
                                    {"train": tr, "val": va}, run.step, run.best | {"saved": saves["best"]}, run.device)
        writer.submit(lambda e=epoch, r=record, f=full, b=is_best, ev=logged:
                      _write_epoch(run.run_dir, e, r, f, b, cfg, run.runlog, ev))
    if dist.is_main:
        try:
            run.runlog.epoch_row("train.log", epoch, tr)
            if va:
                run.runlog.epoch_row("test.log", epoch, va)
            run.runlog.metrics({"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()},
                                **({f"val_{k}": v for k, v in va.items()} if va else {})})
        finally:
            logged.set()


def _save_part_way(run: Run, epoch: int, batches: int, writer: ckpt_io.BackgroundWriter, saves: dict, done: int,
                   step: int) -> None:
    """After each optimizer step (``StepContext.after_step``, main process): checkpoint_last.pt once
    ``--save-mid-epoch`` seconds have passed since the last one, holding the batches of the epoch done, so that a
    run stopped part-way through a long epoch (ImageNet-21k, a slow disk, a preempted job) resumes there rather
    than at the epoch's start.

    Only this process saves and nothing is exchanged: the processes of a DDP run move in step, so its batch
    count is theirs. The weights, EMA and optimizer state are copied to the CPU, which waits for the GPU once per
    save.
    """
    now = _clock()
    if done >= batches or now - saves["last_any"] < run.cfg.save_mid_epoch:
        return
    _, full = _epoch_files(run.model, run.ema, run.optimizer, run.scaler, run.cfg, run.data, epoch - 1,
                           {"train": None, "val": None}, step, run.best | {"saved": saves["best"]}, run.device)
    full |= {"batches": done, "augment": ckpt_io.cpu_copy(run.augment.state_dict()) if run.augment else {},
             "layout": stream_layout(run.data.train, run.dist.world_size)}
    writer.submit(lambda f=full: ckpt_io.atomic_save(f, run.run_dir / "checkpoint_last.pt"))
    saves["last_any"], saves["part"] = now, (epoch, done)  # (a Ctrl-C before this names the previous file)


def stream_layout(loader, world_size: int) -> dict | None:
    """What a shard stream's order depends on besides (seed, epoch): its processes and loader workers (None for
    a folder, whose order does not)."""
    if not getattr(loader.batch_sampler, "batches_in_epoch", None):
        return None
    return {"processes": world_size, "workers": loader.num_workers}


def _interrupted(cfg: TrainConfig, last_path: Path, saves: dict) -> str:
    """What Ctrl-C left: the checkpoint to resume from and the command, and any finished epoch not saved."""
    finished, saved = saves["finished"], saves["saved"]
    unsaved = (f"epoch {finished} finished" if finished == saved + 1 else f"epochs {saved + 1}-{finished} finished") + \
        f", but no checkpoint was due yet (--save-interval {cfg.save_interval:g} s; 0 saves every epoch)"
    lines = ["interrupted."]
    if last_path.exists() and saves.get("part"):
        epoch, done = saves["part"]
        lines.append(f"the last complete checkpoint is {last_path} (epoch {epoch}, {done} batches in); resume "
                     f"with:\n  {resume_command(cfg, last_path)}")
    elif last_path.exists():
        lines.append(f"the last complete checkpoint is {last_path} (after epoch {saved}); resume with:\n"
                     f"  {resume_command(cfg, last_path)}")
        if finished > saved:
            lines.append(f"({unsaved}: a resumed run trains {'it' if finished == saved + 1 else 'them'} again)")
    elif finished > 0:
        lines.append(f"{unsaved}, so there is nothing to resume from")
    else:
        lines.append("no epoch had finished, so there is nothing to resume")
    return "\n".join(lines)


def _result_line(run: Run, saved: dict) -> str:
    """The run's closing line on stdout: its best val error, and which epoch model_best.pt holds."""
    best = run.best
    if best["top1"] < 0:
        why = "no validation folder" if run.data.val is None else "no val image could be read: see bad_images.txt"
        return f"trained {run.cfg.epochs} epochs ({why})  run folder {run.run_dir}"
    which = ", the EMA's weights" if best.get("model") == "EMA" else ""
    line = (f"best val top-1 error {100 - best['top1']:.2f}%  top-5 error {100 - best['top5']:.2f}%  "
            f"(epoch {best['epoch']}{which})")
    if saved.get("epoch") != best["epoch"]:  # that epoch ended between two saves
        line += (f"; model_best.pt holds epoch {saved['epoch']} ({100 - saved['top1']:.2f}%), the best "
                 "of the saved epochs (--save-interval)")
    return f"{line}  run folder {run.run_dir}"


def _epoch_files(model, ema, optimizer, scaler, cfg: TrainConfig, data, epoch: int, metrics: dict, step: int,
                 best: dict, device: torch.device) -> tuple[dict, dict]:
    """(model file, full checkpoint) of this epoch, as CPU copies the writer thread can save while training goes on."""
    record = model_record(model, cfg, data.classes, data.mean, data.std, epoch, metrics)
    if ema is not None:
        record["ema_state_dict"] = ema_weights(ema)
    full = record | {"format": ckpt_io.CHECKPOINT_FORMAT, "optimizer": optimizer.state_dict(),
                     "scaler": scaler.state_dict() if scaler else {}, "rng": ckpt_io.rng_state(device),
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
