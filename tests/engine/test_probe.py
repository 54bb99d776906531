import math
from pathlib import Path

import pytest
import torch

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data import build
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.hybrid import SplitController
from imagenet_trainer.data.index import build_index
from imagenet_trainer.engine.probe import CpuDecodeTiming, LoaderChoice, choose_loader
from tests.conftest import spawn_ranks

CPU = torch.device("cpu")


def test_cpu_decode_rate_is_measured_in_and_out_of_process(tiny_tree):
    index = build_index(tiny_tree / "train")
    geometry = Geometry("rrc", 32, 36)
    for workers in (0, 2):
        rate = CpuDecodeTiming(index, geometry, workers, batch=4, rounds=2).wait()
        assert math.isfinite(rate) and rate > 0


def test_the_cpu_loader_is_chosen_only_when_the_workers_keep_up(tiny_tree, capsys):
    index = build_index(tiny_tree / "train")
    geometry = Geometry("rrc", 32, 36)
    calls = []

    def rate(value):
        def measure(timing):
            calls.append(value)
            return value
        return measure

    slow_model = choose_loader(index, geometry, 0, rate(1e-3), CPU)
    fast_model = choose_loader(index, geometry, 2, rate(1e12), CPU)
    assert (slow_model.kind, fast_model.kind) == ("cpu", "hybrid")
    assert calls == [1e-3, 1e12]
    assert slow_model.cpu_rate > 0 and slow_model.seconds > 0 and not slow_model.cached
    err = capsys.readouterr().err
    assert "loader auto:" in err and "CPU loader" in err and "hybrid loader" in err


def test_a_choice_is_cached_per_key(tiny_tree, tmp_path, capsys):
    index = build_index(tiny_tree / "train")
    geometry = Geometry("rrc", 32, 36)
    calls = []

    def model_rate(timing):
        calls.append(1)
        return 1e-3

    first = choose_loader(index, geometry, 0, model_rate, CPU, key={"arch": "a"}, cache_dir=tmp_path)
    again = choose_loader(index, geometry, 0, model_rate, CPU, key={"arch": "a"}, cache_dir=tmp_path)
    other = choose_loader(index, geometry, 0, model_rate, CPU, key={"arch": "b"}, cache_dir=tmp_path)
    assert len(calls) == 2 and not first.cached and not other.cached  # "a" was probed once
    assert again.kind == first.kind == "cpu" and again.cpu_rate == first.cpu_rate and again.seconds == 0
    assert again.cached.startswith(str(tmp_path / "loader"))
    assert "cached in" in capsys.readouterr().err
    (Path(again.cached)).write_text("not json")  # a damaged cache file: probe again
    assert not choose_loader(index, geometry, 0, model_rate, CPU, key={"arch": "a"}, cache_dir=tmp_path).cached


def test_the_workers_are_timed_after_the_models_warm_up_and_beside_its_steps(tiny_tree, monkeypatch):
    """Compilation (in the warm-up) keeps every core busy: workers timed beside it look far slower than
    they are. So the model's timing starts them after its warm-up and steps while they run."""
    from imagenet_trainer.engine.trainer import synthetic_step_rate

    index = build_index(tiny_tree / "train")
    passes, seen = [], {}
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    model.register_forward_hook(lambda *a: passes.append(1))
    start = CpuDecodeTiming.start

    def recorded_start(self):
        seen.setdefault("passes at start", len(passes))
        return start(self)

    monkeypatch.setattr(CpuDecodeTiming, "start", recorded_start)

    def model_rate(timing):
        rate = synthetic_step_rate(model, torch.nn.CrossEntropyLoss(), CPU, None, 2, 8, 5, warmup=2, steps=1,
                                   min_seconds=0.0, beside=timing)
        seen["running after"] = timing.running()
        return rate

    choose_loader(index, Geometry("rrc", 32, 36), 2, model_rate, CPU, verbose=False)
    assert seen["passes at start"] == 2  # after the two warm-up passes, before the timed ones
    assert len(passes) > 3 and not seen["running after"]  # stepped until the workers' timing ended


def test_on_a_gpu_the_probes_workers_run_as_trainings_workers_do(tiny_tree, monkeypatch):
    """At full priority on every core, the probe's workers took cores from the rank's threads that the model's
    timing beside them needs (a pair on 2x H200 measured at 70-82% of its training rate). On a GPU run they
    yield and keep to the workers' cores, as ``image_dataloader``'s do; a CPU run's keep every core."""
    from imagenet_trainer.engine import probe
    from imagenet_trainer.data.loader import _lower_priority

    index = build_index(tiny_tree / "train")
    geometry = Geometry("rrc", 32, 36)
    built = []

    class Recorded(CpuDecodeTiming):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self._loader.worker_init_fn)

    monkeypatch.setattr(probe, "CpuDecodeTiming", Recorded)
    for device in (torch.device("cuda"), CPU):  # outside a process group the device is only a label here
        choose_loader(index, geometry, 2, lambda timing: timing.wait() * 2, device, verbose=False)
    assert built[0].func is _lower_priority and built[1] is None
    assert Recorded(index, geometry, 2, batch=4, rounds=1, lower_priority=True).wait() > 0  # it still times


def test_describe_gives_both_rates():
    line = LoaderChoice("cpu", 6123.4, 5600.0, 1.25).describe()
    assert "6,123 img/s" in line and "5,600 img/s" in line and "probe 1.2 s" in line
    assert "cached in /c/x.json" in LoaderChoice("cpu", 1.0, 1.0, 0.0, "/c/x.json").describe()


def test_the_hybrid_loader_starts_with_what_the_workers_decode_at_the_models_rate():
    assert LoaderChoice("hybrid", 5000.0, 5400.0, 1.0).start_share == 0.93  # they nearly keep up
    assert LoaderChoice("hybrid", 5500.0, 33000.0, 1.0).start_share == SplitController.START  # at least START
    line = LoaderChoice("hybrid", 5000.0, 5400.0, 1.0).describe()
    assert "hybrid loader, the workers start with 93% of each batch" in line


def test_build_data_starts_the_probed_hybrid_split_where_the_probe_says(tiny_tree, monkeypatch):
    made = {}
    monkeypatch.setattr(build, "pick_loader", lambda kind, device: "hybrid" if kind == "auto" else kind)
    monkeypatch.setattr(build, "make_train_loader", lambda kind, *a, **k: made.update(kind=kind, share=a[-1], **k))
    build.build_data(_cfg(tiny_tree, workers=0), CPU)
    assert made == {"kind": "hybrid", "share": None, "fixed": False}  # no probe: the controller's START
    build.build_data(_cfg(tiny_tree, workers=0), CPU, choice=LoaderChoice("hybrid", 5500.0, 33000.0, 1.0))
    assert made == {"kind": "hybrid", "share": SplitController.START, "fixed": False}  # adaptive from there
    build.build_data(_cfg(tiny_tree, workers=0), CPU, choice=LoaderChoice("hybrid", 5000.0, 5400.0, 1.0))
    assert made == {"kind": "hybrid", "share": 0.93, "fixed": False}  # where the probe says, adaptive from there
    build.build_data(_cfg(tiny_tree, cpu_share=0.6), CPU)
    assert made == {"kind": "hybrid", "share": 0.6, "fixed": True}


def _cfg(tree, **kw) -> TrainConfig:
    return TrainConfig(**{"data": str(tree), "batch_size": 4, "crop_size": 32, "image_size": 36, "workers": 0,
                          "cache": "off"} | kw)


def test_the_run_probes_only_where_auto_would_be_hybrid_and_hands_the_choice_to_build_data(tiny_tree, monkeypatch):
    from imagenet_trainer.engine.probe import choose_for_run

    called = []

    def model_rate(timing):
        called.append(1)
        return 1e-3  # the workers keep up

    assert choose_for_run(_cfg(tiny_tree), CPU, 0, 1, model_rate) is None and not called  # a CPU run: no probe
    gpu = torch.device("cuda")
    for cfg in (_cfg(tiny_tree, cpu_share=0.5), _cfg(tiny_tree, loader="cpu")):
        assert choose_for_run(cfg, gpu, 0, 1, model_rate) is None and not called  # a fixed split, a named loader
    data = build.build_data(_cfg(tiny_tree), CPU, choice=LoaderChoice("cpu", 2.0, 1.0, 0.5))
    assert data.loader == "cpu" and data.choice.kind == "cpu" and data.timings["probe"] == 0.5
    assert next(iter(data.train)).images.shape[-2:] == (32, 32)


@pytest.mark.gpu
def test_auto_probes_and_builds_either_loader_on_a_gpu(tiny_tree, tmp_path):
    cuda = torch.device("cuda")
    for rate, want in ((1e-3, "cpu"), (1e12, "hybrid")):  # each with its own cache: no cached choice
        cfg = _cfg(tiny_tree, workers=2, cache_dir=str(tmp_path / want))
        from imagenet_trainer.engine.probe import choose_for_run

        data = build.build_data(cfg, cuda, choice=choose_for_run(cfg, cuda, 0, 1, lambda timing: rate))
        assert data.loader == want and data.choice.kind == want
        batch = next(iter(data.train))
        assert batch.images.is_cuda and batch.images.shape == (4, 3, 32, 32)


def _probe_as_rank(rank, world, init_file, tree, cache_dirs, rates, out):
    import json

    import datetime

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=30))  # a mismatch fails, not hangs
    calls = []

    def model_rate(timing):
        calls.append(1)
        return rates[rank]

    choice = choose_loader(build_index(Path(tree) / "train"), Geometry("rrc", 32, 36), 0, model_rate, CPU,
                           verbose=False, key={"arch": "a"}, cache_dir=Path(cache_dirs[rank]))
    (Path(out) / f"{rank}.json").write_text(json.dumps({"kind": choice.kind, "probed": bool(calls)}))
    torch.distributed.destroy_process_group()


def test_ranks_probe_together_unless_all_have_the_choice_cached(tiny_tree, tmp_path):
    """A rank that skipped the probe while another probed would leave the other waiting in a collective:
    all ranks probe unless every one has the choice cached, and they agree on it."""
    import json

    dirs = [str(tmp_path / "cache0"), str(tmp_path / "cache1")]
    index = build_index(tiny_tree / "train")
    choose_loader(index, Geometry("rrc", 32, 36), 0, lambda timing: 1e-3, CPU, verbose=False, key={"arch": "a"},
                  cache_dir=Path(dirs[1]))  # only rank 1 has a cached choice
    out = tmp_path / "out"
    out.mkdir()
    rates = [1e-3, 1e12]  # rank 0's workers keep up with its model, rank 1's do not
    spawn_ranks(_probe_as_rank, (2, str(tmp_path / "init"), str(tiny_tree), dirs, rates, str(out)))
    results = [json.loads((out / f"{r}.json").read_text()) for r in range(2)]
    assert results == [{"kind": "hybrid", "probed": True}] * 2
