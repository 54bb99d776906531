"""The ``imagenet-trainer`` command: one module per subcommand, each with ``add_parser`` and ``run``.

Results go to stdout, progress and logs to stderr. Exit codes: 0 success, 2 bad usage or bad input
(one line, no traceback), 1 anything else, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys

from imagenet_trainer import __version__
from imagenet_trainer.cuda_env import prefer_many_hardware_queues
from imagenet_trainer.errors import CheckError, UsageError, os_error_message

_SUBCOMMANDS = ("train", "evaluate", "predict", "models", "sample_data", "bench", "plot", "convert", "verify", "resize",
                "create_dataset", "prepare_imagenet", "shard")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (argparse prints the whole usage first: for
    ``train``, some 40 lines above the line that matters). Subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="imagenet-trainer", description="Train image classifiers on ImageNet or any folder of images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"imagenet-trainer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _SUBCOMMANDS:
        importlib.import_module(f"imagenet_trainer.cli.{name}").add_parser(sub)
    parser.commands = sub.choices  # name -> the subcommand's parser
    return parser


def main(argv: list[str] | None = None, fresh_process: bool = False) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]); returns the exit code.

    ``fresh_process``: this process exists only to run this command and has computed nothing yet
    (``train --ngpu`` may then fork its ranks from it).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print as the bytes they are
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    prefer_many_hardware_queues()  # before anything starts CUDA
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named by the subcommand's parser, whose --help lists its options
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
        if getattr(args, "check_args", None):  # a subcommand's checks across its options
            args.check_args(args)
    except SystemExit as e:  # argparse exits 2 on bad usage, 0 on --help
        return int(e.code or 0)
    args.argv = argv
    args.fresh_process = fresh_process
    try:
        return int(args.run(args) or 0)
    except UsageError as e:
        print(f"imagenet-trainer {args.command}: error: {e}", file=sys.stderr)
        return 2
    except CheckError as e:
        print(f"imagenet-trainer {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`
        return 0
    except OSError as e:  # a path of the user's that cannot be used: one line, exit 2; other OS errors keep their traceback
        message = os_error_message(e)
        if message is None:
            raise
        print(f"imagenet-trainer {args.command}: error: {message}", file=sys.stderr)
        return 2


def console_main() -> None:
    code = main(fresh_process=True)
    # The command's work is done and its files are closed. What remains of a normal exit is the interpreter's
    # teardown of torch's modules: 0.5-1.2 s after the last line (1.2 s on a 2-core CPU; on an H100 machine the
    # CIFAR run's exit took 1.0-1.2 s with it, 0.5 s without), on every command, `predict` of one image included.
    # A process leaves as multiprocessing's children do, once its threads and exit handlers have run as they
    # would have.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        _finish_threads_and_exit_handlers()
    # A rank started by torchrun or srun leaves even without those: a process-group rank, with its work done and
    # files written, was seen to abort in them ("terminate called without an active exception", SIGABRT) in 3
    # of about 160 runs on a loaded 2-core machine, and torchrun then reports the finished job as failed.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`| head`), or a closed stream
            pass
    os._exit(code)


def _finish_threads_and_exit_handlers() -> None:
    """What the interpreter's exit does before its teardown: wait for the threads that are not daemons (after
    the callbacks that tell them to stop, such as thread pools'), then run the ``atexit`` handlers."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # the interpreter's own exit step (CPython 3.9 on)
    if shutdown is not None:
        shutdown()
    else:
        for t in threading.enumerate():
            if t is not threading.main_thread() and not t.daemon:
                t.join()
    atexit._run_exitfuncs()
