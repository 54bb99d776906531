"""Where the time to the first training batch goes: `train`'s set-up steps, timed in every rank.

Wraps the functions that ``engine.run.train`` calls on its way to the first batch (and the DataLoader's
``__iter__``, which forks the workers, and the loader's first item), then runs the CLI with the given
arguments. With ``--ngpu N`` the ranks are forked from this process, so they carry the wrappers. Each
call prints one line to stderr: ``[start] rank R  NAME  from A s to B s after launch (D s)``.

Usage: python benchmarks/start_phases.py train --data ... [--ngpu 2] ...
"""

from __future__ import annotations

import functools
import os
import sys
import time

import torch.utils.data

import imagenet_trainer.cli as cli
import imagenet_trainer.data.loader as loader_mod
import imagenet_trainer.engine.run as run
from imagenet_trainer.engine.metrics import process_age

RUN_STEPS = ["_setup", "_locate_resume", "adapt_to_image_size", "load_indexes", "create_model", "make_optimizer",
             "make_ema", "_wrap", "build_data", "RunLog", "_banner", "train_one_epoch"]


def _say(name: str, a0: float, a1: float) -> None:
    rank = os.environ.get("RANK", "0")
    print(f"[start] rank {rank}  {name:<22} from {a0:6.2f} s to {a1:6.2f} s after launch ({a1 - a0:.2f} s)",
          file=sys.stderr, flush=True)


def timed(fn, name: str, once: bool = False):
    done = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if once and done:
            return fn(*args, **kwargs)
        done.append(1)
        a0 = process_age()
        if name == "train_one_epoch":  # it runs for the whole epoch: say when it begins
            _say(name + " (begins)", a0, a0)
            return fn(*args, **kwargs)
        out = fn(*args, **kwargs)
        _say(name, a0, process_age())
        return out

    return wrapper


def timed_first_item(items):
    """``WrappedLoader._items``: the first item's wait, once per process."""
    seen = []

    @functools.wraps(items)
    def wrapper(self):
        a0 = process_age()
        for k, item in enumerate(items(self)):
            if k == 0 and not seen:
                seen.append(1)
                _say("first item from workers", a0, process_age())
            yield item

    return wrapper


for step in RUN_STEPS:
    setattr(run, step, timed(getattr(run, step), step))
torch.utils.data.DataLoader.__iter__ = timed(torch.utils.data.DataLoader.__iter__, "DataLoader.__iter__", once=True)
loader_mod.WrappedLoader._items = timed_first_item(loader_mod.WrappedLoader._items)
_say("script imported", 0.0, process_age())

if __name__ == "__main__":
    t = time.time()
    sys.exit(cli.main(sys.argv[1:], fresh_process=True))
