"""Learning benchmark: the shipped defaults on a real photo set, at short and long budgets, against a peer.

    python benchmarks/learning.py --data /tmp/data/caltech101 --out learning.json

trains ``imagenet-trainer train --data DATA --arch A --epochs E`` (every other option at its default) for each
arch and budget, and the peer (``peer_reference.py``: pytorch/examples' ImageNet recipe, written out plainly)
for the first arch at the first budget, each in its own process. It writes one JSON: per run the final val
top-1 of the run's model (the EMA's where there is one), the best epoch's, wall-clock seconds, and whether the
run diverged (the divergence guard stopped it, or its final top-1 is near chance). ``--loaders`` repeats
the runs through each named loader (``naive``, ``cpu``, ``gpu``, ``hybrid``, or ``cache``) instead of the
default one, for the fast-path-against-reference A/B; ``--extra`` passes more train options to every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOADER_OPTIONS = {"default": [], "cache": ["--cache", "auto"], "naive": ["--loader", "naive", "--cache", "off"],
                  "cpu": ["--loader", "cpu", "--cache", "off"], "gpu": ["--loader", "gpu", "--cache", "off"],
                  "hybrid": ["--loader", "hybrid", "--cache", "off"]}


def run_train(data: str, arch: str, epochs: int, seed: int, options: list[str], folder: Path) -> dict:
    """One training run in its own process; its figures from the run folder's metrics.jsonl."""
    out = folder / f"{arch}-{epochs}-{seed}-{len(list(folder.iterdir()))}"
    cmd = [sys.executable, "-m", "imagenet_trainer", "train", "--data", data, "--arch", arch, "--epochs",
           str(epochs), "--seed", str(seed), "--output", str(out), "--print-freq", "100000", *options]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] \
        if (out / "metrics.jsonl").exists() else []
    vals = [r for r in rows if "val_top1" in r]
    key = "val_ema_top1" if vals and "val_ema_top1" in vals[-1] else "val_top1"
    last = vals[-1][key] if vals else None
    tail = (proc.stderr.strip().splitlines() or [""])[-1]
    classes = len((out / "classes.txt").read_text().splitlines()) if (out / "classes.txt").exists() else 0
    near_chance = last is None or (classes > 0 and last < 200 / classes)  # under twice the chance rate
    return {"arch": arch, "epochs": epochs, "seed": seed, "options": options, "exit_code": proc.returncode,
            "top1": last, "best_top1": max((r[key] for r in vals), default=None), "seconds": round(seconds, 1),
            "train_loss": [round(r["train_loss"], 3) for r in rows], "diverged": "diverged" in tail or near_chance,
            "message": tail if proc.returncode else "", "command": shlex.join(cmd[1:])}


def run_peer(data: str, arch: str, epochs: int, seed: int) -> dict:
    cmd = [sys.executable, str(HERE / "peer_reference.py"), data, "--arch", arch, "--epochs", str(epochs),
           "--seed", str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {"error": proc.stderr[-400:]}
    return result | {"seconds": round(time.perf_counter() - t0, 1), "command": shlex.join(cmd[1:])}


def _write(out: str, head: dict, runs: list[dict], peer: dict | None) -> dict:
    """Write the JSON (atomically): the header, a summary per loader/arch/budget over seeds, the runs, the peer."""
    summary = {}
    for r in runs:
        summary.setdefault(f"{r['loader']} {r['arch']} {r['epochs']}", []).append(r["top1"] or 0.0)
    summary = {k: {"mean": round(statistics.mean(v), 2), "min": round(min(v), 2), "max": round(max(v), 2),
                   "n": len(v)} for k, v in summary.items()}
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(head | {"summary": summary, "runs": runs, "peer": peer}, indent=1))
    tmp.replace(out)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset root with train/ and val/ (Caltech-101 JPEG)")
    p.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"])
    p.add_argument("--epochs", nargs="+", type=int, default=[5, 20])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--loaders", nargs="+", choices=sorted(LOADER_OPTIONS), default=["default"])
    p.add_argument("--extra", default="", help="more train options for every run, as one string")
    p.add_argument("--no-peer", action="store_true", help="skip the peer run")
    p.add_argument("--out", default="learning.json", help="the JSON to write")
    args = p.parse_args(argv)

    import torch

    sys.path.insert(0, str(HERE.parent / "src"))
    from imagenet_trainer.bench import environment

    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head = {"benchmark": "learning", "data": os.path.abspath(args.data), "commit": commit, **environment(device),
            "command": shlex.join(["python", "benchmarks/learning.py", *(argv or sys.argv[1:])])}
    runs, peer = [], None
    with tempfile.TemporaryDirectory(prefix="learning-") as tmp:
        for loader in args.loaders:
            for arch in args.archs:
                for epochs in args.epochs:
                    for seed in args.seeds:
                        r = run_train(args.data, arch, epochs, seed, LOADER_OPTIONS[loader] + shlex.split(args.extra),
                                      Path(tmp))
                        runs.append(r | {"loader": loader})
                        print(f"{loader:8} {arch:10} {epochs:3} ep seed {seed}: top-1 {r['top1']}  "
                              f"({r['seconds']} s){'  ' + r['message'] if r['message'] else ''}", flush=True)
                        _write(args.out, head, runs, peer)  # after each run: a cut-off benchmark keeps its runs
    if not args.no_peer:
        peer = run_peer(args.data, args.archs[0], args.epochs[0], args.seeds[0])
        print(f"peer     {args.archs[0]:10} {args.epochs[0]:3} ep: top-1 {peer.get('top1')}  ({peer['seconds']} s)")
    for k, v in _write(args.out, head, runs, peer).items():
        print(f"{k:32} mean {v['mean']:6.2f}  min {v['min']:6.2f}  max {v['max']:6.2f}  (n={v['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
