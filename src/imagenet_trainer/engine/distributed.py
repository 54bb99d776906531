"""torch.distributed helpers: the process group from torchrun's env://, rank-0 checks, all-reduce, DDP's options."""

from __future__ import annotations

import datetime
import inspect
import os
import statistics
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from imagenet_trainer.errors import UsageError, reason


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device_type: str, timeout_minutes: float = 10.0) -> DistContext:
    """Join the process group that torchrun (or ``--ngpu``) describes in the environment, if any.

    ``timeout_minutes`` bounds how long a collective waits for a rank that died, so a job never hangs.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(minutes=timeout_minutes))
        except (RuntimeError, ValueError) as e:  # DistNetworkError is a RuntimeError
            addr = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
            if "address already in use" in str(e).lower() or "EADDRINUSE" in str(e):
                raise UsageError(f"port {addr} is already in use; choose another with torchrun's --master-port "
                                 "(or --rdzv-endpoint HOST:PORT)") from None
            raise UsageError(f"could not join the process group at {addr}: {reason(e, 200)}") from None
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        t = t.clone()
        dist.all_reduce(t)
    return t


def _in_group() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_ranks(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every process of the group (``flag`` itself outside one), so that all act alike.
    Every rank must call it at the same point (a collective)."""
    if not _in_group():
        return flag
    t = torch.tensor([1 if flag else 0], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


class AnyRankLate:
    """Whether a flag held on any process of the group, one call late, and without the host waiting for the
    device's queue: each call starts the all-reduce of its flag and returns the previous call's result
    (``True`` at the first), which every rank gets alike. Outside a group, the flag itself.

    For a loop that steps a DDP model for as long as any rank asks: a rank that stopped sooner would pair its
    next collective with another's all-reduce of gradients, and an all-reduce read at once would leave the GPU
    idle each pass while the host launches the next. Every rank must call it at the same points.
    """

    def __init__(self, device: torch.device):
        self.device = device if device.type == "cuda" else torch.device("cpu")
        self._previous = None  # (host tensor, the event after its copy or None)

    def __call__(self, flag: bool) -> bool:
        if not _in_group():
            return flag
        t = torch.full((1,), int(flag), dtype=torch.int32, device=self.device)  # no copy from the host
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        copied = None
        if self.device.type == "cuda":
            t, copied = t.to("cpu", non_blocking=True), torch.cuda.Event()
            copied.record()
        previous, self._previous = self._previous, (t, copied)
        if previous is None:
            return True
        if previous[1] is not None:
            previous[1].synchronize()
        return bool(previous[0].item())


def ddp_options(accum: int = 1) -> dict:
    """DDP's keywords: gradients as views into its all-reduce buckets, a static graph (unless ``accum`` > 1
    micro-batches make a step), and no broadcast of rank 0's buffers (batch-norm statistics) before every forward.

    Bucket views: without them DDP copies every gradient into its bucket and, after the all-reduce, the sum back
    (a copy kernel per parameter each way, 161 for ResNet-50, queued by the thread that runs the backward); with
    them the bucket holds the gradients, and the copies back are gone. Measured
    with a static graph as well (which of the two gains was not separated). Compiled ResNet-50 from JPEG, 2026-11-27:
    on 2x H200, DDP over a group of one process cost one GPU 5.7 ms a step (47.6 against 42.0 ms) without them
    and 0.2 ms with them, and the pair trained 11,471 img/s with them against 10,475 / 10,578 without, alternated;
    on a quieter 2x H200, 11,967 against 12,198 / 12,233 (its median step 0.6 ms shorter, a stall in one rank);
    on 2x H100, 9,486-9,517 against 9,124, every run there jittery. The model's graph does not change from step
    to step (the same parameters are used, once each), which is what a static graph asks. DDP's static graph does
    not take the micro-batches that skip the all-reduce (``no_sync``: an internal assert in torch 2.14's reducer,
    seen on the CPU), so gradient accumulation runs without it.

    The broadcast is a point in every step where each GPU waits for the other ranks, on top of the gradients'
    all-reduce. Measured on 2x H100 (2026-11-27, compiled ResNet-50 from JPEG, two alternated rounds): the pair
    trained 9,200-9,289 img/s with it and 10,221-10,274 without. Training does not read the buffers (batch norm
    uses each batch's statistics), and rank 0's, which the checkpoints hold, are the same either way: with the
    broadcast too, they only ever took rank 0's own batches. The other ranks' differ, so ``broadcast_buffers``
    gives them rank 0's before each validation. torch 2.13 renamed the option ``forward_sync_buffers``.
    """
    params = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters
    no_broadcast = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return {"gradient_as_bucket_view": True, "static_graph": accum <= 1, **no_broadcast}


WHOLE_GRAPH_GBPS = 100.0  # --ddp-graph auto: one graph where the group all-reduces at least this many GB/s


def all_reduce_gbps(numel: int, device: torch.device, reps: int = 5) -> float:
    """GB/s at which the group sums ``numel`` float32 elements: their bytes over the median of ``reps`` timed
    all-reduces (after an untimed one, which sets up the connections), the slowest rank's on every rank."""
    buf = torch.zeros(max(1, numel), dtype=torch.float32, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    dist.all_reduce(buf)
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        dist.all_reduce(buf)
        sync()
        times.append(time.perf_counter() - t0)
    slowest = torch.tensor([statistics.median(times)], dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    return buf.numel() * 4 / max(slowest.item(), 1e-9) / 1e9


def choose_ddp_graph(how: str, numel: int, device: torch.device, ctx: DistContext,
                     min_gbps: float = WHOLE_GRAPH_GBPS) -> tuple[str, str]:
    """``--ddp-graph`` resolved for a compiled DDP model of ``numel`` parameters, and why (empty when asked).

    ``auto``: ``whole`` where the group sums the gradients at ``min_gbps`` or more (GPUs joined by
    NVLink: 217-241 GB/s on 2x H100, 2026-11-27), else ``split``. One graph sums the gradients after the
    backward, and where that is fast it gains the fusions that the split into a graph per bucket costs:
    compiled ResNet-50 pairs from JPEG on 2x H200 with the hybrid loader trained 2.5-22% faster whole
    (2026-11-27; with the CPU loader, mixed). Over PCIe or a network the sum takes milliseconds to tenths of a
    second, and the overlap of ``split`` hides it. Up to 2**25 elements (128 MiB) are timed. Every rank gets
    the same answer (a collective: all must call it).
    """
    if how != "auto":
        return how, ""
    if not ctx.enabled:
        return "split", ""
    gbps = all_reduce_gbps(min(numel, 2**25), device)
    graph = "whole" if gbps >= min_gbps else "split"
    verdict = ("one compiled graph, the gradients summed after the backward" if graph == "whole" else
               "a compiled graph per gradient bucket, each bucket's sum beside the rest of the backward")
    return graph, (f"DDP graph auto: the processes sum gradients at {gbps:,.0f} GB/s "
                   f"({'at least' if graph == 'whole' else 'under'} {min_gbps:g}): {graph}, {verdict} "
                   "(--ddp-graph split|whole chooses)")


def set_ddp_graph(how: str) -> None:
    """``--ddp-graph``: how torch.compile cuts a DDP model, set before it compiles one.

    ``split`` (torch's default, DDPOptimizer): one graph per gradient bucket, so that each bucket's all-reduce
    starts while the backward of the graphs before it runs. The cuts cost the compiler its fusions across them:
    on 2x H200 (2026-11-27, compiled ResNet-50 on random batches, ``benchmarks/ddp_ceiling.py``) DDP with its
    all-reduces replaced by nothing still trained 97.3-97.6% of one GPU's images/s split, and 99.5-99.6% whole.
    ``whole``: one graph, the gradients summed after the backward (one all-reduce of 0.4 ms on NVLink, not
    overlapped): 97.9-98.1% of one GPU against 93.5-97.0% split, alternated. Over a network the all-reduce takes
    far longer, and the overlap of ``split`` is what hides it (``choose_ddp_graph`` picks for ``auto``).
    """
    import torch._dynamo

    torch._dynamo.config.optimize_ddp = how != "whole"


def broadcast_buffers(modules, ctx: DistContext) -> None:
    """Rank 0's buffers (batch-norm statistics) of each module, in place on every rank."""
    if not ctx.enabled:
        return
    for module in modules:
        for b in module.buffers():
            dist.broadcast(b, 0)


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
