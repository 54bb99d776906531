"""Where a GPU's time went in a profiler trace (Chrome JSON, optionally gzipped), per training step.

    python benchmarks/trace_gaps.py fed_rank0.json.gz trainer_rank0.json.gz [--gaps 8]

For each trace, over its profiled steps (the ``ProfilerStep#N`` marks): the wall time per step; per GPU
stream, the time its kernels kept it busy and their count; the NCCL kernels' time (which includes waiting
for the other ranks); the compute stream's idle time and its longest gaps, each with the kernel that ended
it and the CPU operations that were launching it; and the CPU thread's time in synchronizing calls.
Written for ``benchmarks/ddp_ceiling.py --profile``.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
from collections import defaultdict


def load(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]


def union_ms(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total / 1000


def summarize(path: str, n_gaps: int) -> dict:
    events = load(path)
    steps = sorted((e for e in events if e["name"].startswith("ProfilerStep#") and e.get("cat") != "gpu_user_annotation"),
                   key=lambda e: e["ts"])  # the CPU's marks (the GPU's copies of them are left out)
    if not steps:
        raise SystemExit(f"{path}: no ProfilerStep marks")
    t0, t1 = steps[0]["ts"], steps[-1]["ts"] + steps[-1]["dur"]
    main_tid = steps[0]["tid"]
    n = len(steps)
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and t0 <= e["ts"] <= t1]
    streams = defaultdict(list)
    for e in gpu:
        streams[e["args"].get("stream")].append(e)
    out = {"trace": path, "steps": n, "wall_ms_per_step": round((t1 - t0) / 1000 / n, 2), "streams": {}}
    for stream, evs in streams.items():
        busy = union_ms([(e["ts"], e["ts"] + e["dur"]) for e in evs])
        nccl = sum(e["dur"] for e in evs if "nccl" in e["name"].lower()) / 1000
        out["streams"][str(stream)] = {"busy_ms_per_step": round(busy / n, 2), "kernels_per_step": round(len(evs) / n, 1),
                                      "nccl_ms_per_step": round(nccl / n, 2)}
    if not streams:  # a CPU-only trace
        return out
    compute = max(streams, key=lambda s: sum(e["dur"] for e in streams[s] if "nccl" not in e["name"].lower()))
    evs = sorted(streams[compute], key=lambda e: e["ts"])
    gaps = [(b["ts"] - (a["ts"] + a["dur"]), a, b) for a, b in zip(evs, evs[1:])]
    idle = sum(g for g, _, _ in gaps if g > 0) / 1000
    out["compute_stream"] = str(compute)
    out["compute_idle_ms_per_step"] = round(idle / n, 2)
    out["compute_gaps_over_50us_per_step"] = round(sum(1 for g, _, _ in gaps if g > 50) / n, 1)
    # the CPU side: runtime calls by correlation id, and the main thread's operations (for what was launching)
    runtime = {e["args"].get("correlation"): e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver")}
    ops = sorted((e for e in events if e.get("cat") in ("cpu_op", "python_function", "user_annotation")
                  and e["tid"] == main_tid), key=lambda e: e["ts"])
    starts = [e["ts"] for e in ops]

    def enclosing(ts: float) -> list[str]:
        """The main thread's operations running at ``ts``, outermost first (a few levels)."""
        i = bisect.bisect_right(starts, ts)
        names = [e["name"] for e in ops[max(0, i - 400):i] if e["ts"] + e["dur"] >= ts]
        return [x[:60] for x in names[-6:]]

    longest = sorted(gaps, key=lambda g: g[0], reverse=True)[:n_gaps]
    out["longest_gaps"] = []
    for g, a, b in longest:
        launch = runtime.get(b["args"].get("correlation"))
        out["longest_gaps"].append({
            "ms": round(g / 1000, 2), "after": a["name"][:50], "before": b["name"][:50],
            "launched_by": enclosing(launch["ts"]) if launch else None,
            "launch_ms_after_gap_start": round((launch["ts"] - (a["ts"] + a["dur"])) / 1000, 2) if launch else None})
    sync = defaultdict(float)
    for e in events:
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and e["tid"] == main_tid and t0 <= e["ts"] <= t1 and \
                "ynchronize" in e["name"]:
            sync[e["name"]] += e["dur"] / 1000
    out["main_thread_sync_ms_per_step"] = {k: round(v / n, 2) for k, v in sync.items()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+")
    p.add_argument("--gaps", type=int, default=8, help="how many of the compute stream's longest gaps to show")
    a = p.parse_args()
    for path in a.traces:
        print(json.dumps(summarize(path, a.gaps), indent=1))


if __name__ == "__main__":
    main()
