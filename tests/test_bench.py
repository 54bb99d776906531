"""``bench loader|model|train`` on the CPU: figures, the naive baseline and its ratio, the JSON record."""

from __future__ import annotations

import json
import statistics

import pytest

from imagenet_trainer.cli import main

SMALL = ["--device", "cpu", "--workers", "0", "--batch-size", "4", "--crop-size", "32", "--image-size", "36",
         "--steps", "2", "--warmup", "1", "--json"]


def _bench(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["bench", *args, *SMALL]) == 0
    return json.loads(capsys.readouterr().out)


def test_loader_against_the_naive_pipeline_in_rounds(tiny_tree, capsys):
    res = _bench(capsys, "loader", "--data", str(tiny_tree), "--compare", "--rounds", "3")
    rounds = res["rounds"]
    assert len(rounds) == 3 and all(r["images_per_s"] > 0 and r["baseline_images_per_s"] > 0 for r in rounds)
    assert all(r["ratio"] == pytest.approx(r["images_per_s"] / r["baseline_images_per_s"]) for r in rounds)
    assert res["ratio"] == pytest.approx(statistics.median(r["ratio"] for r in rounds))
    assert res["images_per_s"] == pytest.approx(statistics.median(r["images_per_s"] for r in rounds))
    assert res["baseline"]["images_per_s"] == pytest.approx(statistics.median(r["baseline_images_per_s"] for r in rounds))
    assert res["images"] == 18 and res["loader"] == "cpu"
    assert {"card", "torch", "torchvision", "python", "date"} <= res.keys()
    assert res["command"].startswith("imagenet-trainer")


def test_loader_alone_has_no_baseline(tiny_tree, capsys):
    res = _bench(capsys, "loader", "--data", str(tiny_tree))
    assert res["images_per_s"] > 0 and "baseline" not in res and "rounds" not in res


def test_train_reports_its_share_of_the_ceiling(tiny_tree, capsys):
    res = _bench(capsys, "train", "--data", str(tiny_tree), "--arch", "resnet9", "--compare")
    assert res["images_per_s"] > 0 and res["ceiling"]["images_per_s"] > 0
    assert res["of_ceiling"] == pytest.approx(res["images_per_s"] / res["ceiling"]["images_per_s"])
    assert res["first_batch_s"] > 0 and res["arch"] == "resnet9"
    assert res["ratio"] == pytest.approx(res["images_per_s"] / res["baseline"]["images_per_s"])


def test_model_ceiling(capsys):
    res = _bench(capsys, "model", "--arch", "resnet9")
    assert res["images_per_s"] > 0 and res["cudnn_benchmark"] is True  # 32-px crops: cuDNN times its algorithms
    assert _bench(capsys, "model", "--arch", "resnet9", "--no-cudnn-benchmark")["cudnn_benchmark"] is False


@pytest.mark.parametrize("args, word", [
    (["loader"], "--data"),
    (["loader", "--data", "X", "--rounds", "2"], "--rounds"),
    (["train", "--data", "X", "--compare", "--rounds", "2"], "--rounds"),
])
def test_bad_options_are_one_line_errors(args, word, capsys):
    assert main(["bench", *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and "\n" not in err and "Traceback" not in err


def test_waits_until_the_workers_are_idle():
    """A child busy for about 0.5 s: the wait ends after it goes quiet, well before the limit."""
    import multiprocessing
    import time

    from imagenet_trainer.bench import wait_for_idle_workers

    def busy_then_sleep():
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            pass
        time.sleep(30)

    p = multiprocessing.get_context("fork").Process(target=busy_then_sleep, daemon=True)
    p.start()
    try:
        time.sleep(0.05)
        waited = wait_for_idle_workers(limit=10.0)
        assert 0.3 <= waited < 5.0
    finally:
        p.kill()


def test_augment_cost_times_a_policy_file_against_the_current_one(tmp_path):
    """``benchmarks/augment_cost.py --against FILE``: the three policies of both versions, each with its median
    and its tensor operations per call (here the file is the current module, so the counts agree)."""
    import importlib.util
    from pathlib import Path

    import imagenet_trainer.data.autoaugment as current

    spec = importlib.util.spec_from_file_location("augment_cost", Path(__file__).parents[1] / "benchmarks" /
                                                  "augment_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "cost.json"
    assert bench.main(["--device", "cpu", "--batch", "4", "--size", "16", "--steps", "1", "--warmup", "0",
                       "--against", current.__file__, "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["ms_per_batch"]) >= {"rand-m9-mstd0.5-inc1", "trivial"}
    pairs = record["against"]
    assert set(pairs) == {"rand-m9-mstd0.5-inc1", "trivial", "autoaugment-imagenet"}
    for pair in pairs.values():
        assert set(pair) == {"current", current.__file__} and all(v["ms"] > 0 for v in pair.values())
        assert pair["current"]["tensor_ops"] == pair[current.__file__]["tensor_ops"] > 20


def test_index_speed_times_both_scans_of_the_same_tree(tmp_path):
    """``benchmarks/index_speed.py``: makes the tree, times our scan and torchvision's over the same files, and
    writes both with their ratio."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("index_speed", Path(__file__).parents[1] / "benchmarks" /
                                                  "index_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "index.json"
    assert bench.main([str(tmp_path / "tree"), "--classes", "3", "--per-class", "4", "--rounds", "2",
                       "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["files"] == 12 and record["classes"] == 3
    assert len(record["ours_scan_s"]) == len(record["torchvision_scan_s"]) == 2
    assert record["ratio"] > 0 and record["cached_load_s"] >= 0
