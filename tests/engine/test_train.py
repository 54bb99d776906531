"""End-to-end training behaviour on CPU: learning, exact resume, crash safety, bad images."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from imagenet_trainer.cli import main
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.engine import loop, runlog
from imagenet_trainer.engine.checkpoint import safe_load
from imagenet_trainer.engine.run import train
from imagenet_trainer.errors import UsageError


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(data), output=str(out), arch="resnet18", epochs=3, batch_size=6, image_size=36,
                crop_size=32, workers=0, device="cpu", lr=0.05, lr_schedule="cosine", print_freq=1000,
                small_stem="off", cache="off",  # tests/engine/test_recipes.py covers the small stem; cache: below
                save_interval=0,  # files every epoch; test_save_interval covers the default
                save_mid_epoch=0)  # the part-way tests set it
    base.update(kw)
    return TrainConfig(**base)


def _weights(path: Path) -> dict:
    return safe_load(path)["state_dict"]


@pytest.mark.slow
def test_learns_the_sample_set(shapes_data, tmp_path):
    cfg = _cfg(shapes_data, tmp_path / "run", epochs=5, batch_size=32, lr=0.05, train_crop="seed", workers=1)
    assert train(cfg) == 0
    best = safe_load(tmp_path / "run" / "model_best.pt")["metrics"]["val"]
    assert best["top1"] > 90.0, best


def assert_resume_is_exact(tree: Path, tmp_path: Path, monkeypatch, full_run: dict | None = None,
                           part_way: tuple[int, int] | None = None, **kw) -> None:
    """Train 3 epochs at once, and again stopped by Ctrl-C after epoch 1 and resumed with ``--resume auto``: the
    same final weights. ``full_run``: settings of the uninterrupted run only (its workers, say). ``part_way``:
    (epoch, batches): stopped instead right after the checkpoint written that far into that epoch (with
    ``--save-mid-epoch`` due at every step)."""
    assert train(_cfg(tree, tmp_path / "full", **kw, **(full_run or {}))) == 0

    real_metrics, real_save = runlog.RunLog.metrics, loop._save_part_way

    def stop_after_first_epoch(self, record):
        real_metrics(self, record)
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    def stop_part_way(run, epoch, batches, writer, saves, done, step):
        real_save(run, epoch, batches, writer, saves, done, step)
        if (epoch, done) == part_way:
            raise KeyboardInterrupt

    if part_way is None:
        monkeypatch.setattr(runlog.RunLog, "metrics", stop_after_first_epoch)
    else:
        monkeypatch.setattr(loop, "_save_part_way", stop_part_way)
        kw["save_mid_epoch"] = 1e-9
    assert train(_cfg(tree, tmp_path / "part", **kw)) == 130
    stopped = 2 if part_way is None else part_way[0]
    assert not (tmp_path / "part" / f"model_{stopped:02d}.pt").exists()
    if part_way is not None:
        assert safe_load(tmp_path / "part" / "checkpoint_last.pt")["batches"] == part_way[1]
    monkeypatch.undo()
    assert train(_cfg(tree, tmp_path / "part", resume="auto", **kw)) == 0

    full, resumed = _weights(tmp_path / "full" / "model_03.pt"), _weights(tmp_path / "part" / "model_03.pt")
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


@pytest.mark.parametrize("arch,cache", [("resnet18", "off"), ("squeezenet1_1", "off"), ("resnet18", "ram")])
def test_resume_equals_uninterrupted(tiny_tree, tmp_path, monkeypatch, arch, cache):
    assert_resume_is_exact(tiny_tree, tmp_path, monkeypatch, full_run={"workers": 2}, arch=arch, cache=cache)
    rows = (tmp_path / "part" / "train.log").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["1", "2", "3"]


@pytest.mark.parametrize("kw", [dict(full_run={"workers": 2}), dict(cache="ram"), dict(accum=2),
                                dict(mixup=0.2, cutmix=1.0, reprob=0.5, cutout=0.2, auto_augment="rand-m9-mstd0.5-inc1")],
                         ids=["workers", "cache", "accum", "augment"])
def test_resume_part_way_through_an_epoch_equals_uninterrupted(tiny_tree, tmp_path, monkeypatch, kw):
    assert_resume_is_exact(tiny_tree, tmp_path, monkeypatch, part_way=(2, 2), epoch_size=4, **kw)
    rows = (tmp_path / "part" / "train.log").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["1", "2", "3"]


def test_a_checkpoint_part_way_with_another_batch_starts_the_epoch_again(tiny_tree, tmp_path, monkeypatch, capsys):
    real_save = loop._save_part_way

    def stop(run, epoch, batches, writer, saves, done, step):
        real_save(run, epoch, batches, writer, saves, done, step)
        if (epoch, done) == (1, 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_part_way", stop)
    cfg = _cfg(tiny_tree, tmp_path / "run", epochs=2, epoch_size=4, save_mid_epoch=1e-9)
    cfg.command = ["imagenet-trainer", "train", "--data", str(tiny_tree)]
    assert train(cfg) == 130
    assert "(epoch 1, 2 batches in); resume with" in capsys.readouterr().err
    monkeypatch.undo()
    assert train(cfg.replace(resume="auto", batch_size=3, typed=["batch_size"])) == 0
    err = capsys.readouterr().err
    assert "2 batches into epoch 1, but its batch was 6 in 1 parts, this run's is 3 in 1: epoch 1 starts again" in err
    assert safe_load(tmp_path / "run" / "model_02.pt")["metrics"]["train"]["count"] == 12


def test_interrupt_prints_resume_command(tiny_tree, tmp_path, monkeypatch, capsys):
    def interrupt(self, record):
        raise KeyboardInterrupt

    monkeypatch.setattr(runlog.RunLog, "metrics", interrupt)
    cfg = _cfg(tiny_tree, tmp_path / "run", epochs=2)
    cfg.command = ["imagenet-trainer", "train", "--data", str(tiny_tree)]
    assert train(cfg) == 130
    err = capsys.readouterr().err
    assert f"--resume {tmp_path / 'run' / 'checkpoint_last.pt'}" in err


def test_sigkill_mid_epoch_resumes_from_last_checkpoint(tiny_tree, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_tree), "--output", str(out), "--arch", "resnet18", "--epochs", "3",
            "--epoch-size", "15", "--batch-size", "6", "--image-size", "36", "--crop-size", "32",
            "--workers", "0", "--device", "cpu", "--print-freq", "1", "--recipe", "none", "--small-stem", "off",
            "--save-interval", "0"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "imagenet_trainer", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # wait until epoch 2 is under way
            m = re.match(r"train 2 \[\s*(\d+)/", line)
            if m and int(m.group(1)) >= 3:
                break
        deadline = time.time() + 60  # epoch 1's files are written on a background thread
        while not (out / "checkpoint_last.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    done = safe_load(out / "checkpoint_last.pt")["epoch"]  # 1, or 2 if epoch 2 ended while we waited
    assert done in (1, 2) and not (out / f"model_0{done + 1}.pt").exists()
    from imagenet_trainer.cli import main
    assert main([*args, "--resume", "auto"]) == 0
    assert safe_load(out / "checkpoint_last.pt")["epoch"] == 3
    assert [p.name for p in sorted(out.glob("model_0*.pt"))] == ["model_01.pt", "model_02.pt", "model_03.pt"]


def test_corrupt_image_is_skipped_and_counted(tiny_tree, tmp_path):
    (tiny_tree / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (tiny_tree / "val" / "dog" / "empty.jpg").write_bytes(b"")
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=1, batch_size=19)) == 0
    log = (tmp_path / "run" / "bad_images.txt").read_text()
    assert "broken.jpg" in log and "empty.jpg" in log
    assert safe_load(tmp_path / "run" / "model_01.pt")["metrics"]["val"]["count"] == 6  # 7 files, 1 skipped


def test_a_bad_image_seen_every_epoch_counts_once(tiny_tree, tmp_path, capsys):
    """Without the cache a bad file comes back each epoch and in each validation pass (model and EMA): counted each
    time, 2 bad files ended a long run at --max-bad-images; said and listed each time, they filled the log."""
    (tiny_tree / "train" / "cat" / "broken.jpg").write_bytes(b"junk")
    (tiny_tree / "val" / "dog" / "broken.jpg").write_bytes(b"junk")
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=4, max_bad_images=2, ema=True)) == 0
    assert len((tmp_path / "run" / "bad_images.txt").read_text().splitlines()) == 2
    assert capsys.readouterr().err.count("warning: skipped unreadable image") == 2


def test_too_many_bad_images_fails_clearly(tiny_tree, tmp_path):
    for i in range(3):
        (tiny_tree / "train" / "cat" / f"broken{i}.jpg").write_bytes(b"junk")
    with pytest.raises(UsageError, match="--max-bad-images 1"):
        train(_cfg(tiny_tree, tmp_path / "run", epochs=1, batch_size=21, max_bad_images=1))


@pytest.mark.parametrize("cache", ["off", "ram"])
def test_a_run_whose_training_images_are_all_unreadable_fails_clearly(tiny_tree, tmp_path, cache):
    """Fewer bad files than --max-bad-images, but all of them: an epoch trained on nothing is an error, not a result."""
    for path in (tiny_tree / "train").rglob("*.jpg"):
        path.write_bytes(b"junk")
    with pytest.raises(UsageError, match=r"epoch 1: no training image could be read \(\d+ skipped as unreadable"):
        train(_cfg(tiny_tree, tmp_path / "run", epochs=2, cache=cache))
    assert len((tmp_path / "run" / "bad_images.txt").read_text().splitlines()) == 18  # each train file once
    assert not (tmp_path / "run" / "model_01.pt").exists()


def test_an_unreadable_val_folder_costs_the_validation_not_the_run(tiny_tree, tmp_path, capsys):
    for path in (tiny_tree / "val").rglob("*.jpg"):
        path.write_bytes(b"junk")
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=2)) == 0
    captured = capsys.readouterr()
    assert captured.err.count("no val image could be read") == 2  # each epoch's validation
    assert "val top1-err" not in captured.err  # no figure of nothing
    assert "trained 2 epochs (no val image could be read: see bad_images.txt)" in captured.out
    assert safe_load(tmp_path / "run" / "model_02.pt")["metrics"]["val"] is None


def test_run_folder_contents(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=2, keep_checkpoints=1, lr_schedule="seed")) == 0
    run = tmp_path / "run"
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "train.log", "test.log", "metrics.jsonl", "classes.txt", "tensorboard",
            "model_02.pt", "model_best.pt", "checkpoint_last.pt", "accuracy.png", "cross-entropy.png",
            "lr.png", "throughput.png"} <= names
    assert "model_01.pt" not in names  # --keep-checkpoints 1
    assert (run / "classes.txt").read_text().split() == ["cat", "dog", "fox"]
    header, *rows = (run / "test.log").read_text().splitlines()
    assert header.split("\t") == ["epoch", "top1_accuracy", "top5_accuracy", "loss"] and len(rows) == 2
    m = safe_load(run / "model_02.pt")
    assert m["arch"] == "resnet18" and m["classes"] == ["cat", "dog", "fox"] and m["epoch"] == 2
    assert len(m["mean"]) == 3 and m["crop_size"] == 32
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    import yaml
    assert yaml.safe_load((run / "config.yaml").read_text())["lr_schedule"] == "seed"


def test_with_an_ema_the_best_epoch_is_the_emas(tiny_tree, tmp_path, monkeypatch, capsys):
    """The run's model is the EMA where there is one: the best epoch, model_best.pt and the last line go by the
    EMA's top-1, not the weights'."""
    import imagenet_trainer.engine.loop as run_mod

    tops = iter([(30.0, 70.0), (80.0, 40.0), (50.0, 60.0)])  # (weights, EMA): the EMA's best is epoch 1

    def fake_validate(net, ema, loader, ctx):
        w, e = next(tops)
        return {"top1": w, "top5": 90.0, "loss": 1.0, "count": 7, "ema_top1": e, "ema_top5": 95.0, "ema_loss": 1.0}

    monkeypatch.setattr(run_mod, "_validate", fake_validate)
    run = tmp_path / "run"
    assert train(_cfg(tiny_tree, run, epochs=3, ema=True, save_interval=0)) == 0
    assert safe_load(run / "model_best.pt")["epoch"] == 1
    out = capsys.readouterr().out
    assert "best val top-1 error 30.00%  top-5 error 5.00%  (epoch 1, the EMA's weights)" in out


def test_save_interval_writes_the_last_epoch_and_keeps_the_best_of_those_saved(tiny_tree, tmp_path, monkeypatch,
                                                                               capsys):
    import imagenet_trainer.engine.loop as run_mod

    tops = iter([30.0, 80.0, 50.0, 60.0])  # epoch 2 is the best, but its files are never written

    def fake_validate(net, ema, loader, ctx):
        return {"top1": next(tops), "top5": 90.0, "loss": 1.0, "count": 7}

    monkeypatch.setattr(run_mod, "_validate", fake_validate)
    clock = iter(range(0, 10**6, 25))  # each reading 25 "seconds" after the last
    monkeypatch.setattr(run_mod, "_clock", lambda: float(next(clock)))
    run = tmp_path / "run"
    assert train(_cfg(tiny_tree, run, epochs=4, save_interval=60)) == 0
    # the files of the epochs that ended 60 s after the last save (epoch 3, then 4, the last)
    assert sorted(p.name for p in run.glob("model_0*.pt")) == ["model_03.pt", "model_04.pt"]
    assert safe_load(run / "checkpoint_last.pt")["epoch"] == 4
    assert safe_load(run / "model_best.pt")["epoch"] == 4  # 60% beats epoch 3's 50%; epoch 2 has no file
    assert len((run / "test.log").read_text().splitlines()) == 5  # the logs have every epoch
    out = capsys.readouterr().out
    assert "best val top-1 error 20.00%" in out and "(epoch 2); model_best.pt holds epoch 4 (40.00%)" in out


def test_retrain_starts_from_weights(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "a", epochs=1)) == 0
    assert train(_cfg(tiny_tree, tmp_path / "b", epochs=1, retrain=str(tmp_path / "a" / "model_01.pt"))) == 0
    assert safe_load(tmp_path / "b" / "checkpoint_last.pt")["epoch"] == 1
    with pytest.raises(UsageError, match="was trained with --arch resnet18, not resnet34"):
        train(_cfg(tiny_tree, tmp_path / "c", epochs=1, arch="resnet34", retrain=str(tmp_path / "a" / "model_01.pt")))
    with pytest.raises(UsageError, match="no such file"):
        train(_cfg(tiny_tree, tmp_path / "d", epochs=1, retrain=str(tmp_path / "missing.pt")))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()  # no empty run folder left


def test_a_run_folder_is_neither_written_over_nor_left_by_a_resumed_run(tiny_tree, tmp_path, capsys):
    """A new run into a folder holding a run would cut its logs and replace its checkpoint and best model; a
    resumed run goes on in its own folder, whatever --output says."""
    run = tmp_path / "run"
    assert train(_cfg(tiny_tree, run, epochs=1)) == 0
    before = (run / "checkpoint_last.pt").read_bytes()
    with pytest.raises(UsageError, match=f"--output {run}: holds a run already .* --resume {run / 'checkpoint_last.pt'}"):
        train(_cfg(tiny_tree, run, epochs=1))
    assert (run / "checkpoint_last.pt").read_bytes() == before
    with pytest.raises(UsageError, match=f"--output {tmp_path / 'other'}: a resumed run goes on in its checkpoint's folder"):
        train(_cfg(tiny_tree, tmp_path / "other", epochs=2, resume=str(run / "checkpoint_last.pt")))
    capsys.readouterr()
    assert train(_cfg(tiny_tree, run, epochs=2, resume="auto", retrain=str(run / "model_01.pt"))) == 0
    assert "--retrain, --weights and --pretrained are left out" in capsys.readouterr().err


def test_a_model_used_on_other_classes_is_named(tiny_tree, tmp_path, capsys):
    """Resuming on other class folders would silently give its outputs other meanings; retraining onto another
    number of classes cannot fit the last layer; as many classes under other names only earn a note."""
    assert train(_cfg(tiny_tree, tmp_path / "a", epochs=1)) == 0
    renamed = tmp_path / "renamed"
    shutil.copytree(tiny_tree, renamed)
    for split in ("train", "val"):
        (renamed / split / "fox").rename(renamed / split / "owl")
    with pytest.raises(UsageError, match=r"checkpoint_last.pt: trained on other classes \(from .*\) than .*'s; "
                                         r"its 'owl' is not one of them; resume it on the data it was trained on"):
        train(_cfg(renamed, tmp_path / "a", epochs=2, resume="auto"))
    shutil.rmtree(renamed / "train" / "owl")
    shutil.rmtree(renamed / "val" / "owl")
    with pytest.raises(UsageError, match=r"model_01.pt: trained on 3 classes .*, but .* has 2; retraining keeps"):
        train(_cfg(renamed, tmp_path / "b", epochs=1, retrain=str(tmp_path / "a" / "model_01.pt")))
    (renamed / "train" / "dog").rename(renamed / "train" / "emu")
    (renamed / "val" / "dog").rename(renamed / "val" / "emu")
    (tiny_tree / "train" / "fox").rename(renamed / "train" / "yak")  # 3 classes again: cat, emu, yak
    (tiny_tree / "val" / "fox").rename(renamed / "val" / "yak")
    capsys.readouterr()
    assert train(_cfg(renamed, tmp_path / "c", epochs=1, retrain=str(tmp_path / "a" / "model_01.pt"))) == 0
    assert "was trained on other class names" in capsys.readouterr().err


def test_a_run_folder_inside_the_data_is_refused(tiny_tree, tmp_path, monkeypatch):
    """Its charts are PNG images: the next run would take the run folder for a class."""
    with pytest.raises(UsageError, match=r"--output .*train/run: inside the data's .*train, where the next run "
                                         r"would take it for a class"):
        train(_cfg(tiny_tree, tiny_tree / "train" / "run", epochs=1))
    assert not (tiny_tree / "train" / "run").exists()
    monkeypatch.chdir(tiny_tree / "val")
    with pytest.raises(UsageError, match=r"runs/, the default run folder, is here \(.*val/runs\), inside"):
        train(_cfg(tiny_tree, tmp_path, epochs=1).replace(output=None))
    assert train(_cfg(tiny_tree, tiny_tree / "run", epochs=1)) == 0  # beside train/ and val/ is fine


def test_normalize_auto_estimates_and_caches(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=1, normalize="auto")) == 0
    mean = safe_load(tmp_path / "run" / "model_01.pt")["mean"]
    assert mean != [0.485, 0.456, 0.406] and all(0 < m < 1 for m in mean)


def test_cached_run_skips_bad_images_and_prints_the_time_split(tiny_tree, tmp_path, capsys):
    (tiny_tree / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=1, cache="auto")) == 0
    err = capsys.readouterr().err
    assert "--cache auto: the decoded set" in err and "loader ram cache" in err
    assert "first training batch" in err and "time: index" in err and "decode to cache" in err
    assert "broken.jpg" in (tmp_path / "run" / "bad_images.txt").read_text()


def test_naive_loader_trains_and_validates_every_image(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=1, loader="naive", workers=1)) == 0
    val = safe_load(tmp_path / "run" / "model_01.pt")["metrics"]["val"]
    assert 0 <= val["top1"] <= 100
    with pytest.raises(UsageError, match="--loader naive"):
        train(_cfg(tiny_tree, tmp_path / "r2", loader="naive", cache="gpu"))


def test_augmentations_resume_exactly(tiny_tree, tmp_path, monkeypatch):
    kw = dict(mixup=0.2, cutmix=1.0, mix_prob=0.8, reprob=0.5, recount=2, repeated_aug=2, label_smoothing=0.1,
              cutout=0.2, auto_augment="rand-m9-mstd0.5-inc1")
    assert_resume_is_exact(tiny_tree, tmp_path, monkeypatch, **kw)
    config = (tmp_path / "full" / "config.yaml").read_text()
    assert "auto_augment: rand-m9-mstd0.5-inc1" in config and "mixup: 0.2" in config and "repeated_aug: 2" in config and "remode: pixel" in config
    plain = _weights(tmp_path / "full" / "model_01.pt")
    assert train(_cfg(tiny_tree, tmp_path / "none", epochs=1)) == 0
    assert not torch.equal(plain["fc.weight"], _weights(tmp_path / "none" / "model_01.pt")["fc.weight"])


def test_the_naive_path_applies_the_policy_per_image(tiny_tree, tmp_path):
    from torchvision.transforms import TrivialAugmentWide

    from imagenet_trainer.data.geometry import Geometry
    from imagenet_trainer.data.naive import naive_transform

    steps = naive_transform(Geometry("rrc", 32, 36), [0.5] * 3, [0.25] * 3, 32, "trivial").transforms
    assert isinstance(steps[2], TrivialAugmentWide)  # after the crop and flip, before ToTensor
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=1, loader="naive", auto_augment="trivial")) == 0


def test_cutout_and_shift_tta_train_and_are_saved_with_the_config(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=1, cutout=0.25, tta=True, tta_shift=1)) == 0
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "cutout: 0.25" in config and "tta_shift: 1" in config


def test_val_every(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=3, val_every=2)) == 0
    rows = (tmp_path / "run" / "test.log").read_text().splitlines()[1:]
    assert [r.split("\t")[0] for r in rows] == ["2", "3"]
    assert safe_load(tmp_path / "run" / "model_best.pt")["epoch"] in (2, 3)


def test_torchvision_version_without_importing_it():
    import torchvision

    from imagenet_trainer.engine.run import torchvision_version

    want = torchvision.__version__
    saved = sys.modules.pop("torchvision")
    try:  # read from its version.py, as when a run never imports torchvision
        assert torchvision_version() == want
    finally:
        sys.modules["torchvision"] = saved


@pytest.mark.parametrize("backend,tune,crop,enabled,benchmark", [
    ("cudnn", None, 224, True, False), ("cudnn", None, 32, True, True),  # auto: timed for small crops only
    ("cudnn", True, 224, True, True), ("cudnn", False, 32, True, False), ("native", True, 32, False, False)])
def test_cudnn_settings_follow_the_config(tmp_path, monkeypatch, backend, tune, crop, enabled, benchmark):
    from imagenet_trainer.engine.distributed import DistContext
    from imagenet_trainer.engine.run import _wrap

    monkeypatch.setattr(torch.backends.cudnn, "enabled", torch.backends.cudnn.enabled)  # restored afterwards
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
    cfg = _cfg(tmp_path, tmp_path / "run", backend=backend, cudnn_benchmark=tune, crop_size=crop, image_size=crop)
    _wrap(torch.nn.Linear(2, 2), cfg, torch.device("cpu"), DistContext())
    assert (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark) == (enabled, benchmark)


@pytest.mark.parametrize("mode,passed", [("default", None), ("reduce-overhead", "reduce-overhead")])
def test_the_compile_mode_reaches_torch_compile(tmp_path, monkeypatch, mode, passed):
    from imagenet_trainer.engine.distributed import DistContext
    from imagenet_trainer.engine.run import _wrap

    seen = []
    monkeypatch.setattr(torch, "compile", lambda net, mode=None: seen.append(mode) or net)
    cfg = _cfg(tmp_path, tmp_path / "run", backend="compile", compile_mode=mode)
    _wrap(torch.nn.Linear(2, 2), cfg, torch.device("cpu"), DistContext())
    assert seen == [passed]


@pytest.mark.parametrize("how,world,cut", [("whole", 2, False), ("split", 2, True), ("whole", 1, "python_reducer")])
def test_the_ddp_graph_is_set_before_torch_compile_under_ddp(tmp_path, monkeypatch, how, world, cut):
    """``--ddp-graph``: torch.compile finds dynamo's DDP setting as asked (whole: no cut per bucket) when it
    compiles a DDP model; one process leaves the setting alone."""
    import torch._dynamo

    from imagenet_trainer.engine.distributed import DistContext
    from imagenet_trainer.engine.run import _wrap

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda model, **kw: model)
    seen = []
    monkeypatch.setattr(torch, "compile", lambda net, mode=None: seen.append(torch._dynamo.config.optimize_ddp) or net)
    cfg = _cfg(tmp_path, tmp_path / "run", backend="compile", ddp_graph=how)
    with torch._dynamo.config.patch(optimize_ddp="python_reducer"):  # a value neither choice sets; restored after
        _wrap(torch.nn.Linear(2, 2), cfg, torch.device("cpu"), DistContext(0, world, 0))
    assert seen == [cut]


def test_a_cuda_graph_step_marks_each_step_begin(tiny_tree, tmp_path, monkeypatch):
    """With CUDA graphs each training step starts a new generation, so the last step's outputs may be replayed
    over; the loop tells torch so before every forward (here on the CPU, where the call is only counted)."""
    from imagenet_trainer.engine import trainer

    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    real = trainer.StepContext

    def with_graphs(*args, **kwargs):
        return real(*args, **kwargs | {"cuda_graphs": True})

    monkeypatch.setattr("imagenet_trainer.engine.run.StepContext", with_graphs)
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=2, batch_size=6)) == 0
    assert len(marks) == 2 * 3  # 18 images, batches of 6, two epochs


def test_time_left_follows_the_crop_and_the_validations_due():
    from imagenet_trainer.data.build import crop_size_at
    from imagenet_trainer.engine.loop import time_left

    cfg = TrainConfig(epochs=4, crop_size=224, prog_resize=None, val_every=2)
    assert time_left(cfg, 1, 10.0, 3.0) == 3 * 10.0 + 2 * 3.0  # epochs 2 and 4 validate
    assert time_left(cfg, 1, 10.0, None) == 30.0  # no validation timed yet: not counted
    assert time_left(cfg, 4, 10.0, 3.0) == 0.0
    grow = TrainConfig(epochs=8, crop_size=224, prog_resize=[0.5, 0.75], val_every=0)
    sides = [crop_size_at(grow, e) for e in range(1, 9)]
    want = sum(10.0 * (side / sides[0]) ** 2 for side in sides[1:]) + 3.0  # the last epoch validates
    assert time_left(grow, 1, 10.0, 3.0) == pytest.approx(want)
    assert want > 7 * 10.0 * 2  # later epochs have up to 4x the pixels of the first


def test_each_epoch_line_but_the_last_says_the_time_left(tiny_tree, tmp_path, capsys):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=2)) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and re.search(r"\| run ETA \d\d:\d\d$", lines[0]) and "ETA" not in lines[1]


def test_interrupt_after_an_unsaved_epoch_says_so(tiny_tree, tmp_path, monkeypatch, capsys):
    import imagenet_trainer.engine.loop as loop

    calls = []

    def interrupt_in_epoch_2(self, record):
        calls.append(record["epoch"])
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runlog.RunLog, "metrics", interrupt_in_epoch_2)
    monkeypatch.setattr(loop, "_clock", lambda: 0.0)  # the default --save-interval never comes due
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=3, save_interval=60)) == 130
    err = capsys.readouterr().err
    assert "epochs 1-2 finished, but no checkpoint was due yet (--save-interval 60 s" in err
    assert "no epoch had finished" not in err


def test_the_resume_command_runs_where_imagenet_trainer_is_not_on_the_path(tmp_path, monkeypatch):
    import shutil
    import sys

    from imagenet_trainer.engine.loop import resume_command

    cfg = _cfg(tmp_path, tmp_path / "run").replace(command=["imagenet-trainer", "train", "--data", "d"])
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert resume_command(cfg, tmp_path / "c.pt").startswith(f"{sys.executable} -m imagenet_trainer train --data d")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    assert resume_command(cfg, tmp_path / "c.pt").startswith("imagenet-trainer train --data d --resume")


def test_an_output_that_cannot_be_written_is_named_before_the_data_loads(tiny_tree, tmp_path, capsys, monkeypatch):
    import imagenet_trainer.engine.run as run_mod

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(run_mod, "build_data", lambda *a, **k: (_ for _ in ()).throw(AssertionError("data loaded")))
    code = main(["train", "--data", str(tiny_tree), "--output", str(blocker / "run"), "--device", "cpu",
                 "--workers", "0", "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"imagenet-trainer train: error: --output {blocker / 'run'}: a file is in")


def test_a_save_killed_mid_way_leaves_no_temporary_file_behind(tiny_tree, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = run / ".checkpoint_last.pt.999999999.tmp"  # its process is gone
    stale.write_bytes(b"half a checkpoint")
    live = run / f".notes.txt.{os.getpid()}.tmp"  # a write under way in a live process is left alone
    live.write_bytes(b"")
    assert train(_cfg(tiny_tree, run, epochs=1)) == 0
    assert not stale.exists() and live.exists()


def test_resuming_with_other_epochs_says_what_it_does_to_the_schedule(tiny_tree, tmp_path, capsys):
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=2)) == 0
    capsys.readouterr()
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=3, resume="auto")) == 0
    assert "note: --epochs 3, where the checkpoint's run had 2: the LR schedule" in capsys.readouterr().err
