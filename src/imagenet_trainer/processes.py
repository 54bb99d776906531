"""Worker processes for the dataset tools (verify, resize, shard, sample-data) that end with the tool.

A ``ProcessPoolExecutor``'s workers wait for work on a queue; when the tool is killed outright (SIGKILL, an
out-of-memory kill), nothing tells them, and they would sleep on for ever. On Linux each worker asks the
kernel for a SIGTERM when the tool ends (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _end_with_parent() -> None:
    """In each worker, before any work: end when its parent (the tool, or under forkserver the server, which
    ends with the tool) ends."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl here: the workers outlive a killed tool, as before
        return
    if os.getppid() == 1:  # the parent ended before the request was made
        os._exit(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that end with this one, however it ends."""
    return ProcessPoolExecutor(workers, initializer=_end_with_parent)
