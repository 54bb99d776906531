"""Where each training step's GPU time goes, in every rank, from CUDA events (no profiler, no host sync).

The profiler slowed the compiled 2-GPU pair's steps from 48 to 70-78 ms (2x H200, 2026-11-26), so it could not show what
holds the pair below ``ddp_ceiling.py``'s steps. This records four CUDA events per step on the training stream,
which cost next to nothing: when the step's forward is queued (``start``), after the loss (``fwd``), when the
optimizer step begins (``bwd``: the backward, with DDP's last all-reduce waited for) and after it (``opt``).
``rest`` is from ``opt`` to the next step's ``start`` (the EMA, the metrics, the wait for the next batch's
event, and any time the GPU sat idle). ``behind`` is the share of steps at whose start the GPU had already
finished the previous optimizer step: the host was late and the GPU idle. Under DDP the forward and the backward
include the time a GPU waits for the other rank (the buffers' broadcast, the all-reduces).

Wraps ``engine.run.train_one_epoch``'s model, criterion and optimizer, then runs the CLI with the given arguments
(``--ngpu N`` forks the ranks from this process, so they carry the wrappers). Steps from ``--from`` to ``--to``
(shares of the epoch's batches) are timed; each rank prints one JSON line to stderr, ``[steps] {...}``: the
median and the mean of each phase in ms, the host's mean period per step, and ``behind``. With the hybrid loader
each rank also prints ``[split] {...}`` at the epoch's end: its split controller's windows (share, rate, waits).

Switches try changes on the run without editing the code: ``--fused-sgd`` (torch's fused SGD kernel; shipped
since commit a3bb3e3, so the switch now changes nothing on a GPU), ``--foreach-sgd`` (the foreach kernels, as before),
and ``--ddp-option KEY=VALUE`` (repeatable; a keyword for DDP on top of ``engine.distributed.ddp_options``, e.g.
``broadcast_buffers=True`` for DDP's per-forward buffer broadcast that commit 20281ca turned off,
``gradient_as_bucket_view=False --ddp-option static_graph=False`` for DDP's copies as before commit 56e5bb6,
``bucket_cap_mb=100``; values are read as Python literals).
``--ddp-alone`` wraps a one-process run's model in DDP over a process group of that one process (NCCL on a GPU,
gloo on the CPU): DDP's own work in each step (its hooks, bucket copies, the compiled graph split at its buckets)
without another rank to wait for or to exchange with, to tell that apart from what the pair's exchange costs.

``--rank-cores shared|split`` keeps each rank's own threads (training,
autograd, pin-memory, NCCL's) on the cores the CPU loader's workers are kept off (``loader.worker_cores``: cores
0-3 of 32 for two compiled ranks): ``shared``, both ranks on all of them; ``split``, each rank on its own slice. As
shipped the ranks may run on any core, the workers' too, where a rank's thread can wait behind a (niced) worker.

Usage: python benchmarks/step_events.py [--from 0.5] [--to 0.9] [--foreach-sgd] [--ddp-option K=V]
       [--rank-cores shared|split] -- train ...
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

import imagenet_trainer.cli as cli
import imagenet_trainer.engine.run as run

PHASES = ("fwd", "bwd", "opt", "rest")


class StepEvents:
    """CUDA events at the phases of steps ``first`` to ``last`` (1-based, counted by forwards)."""

    def __init__(self, first: int, last: int):
        self.first, self.last = first, last
        self.i = 0
        self.marks: list[dict] = []  # per step: phase -> event, and the host's time at "start"
        self.behind = 0
        self.done = False

    def _on(self) -> bool:
        return not self.done and self.first <= self.i <= self.last + 1

    def start(self) -> None:
        self.i += 1
        if not self._on():
            return
        if self.marks and "opt" in self.marks[-1]:
            self.behind += bool(self.marks[-1]["opt"].query())  # the GPU had finished: the host came late
        if self.i == self.last + 1:  # the window's end: one "start" more, then the figures
            self.marks.append({"start": self._event(), "host": time.perf_counter()})
            self.report()
            return
        self.marks.append({"start": self._event(), "host": time.perf_counter()})

    def mark(self, phase: str) -> None:
        if self._on() and self.marks and self.i <= self.last:
            self.marks[-1][phase] = self._event()

    @staticmethod
    def _event() -> torch.cuda.Event:
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        return e

    def report(self) -> None:
        self.done = True
        torch.cuda.synchronize()
        steps = [m for m in self.marks[:-1] if all(p in m for p in ("fwd", "bwd", "opt"))]
        ms: dict[str, list[float]] = {p: [] for p in (*PHASES, "total")}
        for m, nxt in zip(self.marks[:-1], self.marks[1:]):
            if m not in steps:
                continue
            ms["fwd"].append(m["start"].elapsed_time(m["fwd"]))
            ms["bwd"].append(m["fwd"].elapsed_time(m["bwd"]))
            ms["opt"].append(m["bwd"].elapsed_time(m["opt"]))
            ms["rest"].append(m["opt"].elapsed_time(nxt["start"]))
            ms["total"].append(m["start"].elapsed_time(nxt["start"]))
        n = len(ms["total"])
        host = (self.marks[-1]["host"] - self.marks[0]["host"]) / max(len(self.marks) - 1, 1) * 1e3
        out = {"rank": int(os.environ.get("RANK", "0")), "steps": n,
               "median_ms": {k: round(statistics.median(v), 2) for k, v in ms.items() if v},
               "mean_ms": {k: round(statistics.fmean(v), 2) for k, v in ms.items() if v},
               "p90_ms": {k: round(sorted(v)[int(0.9 * (len(v) - 1))], 2) for k, v in ms.items() if v},
               "host_period_ms": round(host, 2), "behind": round(self.behind / max(n, 1), 3)}
        print("[steps] " + json.dumps(out), file=sys.stderr, flush=True)


class TimedNet:
    """The model as the step calls it, with a "start" event first."""

    def __init__(self, net, ev: StepEvents):
        self._net, self._ev = net, ev

    def __call__(self, *args, **kwargs):
        self._ev.start()
        return self._net(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._net, name)


class TimedLoss(nn.Module):
    def __init__(self, criterion: nn.Module, ev: StepEvents):
        super().__init__()
        self.criterion, self.ev = criterion, ev

    def forward(self, logits, labels):
        loss = self.criterion(logits, labels)
        self.ev.mark("fwd")
        return loss


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="start", type=float, default=0.5, help="first timed step, a share of the epoch")
    p.add_argument("--to", type=float, default=0.9, help="last timed step, a share of the epoch")
    kernel = p.add_mutually_exclusive_group()
    kernel.add_argument("--fused-sgd", action="store_true", help="torch's fused SGD kernel")
    kernel.add_argument("--foreach-sgd", action="store_true", help="torch's foreach SGD kernels (before commit a3bb3e3)")
    p.add_argument("--ddp-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword for DDP, on top of train's (repeatable)")
    p.add_argument("--ddp-alone", action="store_true", help="DDP over a group of this one process")
    p.add_argument("--rank-cores", choices=("shared", "split"),
                   help="keep the ranks' own threads on the cores the workers stay off")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the CLI's arguments (train ...)")
    a = p.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args

    real_epoch = run.train_one_epoch

    @functools.wraps(real_epoch)
    def train_one_epoch(model, loader, criterion, optimizer, ctx, *rest, **kwargs):
        if ctx.device.type != "cuda":
            return real_epoch(model, loader, criterion, optimizer, ctx, *rest, **kwargs)
        n = len(loader)
        ev = StepEvents(max(2, int(a.start * n)), max(3, int(a.to * n)))
        pre = optimizer.register_step_pre_hook(lambda *_: ev.mark("bwd"))
        post = optimizer.register_step_post_hook(lambda *_: ev.mark("opt"))
        try:
            return real_epoch(TimedNet(model, ev), loader, TimedLoss(criterion, ev), optimizer, ctx, *rest, **kwargs)
        finally:
            pre.remove()
            post.remove()
            _report_split(loader)

    run.train_one_epoch = train_one_epoch
    if a.fused_sgd or a.foreach_sgd:
        real_make = run.make_optimizer

        @functools.wraps(real_make)
        def make_optimizer(*args_, **kwargs_):
            opt = real_make(*args_, **kwargs_)
            for group in (opt.defaults, *opt.param_groups):
                group["fused"], group["foreach"] = (True, False) if a.fused_sgd else (False, True)
            return opt

        run.make_optimizer = make_optimizer
    if a.ddp_option:
        extra = {}
        for item in a.ddp_option:
            key, _, value = item.partition("=")
            extra[key] = ast.literal_eval(value)
        real_options = run.ddp_options
        # torch >= 2.13 names the buffer broadcast forward_sync_buffers and takes one of the two names
        drop = {"forward_sync_buffers"} if "broadcast_buffers" in extra else set()

        def ddp_options(*args_, **kwargs_):
            return {k: v for k, v in (real_options(*args_, **kwargs_) | extra).items() if k not in drop}

        run.ddp_options = ddp_options
    if a.ddp_alone:
        real_wrap = run._wrap

        @functools.wraps(real_wrap)
        def _wrap(model, cfg, device, dist_ctx):
            if dist_ctx.enabled:
                return real_wrap(model, cfg, device, dist_ctx)
            import torch.distributed as tdist

            if not tdist.is_initialized():
                tdist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1,
                                         init_method="tcp://127.0.0.1:29531")
            # A context that says "distributed" makes _wrap build DDP; DDP itself takes the real group of one.
            return real_wrap(model, cfg, device, run.DistContext(0, 2, 0))

        run._wrap = _wrap
    if a.rank_cores:
        _keep_ranks_on_spare_cores(a.rank_cores)
    return cli.main(args, fresh_process=True)


def _report_split(loader) -> None:
    """The hybrid loader's split over the epoch, one line per rank: ``[split] {...}``, each timed window's CPU
    share, batches/s and the share of it training waited for a batch (where a pair's controllers take the split,
    against one GPU's)."""
    ctrl = getattr(loader, "controller", None)
    if ctrl is None:
        return
    windows = [{"share": round(w.share, 2), "batches_s": round(w.rate, 2), "waited": round(w.training_waited, 3)}
               for w in ctrl.history]
    out = {"rank": int(os.environ.get("RANK", "0")), "share_now": round(ctrl.share.value, 2), "windows": windows}
    print("[split] " + json.dumps(out), file=sys.stderr, flush=True)


def _keep_ranks_on_spare_cores(how: str) -> None:
    """Each rank, as it starts (before CUDA, NCCL and the loader make their threads, which inherit it), keeps to
    the cores its workers will stay off; the loader still sees every core, so it picks the same worker cores."""
    import imagenet_trainer.data.build as build
    import imagenet_trainer.data.loader as loader

    every = loader.usable_cores()
    build.usable_cores = loader.usable_cores = lambda: list(every)
    real_setup = run._setup

    @functools.wraps(real_setup)
    def _setup(cfg):
        taken = loader.worker_cores(build.resolve_workers(cfg))  # None: one rank, or no cores to spare
        if taken:
            mine = spare = sorted(set(every) - taken)
            if how == "split":
                rank, k = int(os.environ.get("LOCAL_RANK", "0")), max(1, len(spare) // loader.local_processes())
                mine = spare[rank * k:(rank + 1) * k] or spare
            os.sched_setaffinity(0, mine)
            print(f"[rank-cores] rank {os.environ.get('LOCAL_RANK', '0')}: cores {mine}", file=sys.stderr, flush=True)
        return real_setup(cfg)

    run._setup = _setup


if __name__ == "__main__":
    sys.exit(main())
