"""Several processes on CPU (gloo): same result as one process, exact validation counts, launch and failure paths."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from imagenet_trainer.cli import main
from imagenet_trainer.engine.checkpoint import safe_load
from imagenet_trainer.engine.run import ddp_grads_dtype, train
from imagenet_trainer.errors import UsageError
from tests.conftest import spawn_ranks
from tests.engine.test_train import _cfg

ARGS = ["--arch", "smallcnn", "--epochs", "1", "--batch-size", "6", "--image-size", "36", "--crop-size", "32",
        "--workers", "0", "--device", "cpu", "--lr", "0.1", "--print-freq", "1000", "--recipe", "none"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_same_weights(a: Path, b: Path, atol: float = 1e-5) -> None:
    wa, wb = safe_load(a)["state_dict"], safe_load(b)["state_dict"]
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=atol), (k, (wa[k] - wb[k]).abs().max())


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in a fresh process, as a user runs it (there, --ngpu forks its ranks)."""
    return subprocess.run([sys.executable, "-m", "imagenet_trainer", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_two_processes_match_one_and_count_val_exactly(uneven_tree, tmp_path):
    assert main(["train", "--data", str(uneven_tree), "--output", str(tmp_path / "one"), *ARGS]) == 0
    two = _cli("train", "--data", str(uneven_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", *ARGS)
    assert two.returncode == 0, two.stderr[-2000:]
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt")
    one, two = (safe_load(tmp_path / r / "model_01.pt")["metrics"] for r in ("one", "two"))
    assert two["val"]["count"] == one["val"]["count"] == 7
    assert two["train"]["count"] == one["train"]["count"] == 18
    assert abs(one["val"]["top1"] - two["val"]["top1"]) < 1e-6


def test_accumulation_gives_the_same_step(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "a", arch="smallcnn", epochs=1)) == 0
    assert train(_cfg(tiny_tree, tmp_path / "b", arch="smallcnn", epochs=1, accum=3)) == 0
    _assert_same_weights(tmp_path / "a" / "model_01.pt", tmp_path / "b" / "model_01.pt")


def test_two_processes_accumulating_match_one(tiny_tree, tmp_path):
    """``--accum`` under DDP: the micro-batches before a step's last skip the all-reduce (``no_sync``), which
    DDP's static graph does not take (``ddp_options`` leaves it out then); the step is still one process's."""
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "one"), *ARGS]) == 0
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", "--accum", "3",
                 *ARGS]) == 0
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt")


def test_python_callers_start_n_processes_with_train_nprocs(tiny_tree, tmp_path):
    """``train(cfg, nprocs=2)``, the library's ``--ngpu 2``: two (spawned) processes, one process's weights."""
    import imagenet_trainer as it

    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "one"), *ARGS]) == 0
    cfg = it.TrainConfig(data=str(tiny_tree), output=str(tmp_path / "two"), arch="smallcnn", epochs=1, batch_size=6,
                         image_size=36, crop_size=32, workers=0, device="cpu", lr=0.1, print_freq=1000)
    assert it.train(cfg, nprocs=2) == 0
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt")


def test_the_launcher_leaves_nothing_in_the_temp_folder(tiny_tree, tmp_path, monkeypatch):
    """torch's launcher makes a torchelastic_* folder in the temp folder per run and keeps it; ``--ngpu``'s
    goes inside a folder of ours that is removed when the run ends (one machine had gathered 1,100 of them)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "r"), "--ngpu", "2", *ARGS]) == 0
    left = sorted(p.name for p in temp.iterdir() if not p.name.startswith("torchinductor_"))  # (a cache, kept)
    assert left == []


@pytest.mark.slow
def test_two_machines_on_localhost(tiny_tree, tmp_path):
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r), "--nproc-per-node", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test",
         "--log-dir", str(tmp_path / f"torchrun{r}"),  # (torchrun's default is a new folder in /tmp, kept)
         # Both agents' host matches the endpoint here, so both would try to serve the rendezvous store; on two
         # machines only one does. Saying which keeps the race out of the test (it failed once in ~20 runs).
         "--rdzv-conf", f"is_host={int(r == 0)}",
         "-m", "imagenet_trainer", "train", "--data", str(tiny_tree), "--output", str(tmp_path / "run"), *ARGS],
        stdout=open(tmp_path / f"node{r}.log", "w"), stderr=subprocess.STDOUT) for r in range(2)]
    for p in procs:  # output goes to files: a full pipe would block one node while the other waits for it
        p.wait(timeout=240)
    outs = [(tmp_path / f"node{r}.log").read_text()[-2000:] for r in range(2)]
    assert [p.returncode for p in procs] == [0, 0], outs
    cfg = (tmp_path / "run" / "config.yaml").read_text()
    assert "world_size: 2" in cfg and (tmp_path / "run" / "model_01.pt").exists()


def test_resume_with_a_different_process_count(tiny_tree, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_tree), "--output", str(run), *ARGS]) == 0
    args2 = [a if a != "1" or i == 0 else a for i, a in enumerate(ARGS)]
    args2[args2.index("--epochs") + 1] = "2"
    assert main(["train", "--data", str(tiny_tree), "--output", str(run), "--ngpu", "2", *args2,
                 "--resume", "auto"]) == 0
    assert safe_load(run / "checkpoint_last.pt")["epoch"] == 2


def test_port_in_use_is_a_clear_error(tiny_tree, tmp_path, capfd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "r"), "--ngpu", "2",
                     "--master-port", str(port), *ARGS])
    err = capfd.readouterr().err
    assert code == 2 and f"{port}" in err and "in use" in err


def test_a_usage_error_in_the_ranks_is_one_line(tmp_path):
    """An error every rank finds (a missing --data folder) is printed once, as one line, with exit code 2: not
    once per rank, and not with the launcher's traceback of the ranks' exits."""
    r = _cli("train", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "r"), "--ngpu", "2", *ARGS)
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert r.returncode == 2, r.stderr[-2000:]
    assert errors == [f"imagenet-trainer train: error: --data {tmp_path / 'missing'}: no such folder; give the "
                      "folder that holds train/ and val/"], r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def _rank_pids(parent: int) -> list[int]:
    """The training ranks: the processes ``--ngpu`` forked from ``parent``, so with its command line (their
    loader workers are grandchildren; multiprocessing's helper processes have command lines of their own)."""
    found = []
    command = Path(f"/proc/{parent}/cmdline").read_bytes()
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            same = Path(f"/proc/{pid}/cmdline").read_bytes() == command
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and same:
            found.append(pid)
    return sorted(found)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dying_rank_ends_the_job(tiny_tree, tmp_path):
    args = ["train", "--data", str(tiny_tree), "--output", str(tmp_path / "r"), "--ngpu", "2", *ARGS]
    args[args.index("--epochs") + 1] = "50"
    proc = subprocess.Popen([sys.executable, "-m", "imagenet_trainer", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(_rank_pids(proc.pid)) < 2:
            time.sleep(0.5)
        ranks = _rank_pids(proc.pid)
        assert len(ranks) == 2, ranks
        time.sleep(3)
        os.kill(ranks[1], signal.SIGKILL)
        start = time.time()
        _, err = proc.communicate(timeout=120)
        assert time.time() - start < 120
    finally:
        proc.kill()
    assert proc.returncode == 1
    # The launcher reports the first exit it sees: the killed rank's, or the other's when that one's collective
    # failed first (a race, seen in CI).
    assert re.search(r"process [01] of 2 failed \((killed by SIGKILL|exit code 1; its error is printed above)\)", err)
    assert "api.py" not in err  # the launcher's own log of the exit stays off (its traceback of the rank's end)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc")
def test_ctrl_c_stops_the_ranks_cleanly(tiny_tree, tmp_path):
    """Ctrl-C in a terminal reaches the launcher and the ranks (one process group): rank 0 says where to resume,
    the command exits with 130, and nobody prints a traceback (the ranks used to inherit the launcher's signal
    handlers, which raise an exception of their own)."""
    run = tmp_path / "r"
    args = ["train", "--data", str(tiny_tree), "--output", str(run), "--ngpu", "2", "--save-interval", "0", *ARGS]
    args[args.index("--epochs") + 1] = "500"
    proc = subprocess.Popen([sys.executable, "-m", "imagenet_trainer", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (run / "checkpoint_last.pt").exists():
            time.sleep(0.5)
        assert (run / "checkpoint_last.pt").exists()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted." in err and "--resume" in err and "Traceback" not in err, err[-2000:]


def test_a_rank_s_end_in_words():
    from imagenet_trainer.engine.launch import _how

    assert _how(-signal.SIGKILL) == "killed by SIGKILL"
    assert _how(1) == "exit code 1; its error is printed above"


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [4, 8])
def test_four_and_eight_ranks_match_one(uneven_tree, tmp_path, ranks):
    """The 4- and 8-GPU layouts, simulated with gloo processes: same weights, every val image counted once."""
    args = [*ARGS]
    args[args.index("--batch-size") + 1] = "8"
    assert main(["train", "--data", str(uneven_tree), "--output", str(tmp_path / "one"), *args]) == 0
    assert main(["train", "--data", str(uneven_tree), "--output", str(tmp_path / "many"), "--ngpu", str(ranks),
                 *args]) == 0
    # 8 processes sum their gradients in another order than one: up to 1.5e-5 apart after an epoch here
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "many" / "model_01.pt", atol=5e-5)
    assert safe_load(tmp_path / "many" / "model_01.pt")["metrics"]["val"]["count"] == 7


@pytest.mark.slow
@pytest.mark.parametrize("how", ["whole", "auto"])
def test_two_compiled_processes_as_one_graph_match_one(tiny_tree, tmp_path, capfd, how):
    """``--backend compile --ddp-graph whole``: DDP's model compiled as one graph (its gradients summed after the
    backward, not bucket by bucket inside it) gives one compiled process's weights on the global batch. ``auto``
    (the default) times the processes' all-reduce first, says what it picked, and trains alike."""
    args = [*ARGS, "--backend", "compile"]
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "one"), *args]) == 0
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2",
                 "--ddp-graph", how, *args]) == 0
    err = capfd.readouterr().err
    if how == "auto":
        how = re.search(r"DDP graph auto: the processes sum gradients at [0-9,]+ GB/s \((?:at least|under) "
                        r"100\): (whole|split)", err).group(1)
    assert f"DDP graph {how}" in err
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt", atol=1e-4)


def test_ddp_grads_picks_the_all_reduce_dtype():
    cfg = _cfg(Path("."), Path("."))
    assert ddp_grads_dtype(cfg) == torch.float32
    assert ddp_grads_dtype(cfg.replace(ddp_grads="bf16")) == torch.bfloat16
    with pytest.raises(UsageError, match="--ddp-grads fp16: unknown; choose one of fp32, bf16"):
        cfg.replace(ddp_grads="fp16").check()  # every option's choices are checked in one place


@pytest.mark.slow
def test_gradients_summed_in_bf16_stay_close_to_one_process(tiny_tree, tmp_path):
    """``--ddp-grads bf16`` rounds the summed gradients to bf16: the weights move from the one-process run's
    by about that rounding, not more, and not by nothing (the hook ran)."""
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "one"), *ARGS]) == 0
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2",
                 "--ddp-grads", "bf16", *ARGS]) == 0
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt", atol=2e-3)
    with pytest.raises(AssertionError):
        _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt", atol=1e-6)


def _buffers_as_rank(rank, world, init_file, out):
    import copy
    import datetime
    import json

    import torch.nn as nn

    from imagenet_trainer.engine.distributed import DistContext, broadcast_buffers, ddp_options

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=30))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    alone = copy.deepcopy(model)  # the same batches without DDP: the statistics of this rank's batches only
    net = torch.nn.parallel.DistributedDataParallel(model, **ddp_options())
    g = torch.Generator().manual_seed(rank)
    for _ in range(2):  # each rank's own batches: its batch-norm statistics move apart from the other's
        x = torch.randn(8, 3, generator=g) * (rank + 1) + rank
        net(x).sum().backward()
        alone(x)
    before = model[1].running_mean.tolist()
    assert before == alone[1].running_mean.tolist()  # nothing of rank 0's came in before a forward
    broadcast_buffers([net], DistContext(rank, world))
    (Path(out) / f"{rank}.json").write_text(json.dumps({
        "before": before, "after": model[1].running_mean.tolist(), "steps": int(model[1].num_batches_tracked),
        "weight": model[0].weight.grad.flatten().tolist()}))
    torch.distributed.destroy_process_group()


def test_ranks_keep_their_own_batch_norm_statistics_until_validation(tmp_path):
    """DDP does not broadcast rank 0's buffers before every forward (``ddp_options``: a wait between the ranks
    at every step); ``broadcast_buffers`` gives every rank rank 0's before a validation. Gradients are still
    all-reduced."""
    import json

    out = tmp_path / "out"
    out.mkdir()
    spawn_ranks(_buffers_as_rank, (2, str(tmp_path / "init"), str(out)))
    r0, r1 = (json.loads((out / f"{r}.json").read_text()) for r in range(2))
    assert r0["before"] != r1["before"]  # no broadcast during the steps
    assert r1["after"] == r0["after"] == r0["before"]  # rank 0's, unchanged there
    assert r0["steps"] == r1["steps"] == 2
    assert r0["weight"] == pytest.approx(r1["weight"])


class _Beside:
    """A stand-in for the probe's worker timing: running for ``checks`` looks, then done."""

    def __init__(self, checks: int):
        self.left = checks

    def start(self):
        return self

    def running(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _probe_passes_as_rank(rank, world, init_file, out, backend="gloo"):
    import datetime
    import json

    import torch.nn as nn

    from imagenet_trainer.engine.distributed import ddp_options
    from imagenet_trainer.engine.trainer import synthetic_step_rate

    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=30))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)).to(device)
    passes = []
    model.register_forward_hook(lambda *a: passes.append(1))
    net = nn.parallel.DistributedDataParallel(model, device_ids=[rank] if device.type == "cuda" else None,
                                              **ddp_options())
    rate = synthetic_step_rate(net, nn.CrossEntropyLoss(), device, None, 2, 8, 5, warmup=2, steps=1,
                               min_seconds=0.0, beside=_Beside(1 if rank == 0 else 5))
    torch.distributed.barrier()  # the next collective: it pairs with the other rank's, not with a pass's all-reduce
    (Path(out) / f"{rank}.json").write_text(json.dumps({"passes": len(passes), "rate": rate}))
    torch.distributed.destroy_process_group()


def probe_passes(tmp_path, backend: str) -> tuple[dict, dict]:
    import json

    out = tmp_path / "out"
    out.mkdir()
    spawn_ranks(_probe_passes_as_rank, (2, str(tmp_path / "init"), str(out), backend))
    return tuple(json.loads((out / f"{r}.json").read_text()) for r in range(2))


def test_the_probe_steps_every_rank_alike_while_any_ranks_workers_are_timed(tmp_path):
    """Each rank's probe steps its DDP model beside its own workers' timing, which ends at a different moment on
    each: every rank runs the same passes, until the last rank's timing ends (a rank that stopped first would
    pair its next collective with another's all-reduce of gradients, and hang or mix the two)."""
    r0, r1 = probe_passes(tmp_path, "gloo")
    # the warm-up, one timed pass, five while rank 1's timing ran, and one more (the ranks agree a pass late)
    assert r0["passes"] == r1["passes"] == 2 + 1 + 5 + 1
    assert r0["rate"] > 0 and r1["rate"] > 0


def _ddp_graph_as_rank(rank, world, init_file, out):
    import datetime
    import json

    from imagenet_trainer.engine.distributed import DistContext, choose_ddp_graph

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=30))
    ctx, cpu = DistContext(rank, world), torch.device("cpu")
    picks = [choose_ddp_graph("auto", 1000, cpu, ctx, min_gbps=gbps) for gbps in (0.0, float("inf"))]
    picks.append(choose_ddp_graph("split", 1000, cpu, ctx))  # as asked: no all-reduce, so no pairing to break
    torch.distributed.barrier()
    (Path(out) / f"{rank}.json").write_text(json.dumps(picks))
    torch.distributed.destroy_process_group()


def test_ddp_graph_auto_times_the_ranks_all_reduce_and_every_rank_picks_alike(tmp_path):
    """``--ddp-graph auto``: one graph where the processes sum gradients at least as fast as asked, else a
    graph per bucket; the rate is the slowest rank's, so no rank compiles its model differently."""
    import json

    from imagenet_trainer.engine.distributed import DistContext, choose_ddp_graph

    out = tmp_path / "out"
    out.mkdir()
    spawn_ranks(_ddp_graph_as_rank, (2, str(tmp_path / "init"), str(out)))
    r0, r1 = (json.loads((out / f"{r}.json").read_text()) for r in range(2))
    assert r0 == r1  # the same choices, and the same rate in their reasons
    (whole, why_whole), (split, why_split), asked = r0
    assert (whole, split, asked) == ("whole", "split", ["split", ""])
    gbps = float(re.search(r"at ([0-9.,]+) GB/s", why_whole).group(1).replace(",", ""))
    assert gbps >= 0 and "at least 0): whole" in why_whole and "under inf): split" in why_split
    assert choose_ddp_graph("auto", 1000, torch.device("cpu"), DistContext()) == ("split", "")  # one process


def test_two_processes_warn_once_of_a_bad_image_both_cached(tiny_tree, tmp_path, capfd):
    """A bad train image, which both processes find while filling the train cache, is announced once; a bad val
    image, which only the process whose val shard holds it finds, is announced by that one."""
    (tiny_tree / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    (tiny_tree / "val" / "fox" / "zz-broken.jpg").write_bytes(b"not a jpeg")  # the last file: rank 1's shard
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", *ARGS,
                 "--cache", "ram"]) == 0
    err = capfd.readouterr().err
    assert err.count("warning: skipped unreadable image") == 2, err
    assert err.count(f"cat{os.sep}broken.jpg") == 1 and err.count("zz-broken.jpg") == 1


def test_a_timm_model_fine_tuned_by_two_processes_matches_one(tiny_tree, tmp_path):
    pytest.importorskip("timm")
    args = [*ARGS[2:], "--arch", "timm/test_convnext", "--opt", "adamw", "--lr", "0.001", "--layer-decay", "0.8",
            "--freeze-epochs", "0.5", "--clip-grad", "1.0"]
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "one"), *args]) == 0
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", *args]) == 0
    _assert_same_weights(tmp_path / "one" / "model_01.pt", tmp_path / "two" / "model_01.pt", atol=1e-4)


def test_two_processes_each_augment_their_own_part(tiny_tree, tmp_path):
    args = [*ARGS, "--auto-augment", "trivial", "--mixup", "0.2", "--cutmix", "1.0", "--reprob", "0.5",
            "--repeated-aug", "2", "--label-smoothing", "0.1"]
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "two"), "--ngpu", "2", *args]) == 0
    assert safe_load(tmp_path / "two" / "model_01.pt")["metrics"]["train"]["count"] == 18
