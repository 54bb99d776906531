"""``--loader auto`` on a GPU: a short probe picks the CPU loader or the hybrid one, and says why.

The CPU loader costs the GPU nothing, but it delivers only what its workers decode. The hybrid loader
decodes part of each batch on the GPU: that keeps a fast model fed, and it takes GPU time from a slow
one. So the probe measures two rates on this machine, at the same time (as training will run them):
- how fast this process's model trains on batches already on the device (the caller's ``model_rate``:
  steps on random data, after a warm-up where a compiled model compiles as on its first batch);
- how fast this process's workers decode training crops (``CpuDecodeTiming``: a throwaway pool of small
  batches, about a second, on the cores and at the priority of training's workers), started by the model's
  timing once its warm-up is over, because compilation keeps every core busy (2x H100 machine, 2026-11-26:
  526 img/s measured beside it, for workers that decode 7,000), and the model keeps stepping until the
  workers' timing ends.
If the workers keep up with the model, the CPU loader; otherwise the hybrid one. The choice is cached
per data, model, batch, GPU and process count, so later runs of the same set-up start without probing.

One H100 with 16 cores (2026-11-26, 130k-image tree): the workers decode 4,900-5,800 img/s; a compiled
ResNet-50 trains at 5,600 img/s, at 99.4% of that with the CPU loader and 94-96% with the hybrid one.
ResNet-18 (11,900 img/s) and AlexNet (33,000) need the GPU's share of the decoding.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import cache_plan, few_images, load_indexes, resolve_workers, training_geometry
from imagenet_trainer.data.dataset import ImageFolderDataset
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import FileIndex, default_cache_dir
from imagenet_trainer.data.loader import make_dataloader
from imagenet_trainer.engine.distributed import all_ranks

PROBE_BATCH = 32  # images per probe batch: small, so the pool's first round ends soon
PROBE_ROUNDS = 2  # timed rounds of one batch per worker, after an untimed first round (the pool's start)
PROBE_IMAGES = 512  # shards: the probe draws from their first images, held in memory


@dataclass
class LoaderChoice:
    kind: str  # "cpu" or "hybrid"
    cpu_rate: float  # img/s this process's workers decode
    model_rate: float  # img/s this process's model trains on batches already on the device
    seconds: float  # the probe's wall-clock, compilation included (0 when cached)
    cached: str = ""  # the cache file the choice came from, if it did

    @property
    def start_share(self) -> float:
        """The hybrid loader's first CPU share: what the workers decode at the model's rate, and at least
        ``SplitController.START``. Where the workers nearly keep up, the GPU then takes only the rest, not 70%
        of each batch: compiled ResNet-50 on 2x H100, 14 workers per rank, decode about 5,000 img/s against
        the model's 5,400 per rank (2026-11-26)."""
        from imagenet_trainer.data.hybrid import SplitController

        ratio = self.cpu_rate / self.model_rate if self.model_rate > 0 else 0.0
        return round(max(SplitController.START, min(1.0, ratio)), 2)

    def describe(self) -> str:
        verdict = ("they keep up: CPU loader, the GPU only trains" if self.kind == "cpu" else
                   f"they fall short: hybrid loader, the workers start with {self.start_share:.0%} of each batch "
                   "and the GPU decodes the rest")
        how = (f"probed before, cached in {self.cached}" if self.cached else f"probe {self.seconds:.1f} s")
        return (f"loader auto: the workers decode {self.cpu_rate:,.0f} img/s and the model trains "
                f"{self.model_rate:,.0f} img/s; {verdict} ({how}; --loader cpu|hybrid chooses)")


def _probe_batches(index: FileIndex, procs: int, batch: int, rounds: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(index), size=(procs * (rounds + 1), batch))
    seeds = rng.integers(0, 2**62, size=picks.shape)
    return [[(int(i), int(s)) for i, s in zip(p, q)] for p, q in zip(picks, seeds)]


def _time_rounds(batches, procs: int) -> float:
    """Images/s over ``batches`` (an iterator), from the end of its first round of ``procs`` batches."""
    t0, timed = None, 0
    for k, b in enumerate(batches, 1):
        if k == procs:
            t0 = time.perf_counter()
        elif k > procs:
            timed += len(b.labels) + len(b.bad)
    return timed / max(time.perf_counter() - t0, 1e-9)


class CpuDecodeTiming:
    """The workers' decoding rate on a sample of the files, timed on a background thread.

    ``start`` forks the pool's processes on the calling thread; the thread then times the pool's
    ``rounds + 1`` batches per worker, the clock running from the end of the first round (the pool's
    start and the first files' reads are not the steady rate) to the last batch.

    ``lower_priority``: the workers run as a GPU run's training workers do (``loader.make_dataloader``): at a
    lower priority, and off the cores set aside for the ranks' own threads when several ranks share the
    machine. At full priority on every core, the probe's workers took cores from the ranks' threads that the
    model's timing beside them needs, and from 2 cores more than training gives them: on 2x H200 a pair's
    probe measured the model at 4,049-4,930 img/s per rank (2026-11-27) against the 5,900 it trains at,
    and at 6,300-6,600 with no workers beside (the same day); one cold probe then picked the CPU loader, and the
    pair trained 8,883 img/s where the hybrid loader gave 10,458.
    """

    def __init__(self, index: FileIndex, geometry: Geometry, workers: int, batch: int = PROBE_BATCH,
                 rounds: int = PROBE_ROUNDS, seed: int = 0, lower_priority: bool = False):
        self.procs = max(1, workers)
        self._loader = make_dataloader(ImageFolderDataset(index, geometry),
                                       _probe_batches(index, self.procs, batch, rounds, seed), workers,
                                       pin_memory=False, persistent=False, lower_priority=lower_priority)
        self._thread: threading.Thread | None = None
        self._result: dict = {}

    def start(self) -> "CpuDecodeTiming":
        if self._thread is None:
            it = iter(self._loader)
            self._thread = threading.Thread(target=self._run, args=(it,), name="loader-probe", daemon=True)
            self._thread.start()
        return self

    def _run(self, it) -> None:
        try:
            self._result["rate"] = _time_rounds(it, self.procs)
        except BaseException as e:  # handed to the caller of ``wait``
            self._result["error"] = e

    def running(self) -> bool:
        """Started and not finished: what the model's timing keeps stepping beside."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> float:
        """Images/s (starting the timing first if nobody has)."""
        self.start()._thread.join()
        if "error" in self._result:
            raise self._result["error"]
        return self._result["rate"]


def _cache_file(key: dict, cache_dir: Path | None) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return (cache_dir or default_cache_dir()) / "loader" / f"{digest}.json"


def _load(path: Path) -> LoaderChoice | None:
    try:
        d = json.loads(path.read_text())
        return LoaderChoice(d["kind"], float(d["cpu_rate"]), float(d["model_rate"]), 0.0, str(path))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(path: Path, choice: LoaderChoice, key: dict) -> None:
    record = asdict(choice) | {"key": key, "date": datetime.date.today().isoformat()}
    record.pop("cached")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache folder only means probing again next time
        print(f"note: could not cache the loader probe in {path}: {e.strerror}", file=sys.stderr)


def choose_loader(index: FileIndex, geometry: Geometry, workers: int, model_rate: Callable[[CpuDecodeTiming], float],
                  device: torch.device, verbose: bool = True, key: dict | None = None,
                  cache_dir: Path | None = None) -> LoaderChoice:
    """Pick the CPU loader if the workers decode at least as fast as the model trains, else hybrid.

    ``model_rate(timing)``: this process's training images/s; after its warm-up it calls ``timing.start()``
    and goes on stepping while ``timing.running()`` (``engine.trainer.synthetic_step_rate`` does).
    ``key``: what the rates depend on besides the files (model, batch, GPU, processes...); with it, a
    choice probed before for the same key and data is reused, if every rank has it.
    """
    path = _cache_file({"data": index.identity(), "files": len(index)} | key, cache_dir) if key else None
    cached = _load(path) if path is not None else None
    if all_ranks(cached is not None, device):
        choice = cached
    else:
        t0 = time.perf_counter()
        timing = CpuDecodeTiming(index, geometry, workers, lower_priority=device.type == "cuda")
        step_rate = model_rate(timing)  # the workers decode beside its timed steps, as in training
        rate = timing.wait()
        kind = "cpu" if all_ranks(rate >= step_rate, device) else "hybrid"
        choice = LoaderChoice(kind, rate, step_rate, time.perf_counter() - t0)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        if path is not None and rank == 0:
            _save(path, choice, key)
    if verbose:
        print(choice.describe(), file=sys.stderr, flush=True)
    return choice


def choose_for_run(cfg: TrainConfig, device: torch.device, rank: int, world_size: int,
                   model_rate: Callable[[CpuDecodeTiming], float]) -> LoaderChoice | None:
    """``--loader auto`` on a GPU, for a run whose sets are not cached and whose ``--cpu-share`` is not fixed:
    the probe's choice (``choose_loader``), which ``data.build.build_data`` then builds; else None."""
    if cfg.loader != "auto" or device.type != "cuda" or cfg.cpu_share is not None:
        return None
    train_index, val_index = load_indexes(cfg)
    if cache_plan(cfg, device, train_index, val_index, world_size)[0] != "off":
        return None
    geometry, workers = training_geometry(cfg), resolve_workers(cfg)
    key = {"arch": cfg.arch, "batch": cfg.batch_size // world_size // max(cfg.accum, 1),
           "crop": [geometry.kind, cfg.crop_size, cfg.image_size, cfg.rrc_min_scale],
           "model": [cfg.precision, cfg.backend, cfg.tune_cudnn(), cfg.channels_last, cfg.small_stem],
           "processes": world_size, "workers": workers, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(device)}
    return choose_loader(few_images(train_index, PROBE_IMAGES), geometry, workers, model_rate, device,
                         verbose=rank == 0, key=key,
                         cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None)
