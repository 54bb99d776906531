"""``--ngpu N`` from Python: ``launch(cfg, N)`` runs ``train(cfg)`` as N local DDP processes, one per GPU (or N
CPU processes with ``device="cpu"``), through torch's elastic launcher, as ``torchrun --nproc-per-node N`` does."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.errors import CheckError, UsageError


def launch(cfg: TrainConfig, nprocs: int, master_port: int | None = None, fork: bool = False) -> int:
    """Run ``train(cfg)`` as ``nprocs`` local processes (``--ngpu N``) through torch's elastic launcher; the exit
    code (the ranks' one-line errors are raised once, as a ``UsageError``).

    ``master_port``: where the processes meet (default: a free port). ``fork``: the caller is a process that
    exists only to run this and has computed nothing (the command line), so the ranks are forked from it.

    The processes are forked from this one, which has already imported torch and this project (and
    has not touched CUDA), so a rank starts in well under a second instead of importing everything
    again; the launcher's rendezvous, monitoring and failure handling are torchrun's. Forking is safe
    only from a process that has computed nothing (an OpenMP pool that has run hangs its forked
    copies), so any other caller (a notebook, a test) gets fresh interpreters instead, as torchrun starts.
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if os.environ.get("WORLD_SIZE"):
        raise UsageError("--ngpu is set, but this process was already started by torchrun; drop --ngpu")
    if cfg.device.startswith("cuda") or cfg.device == "auto":
        os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # count GPUs through NVML: fork stays safe
        import torch

        if torch.cuda.is_available() and nprocs > torch.cuda.device_count():
            raise UsageError(f"--ngpu {nprocs}: only {torch.cuda.device_count()} GPUs are visible "
                             "(CUDA_VISIBLE_DEVICES selects them)")
    if cfg.batch_size is not None and cfg.batch_size % nprocs:
        raise UsageError(f"--batch-size {cfg.batch_size} is the global batch; it must divide by --ngpu {nprocs}")
    if master_port is not None:
        _check_port_free(master_port)
    cfg.check()  # option errors surface here, once, not in every rank
    import torch._dynamo  # noqa: F401  the optimizer imports it: once here rather than in each rank
    import imagenet_trainer.engine.run  # noqa: F401

    from imagenet_trainer.engine.metrics import LAUNCH_ENV, process_age

    os.environ[LAUNCH_ENV] = str(time.time() - (process_age() or 0.0))  # children count from this launch
    endpoint = "localhost:0" if master_port is None else f"127.0.0.1:{master_port}"
    batch = (f"global batch {cfg.batch_size}, {cfg.batch_size // nprocs} per process" if cfg.batch_size else
             "global batch chosen from the data, split between them")
    print(f"starting {nprocs} processes: {batch}; LR rules use the global batch", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="imagenet-trainer-errors-") as errors, _launcher_quiet():
        # The launcher's own folder (its per-rank error files) goes inside ours, so it is removed with it: by
        # default it makes a torchelastic_* folder in the temp folder per run and leaves it there.
        config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nprocs, run_id=str(uuid.uuid4()),
                              rdzv_backend="c10d", rdzv_endpoint=endpoint, max_restarts=0,
                              start_method="fork" if fork else "spawn",
                              logs_specs=DefaultLogsSpecs(log_dir=os.path.join(errors, "launcher")))
        os.environ[RANK_ERRORS_ENV] = errors
        try:
            codes = elastic_launch(config, _run_rank)(cfg)
        except ChildFailedError as e:
            usage = sorted({f.read_text() for f in Path(errors).glob("rank*.txt")})
            if usage:  # the ranks' one-line errors (the same in every rank, as a rule), once each
                raise UsageError("; ".join(usage)) from None
            rank, failure = next(iter(e.failures.items()))
            print(f"imagenet-trainer train: error: process {rank} of {nprocs} failed ({_how(failure.exitcode)}); "
                  "the others were stopped", file=sys.stderr)
            return 1
        except SignalException as e:  # Ctrl-C (or a kill) reached this process; the launcher has stopped the ranks
            if not Path(errors, "rank0.interrupted").exists():  # rank 0 was stopped before it could say more
                print("imagenet-trainer train: interrupted. The processes were stopped; add --resume auto to the same "
                      "command to continue from the last saved checkpoint.", file=sys.stderr)
            return 128 + int(e.sigval)
        finally:
            os.environ.pop(RANK_ERRORS_ENV, None)
    return max(codes.values(), default=0)


RANK_ERRORS_ENV = "IMAGENET_TRAINER_RANK_ERRORS"  # --ngpu: the folder of the ranks' notes (usage errors, Ctrl-C)


def _run_rank(cfg) -> int:
    """One rank of ``--ngpu``: the launcher has set RANK, LOCAL_RANK, WORLD_SIZE and the rendezvous address.

    A usage error (a missing --data folder, say) is the same in every rank: the rank leaves it in the folder of
    ``RANK_ERRORS_ENV`` and exits with 2, and the launching process prints each different one once. A rank that
    stopped on Ctrl-C (and so, on rank 0, printed where to resume) leaves a note there too: a rank blocked in a
    collective when the others stop never gets to, and ends ``INTERRUPT_GRACE_S`` after the Ctrl-C.
    """
    from imagenet_trainer.engine.run import train

    # A forked rank inherits the launcher's handlers, which turn these signals into tracebacks. Ctrl-C should stop
    # training cleanly (``train`` then says where to resume), once: the launcher passes the signal on again.
    signal.signal(signal.SIGINT, _interrupt_once)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT"):  # (the last two are not on Windows)
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    _exit_after_interrupt(INTERRUPT_GRACE_S)
    errors = os.environ.get(RANK_ERRORS_ENV)
    note = Path(errors, f"rank{os.environ.get('RANK', '0')}") if errors and Path(errors).is_dir() else None
    try:
        code = train(cfg)
    except CheckError as e:  # a failed check (a diverged run): the same on every rank, said by the first
        if os.environ.get("RANK", "0") == "0":
            print(f"imagenet-trainer train: error: {e}", file=sys.stderr)
        sys.exit(1)
    except UsageError as e:
        if note is None:
            print(f"imagenet-trainer train: error: {e}", file=sys.stderr)
        else:  # whole or not at all, as the launcher may read it any moment
            note.with_suffix(".part").write_text(str(e))
            os.replace(note.with_suffix(".part"), note.with_suffix(".txt"))
        sys.exit(2)
    if code == 130 and note is not None:
        note.with_suffix(".interrupted").touch()
    return code


INTERRUPT_GRACE_S = 10.0  # a rank still running this long after Ctrl-C exits (the launcher would wait 30 s)


def _exit_after_interrupt(seconds: float) -> None:
    """End this process ``seconds`` after a Ctrl-C, whatever it is doing then.

    Python runs a signal's handler only when the main thread is back in Python code; a rank that waits inside a
    collective for a rank that has already stopped would never get there. The signal's number reaches a pipe at
    once (``signal.set_wakeup_fd``), where a thread watches for it. Checkpoints are written whole or not at all,
    so this loses none.
    """
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)

    def watch() -> None:
        while data := os.read(read, 64):
            if signal.SIGINT in data:
                time.sleep(seconds)
                os._exit(130)

    threading.Thread(target=watch, name="exit-after-interrupt", daemon=True).start()


def _interrupt_once(signum, frame) -> None:
    """The first Ctrl-C: a KeyboardInterrupt; the ones after it (the launcher passes it on) are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _how(exitcode: int) -> str:
    """How a rank ended, in words: its exit code, or the signal that killed it."""
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}; its error is printed above"


@contextlib.contextmanager
def _launcher_quiet():
    """The elastic launcher's own error logs off while it runs (unless ``LOGLEVEL`` asks for them): a failed
    rank has printed its error already, and ``launch`` says which rank failed, in one line; the
    launcher's log would add its own traceback of the rank's exit."""
    if os.environ.get("LOGLEVEL"):
        yield
        return
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith("torch.distributed.elastic")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _check_port_free(port: int) -> None:
    """A clear error now, rather than a rendezvous that waits for a server that is not ours."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(f"--master-port {port}: the port is already in use; choose another "
                             "(or leave --master-port out to take a free one)") from None
