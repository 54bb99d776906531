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
