"""``--ngpu 2`` on two CUDA GPUs (NCCL): the launcher's paths of test_distributed.py, where a rank waits in
NCCL rather than in gloo. Skipped without two GPUs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from imagenet_trainer.engine.checkpoint import safe_load
from tests.engine.test_distributed import ARGS, _assert_same_weights, _cli, _rank_pids, probe_passes

pytestmark = [pytest.mark.gpu, pytest.mark.multigpu, pytest.mark.slow]

# No autocast; cuDNN may still run the convolutions in TF32, hence the 1e-3 tolerance on the weights below.
GPU_ARGS = [a if a != "cpu" else "cuda" for a in ARGS] + ["--precision", "fp32"]


def test_the_probe_steps_both_gpus_alike_while_either_ranks_workers_are_timed(tmp_path):
    """test_distributed.py's case over NCCL, where the ranks agree a pass late from the device (AnyRankLate)."""
    r0, r1 = probe_passes(tmp_path, "nccl")
    assert r0["passes"] == r1["passes"] == 2 + 1 + 5 + 1
    assert r0["rate"] > 0 and r1["rate"] > 0


def test_two_gpus_match_one_and_count_val_exactly(uneven_tree, tmp_path):
    one = _cli("train", "--data", str(uneven_tree), "--output", str(tmp_path / "one"), *GPU_ARGS)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _cli("train", "--data", str(uneven_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", *GPU_ARGS)
    assert two.returncode == 0, two.stderr[-2000:]
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt", atol=1e-3)
    assert safe_load(tmp_path / "two" / "model_01.pt")["metrics"]["val"]["count"] == 7


@pytest.mark.parametrize("how", ["split", "whole", "auto"])
def test_two_compiled_gpus_match_one(tiny_tree, tmp_path, how):
    """Compiled DDP, cut per gradient bucket or as one graph (``--ddp-graph``; auto: as the GPUs' link is fast
    enough, and says so): the summed gradients give the weights of one compiled GPU on the global batch."""
    args = [*GPU_ARGS, "--backend", "compile", "--ddp-graph", how]
    one = _cli("train", "--data", str(tiny_tree), "--output", str(tmp_path / "one"), *args[:-2])
    assert one.returncode == 0, one.stderr[-2000:]
    two = _cli("train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", *args)
    assert two.returncode == 0, two.stderr[-2000:]
    if how == "auto":
        how = re.search(r"DDP graph auto: the processes sum gradients at [0-9,]+ GB/s \((?:at least|under) 100\): "
                        r"(whole|split)", two.stderr).group(1)
    assert f"DDP graph {how}" in two.stderr, two.stderr[-2000:]
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt", atol=1e-3)


def _start(tree, tmp_path, epochs: str, **kw) -> subprocess.Popen:
    """A long ``--ngpu 2`` run, returned once its first epoch is saved (both ranks are then in their loop)."""
    run = tmp_path / "r"
    args = ["train", "--data", str(tree), "--output", str(run), "--ngpu", "2", "--save-interval", "0",
            *GPU_ARGS]
    args[args.index("--epochs") + 1] = epochs
    proc = subprocess.Popen([sys.executable, "-m", "imagenet_trainer", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoint_last.pt").exists():
        time.sleep(0.5)
    assert (run / "checkpoint_last.pt").exists(), "no epoch finished in 120 s"
    return proc


def _ended(proc: subprocess.Popen, stop, timeout: float) -> tuple[str, float]:
    """``stop()`` a started run, then wait for its end: its stderr and the seconds from ``stop`` to its end. The
    run is killed whatever happens."""
    try:
        stop()
        start = time.time()
        _, err = proc.communicate(timeout=timeout)
        return err, time.time() - start
    finally:
        proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_ctrl_c_stops_two_gpu_ranks_cleanly(tiny_tree, tmp_path):
    """Ctrl-C reaches the launcher and both NCCL ranks: exit 130, the resume line, no traceback, and soon."""
    proc = _start(tiny_tree, tmp_path, "500", start_new_session=True)
    err, took = _ended(proc, lambda: os.killpg(proc.pid, signal.SIGINT), timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted." in err and "--resume" in err and "Traceback" not in err, err[-2000:]
    assert took < 30, took


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dying_gpu_rank_ends_the_job(tiny_tree, tmp_path):
    """A rank killed mid-run, while the other goes on to wait for it in NCCL: the job ends within a minute."""
    proc = _start(tiny_tree, tmp_path, "500")

    def kill_rank_1():
        ranks = _rank_pids(proc.pid)
        assert len(ranks) == 2, ranks
        os.kill(ranks[1], signal.SIGKILL)

    err, took = _ended(proc, kill_rank_1, timeout=120)
    assert proc.returncode == 1, err[-2000:]
    assert "process" in err and "of 2 failed" in err, err[-2000:]
    assert took < 60, took
