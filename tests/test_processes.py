"""The dataset tools' worker processes end with the tool, even when it is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

KILLED_TOOL = """
import os, signal, sys
from imagenet_trainer.processes import worker_pool
pool = worker_pool(1)
with open(sys.argv[1], "w") as f:
    f.write(str(pool.submit(os.getpid).result()))
os.kill(os.getpid(), signal.SIGKILL)
"""

FORKSERVER_TOOL = """
import multiprocessing, os
from imagenet_trainer.processes import worker_pool
multiprocessing.set_start_method("forkserver")
with worker_pool(2) as pool:
    print(sum(pool.map(abs, range(-5, 5))))
"""


def _run(code: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], timeout=60, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), **kw)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line for line in f)  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_ends_when_its_tool_is_killed(tmp_path):
    _run(KILLED_TOOL, str(tmp_path / "pid"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = int((tmp_path / "pid").read_text())
    try:
        deadline = time.time() + 10
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver is a POSIX start method")
def test_the_pool_works_under_forkserver():
    """Python 3.14's default start method on Linux: a worker's parent is the server, not the tool."""
    out = _run(FORKSERVER_TOOL, capture_output=True)
    assert out.returncode == 0 and out.stdout.strip() == "25", out.stderr[-2000:]
