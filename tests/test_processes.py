"""The dataset tools' worker processes end with the tool, even when it is killed outright."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

KILLED_TOOL = """
import os, signal, sys
from imagenet_trainer.processes import worker_pool
pool = worker_pool(1)
print(pool.submit(os.getpid).result(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line for line in f)  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_ends_when_its_tool_is_killed():
    out = subprocess.run([sys.executable, "-c", KILLED_TOOL], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    worker = int(out.stdout.split()[0])
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
