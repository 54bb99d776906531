"""Atomic, code-free checkpoints.

Files hold only tensors and plain values, and every load uses ``weights_only=True``: a model file
from elsewhere cannot run code here. Saves go to a temporary file in the same folder, are flushed to
disk, then renamed over the target, so a kill or a failure during a save leaves the old file intact.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch

from imagenet_trainer.errors import UsageError, reason
from imagenet_trainer.files import _sync_dir, _tmp_name, atomic_write

MODEL_FORMAT = "imagenet-trainer/model"
CHECKPOINT_FORMAT = "imagenet-trainer/checkpoint"


def atomic_link(src: str | os.PathLike, path: str | os.PathLike, obj: dict) -> None:
    """Make ``path`` a second name of the finished file ``src`` (which holds ``obj``), atomically: a hard
    link under a temporary name, renamed over ``path``. Files are only ever replaced, never rewritten,
    so the two names stay valid on their own. Where links are not supported, ``obj`` is saved again."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        tmp.unlink(missing_ok=True)
        os.link(src, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_save(obj, path)
        return
    _sync_dir(path.parent)


def atomic_save(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _unreadable(path: Path, e: Exception) -> UsageError:
    """The error for a file that torch.load failed on: torch reads files it did not write into any
    exception (a text file's is a KeyError), so the file's first bytes say which case it is."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        return UsageError(f"{path}: empty file, not a model or checkpoint")
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip archive (a pickle before torch 1.6)
        return UsageError(f"{path}: not a model or checkpoint file (torch.save did not write it)")
    return UsageError(f"{path}: not a readable checkpoint ({reason(e, 120)}); the file may be truncated or corrupt")


def safe_load(path: str | os.PathLike, expect: str | None = None) -> dict:
    """Load a checkpoint or model file with ``weights_only=True``; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        code = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln]
        if code:
            raise UsageError(f"{path}: refused to load: the file would run code or build objects other than tensors "
                             f"and plain values ({code[0][:120]}); only tensors and plain values are accepted") from None
        raise _unreadable(path, e) from None
    except Exception as e:
        raise _unreadable(path, e) from None
    if not isinstance(obj, dict) or obj.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise UsageError(f"{path}: not an imagenet-trainer model or checkpoint file "
                         "(another tool's weights, .pth or .safetensors, start a new run with --weights FILE)")
    if expect is not None and obj["format"] != expect:
        kind = "model file (model_XX.pt)" if expect == MODEL_FORMAT else "checkpoint (checkpoint_last.pt)"
        if expect == MODEL_FORMAT and obj["format"] == CHECKPOINT_FORMAT:
            return model_file_from_checkpoint(obj)
        raise UsageError(f"{path}: expected a {kind}")
    return obj


def model_file_from_checkpoint(ckpt: dict) -> dict:
    """The model-file view of a full training checkpoint (so evaluate/predict accept either)."""
    return {k: v for k, v in ckpt.items() if k not in ("optimizer", "scaler", "rng", "format")} | {"format": MODEL_FORMAT}


def load_weights(model: torch.nn.Module, state_dict: dict, path) -> None:
    """Load ``state_dict`` into ``model``; a clear error names the file when the shapes disagree."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UsageError(f"{path}: weights do not fit the model ({' '.join(first[:2])[:200]})") from None


def cpu_copy(obj):
    """``obj`` with every tensor copied to the CPU (a copy even of CPU tensors), for saving while training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


class BackgroundWriter:
    """Runs file writes (checkpoints, plots) on one thread, in order, while training goes on.

    At most one job waits: ``submit`` first waits for the previous job, so memory stays bounded and
    a slow disk slows training rather than piling up copies. A job's error is raised by the next
    ``submit`` or by ``close``. Jobs must own their data (see ``cpu_copy``).
    """

    def __init__(self):
        import concurrent.futures

        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="writer")
        self._pending = None
        self.waited = 0.0  # seconds the caller spent waiting for earlier jobs

    def wait(self) -> None:
        import time

        if self._pending is not None:
            t0 = time.perf_counter()
            pending, self._pending = self._pending, None
            pending.result()
            self.waited += time.perf_counter() - t0

    def submit(self, job) -> None:
        self.wait()
        self._pending = self._pool.submit(job)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def rng_state(device: torch.device) -> dict:
    """The CPU and CUDA random generators' states, for an exact resume."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
