"""CLI smoke tests through main([...]), and the one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from imagenet_trainer.cli import main


def _train(tree, out, *extra):
    return main(["train", "--data", str(tree), "--output", str(out), "--arch", "resnet18", "--epochs", "1",
                 "--batch-size", "6", "--image-size", "36", "--crop-size", "32", "--workers", "0",
                 "--device", "cpu", "--small-stem", "off", *extra])


@pytest.fixture
def trained(tiny_tree, tmp_path):
    assert _train(tiny_tree, tmp_path / "run") == 0
    return tmp_path / "run" / "model_01.pt"


def test_help_for_every_subcommand(capsys):
    for cmd in ("train", "evaluate", "predict", "models", "sample-data"):
        assert main([cmd, "--help"]) == 0
        assert "default" in capsys.readouterr().out


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet50"]["params"] == 25_557_032 and abs(rows["resnet50"]["gflops"] - 4.09) < 0.01
    assert {"alexnet", "alexnetowtbn", "overfeat", "vgg11", "vgg19_bn", "googlenet", "googlenetbn", "ninbn",
            "squeezenet1_0", "squeezenet1_1", "resnet152"} <= rows.keys()


def test_sample_data(tmp_path, capsys):
    assert main(["sample-data", str(tmp_path / "d"), "--classes", "3", "--per-class", "4", "--val-per-class", "2"]) == 0
    assert len(list((tmp_path / "d" / "train").rglob("*.jpg"))) == 12
    assert len(list((tmp_path / "d" / "val").rglob("*.jpg"))) == 6
    assert capsys.readouterr().out == f"{tmp_path / 'd'}: 18 images (3 classes)\n"
    (tmp_path / "d" / "val" / "red_circle" / "red_circle_val_00001.jpg").unlink()  # an interrupted run, continued
    assert main(["sample-data", str(tmp_path / "d"), "--classes", "3", "--per-class", "4", "--val-per-class", "2"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'd'}: 18 images (3 classes), 17 of them there from an earlier run\n"
    assert len(list((tmp_path / "d").rglob("*.jpg"))) == 18


def test_sample_data_continues_only_a_run_with_the_same_settings(tmp_path, capsys):
    """Another --classes, --per-class or --size into the same folder would mix two datasets (before: 3 classes of
    32-px images and 7 more of 64 px, reported as written)."""
    d = tmp_path / "d"
    args = ["sample-data", str(d), "--classes", "2", "--per-class", "3", "--val-per-class", "1", "--size", "32"]
    assert main(args) == 0
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    capsys.readouterr()
    assert main(args[:3] + ["3"] + args[4:-1] + ["48"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"imagenet-trainer sample-data: error: {d}: an earlier sample-data made it with other settings "
                   "(--classes 2 now 3; --size 32 now 48); continuing would mix the two; give a new folder")
    assert sorted(p.relative_to(d) for p in d.rglob("*")) == before
    (d / ".sample-data.json").unlink()  # an earlier version's output, which kept no settings: continued as before
    assert main(args[:-1] + ["40"]) == 0
    assert main(args) == 2  # ... and from then on its settings are kept


def test_sample_data_leaves_someone_elses_dataset_alone(tiny_tree, capsys):
    """Pointed at a real dataset by mistake, it would add made-up classes to it: a one-line error instead."""
    before = sorted(p.relative_to(tiny_tree) for p in tiny_tree.rglob("*"))
    capsys.readouterr()
    assert main(["sample-data", str(tiny_tree), "--classes", "2", "--per-class", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"imagenet-trainer sample-data: error: {tiny_tree}: holds other data ({tiny_tree / 'train'}/")
    assert sorted(p.relative_to(tiny_tree) for p in tiny_tree.rglob("*")) == before


def test_original_option_spellings(tiny_tree, tmp_path):
    assert main(["train", "-data", str(tiny_tree), "-netType", "resnet18", "-nDonkeys", "0", "-batchSize", "6",
                 "-LR", "0.01", "-nEpochs", "1", "-epochSize", "2", "-manualSeed", "3", "--image-size", "36",
                 "--crop-size", "32", "--device", "cpu", "--small-stem", "off", "--output", str(tmp_path / "r")]) == 0
    import yaml
    cfg = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (cfg["epoch_size"], cfg["seed"], cfg["lr"], cfg["batch_size"]) == (2, 3, 0.01, 6)


def test_evaluate_and_predict(trained, tiny_tree, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--json", "--workers", "0"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images"] == 6 and 0 <= res["top1_error"] <= 100
    assert main(["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--crops", "10", "--workers", "0"]) == 0
    assert "top-1 error" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--crops", "10", "--tta", "--json",
                 "--workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is False  # ten crops hold the flips: reported as run
    assert main(["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--tta", "--tta-shift", "1",
                 "--workers", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 6
    assert main(["predict", "--model", str(trained), str(tiny_tree / "val"), "--json", "--topk", "2"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert len(preds) == 6 and len(preds[0]["top"]) == 2
    assert preds[0]["top"][0]["class"] in ("cat", "dog", "fox")
    assert abs(sum(t["probability"] for t in preds[0]["top"])) <= 1.0001
    one = str(next((tiny_tree / "val" / "dog").iterdir()))
    assert main(["predict", "--model", str(trained), one]) == 0
    assert capsys.readouterr().out.startswith(one)


def test_predict_reports_an_unreadable_file_and_goes_on(trained, tiny_tree, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    good = next((tiny_tree / "val" / "dog").iterdir())
    (folder / "a.jpg").write_bytes(good.read_bytes())
    (folder / "b.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    capsys.readouterr()
    assert main(["predict", "--model", str(trained), str(folder), "--csv", "--topk", "2"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["path", "rank", "class", "index", "probability", "error"]
    ranked = [r for r in rows[1:] if r[0].endswith("a.jpg")]
    assert [r[1] for r in ranked] == ["1", "2"] and all(r[2] in ("cat", "dog", "fox") and not r[5] for r in ranked)
    (bad,) = [r for r in rows[1:] if r[0].endswith("b.jpg")]
    assert bad[1:5] == ["", "", "", ""] and bad[5]
    assert main(["predict", "--model", str(trained), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "unreadable:" in out and str(folder / "a.jpg") in out


def test_model_files_this_version_cannot_use_are_one_line_errors(trained, tiny_tree, tmp_path, capsys):
    import torch

    record = torch.load(trained, weights_only=False)
    assert "ema_state_dict" in record  # the default recipe keeps an EMA
    no_ema = tmp_path / "no_ema.pt"
    torch.save({k: v for k, v in record.items() if k != "ema_state_dict"}, no_ema)
    unknown = tmp_path / "unknown_arch.pt"
    torch.save(record | {"arch": "resnet9000"}, unknown)
    data = ["--data", str(tiny_tree), "--workers", "0", "--device", "cpu"]
    capsys.readouterr()
    _one_line_error(capsys, main(["evaluate", "--model", str(no_ema), "--ema", *data]), "has no EMA weights")
    _one_line_error(capsys, main(["evaluate", "--model", str(unknown), *data]), "made with model 'resnet9000'")
    converted = tmp_path / "m.ts"
    converted.write_bytes(b"PK\x03\x04")
    _one_line_error(capsys, main(["evaluate", "--model", str(converted), *data]), "read the .pt or .safetensors model file")
    assert main(["evaluate", "--model", str(trained), "--ema", *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 6


def test_model_files_give_their_ema_unless_told_otherwise(trained, tiny_tree, tmp_path, capsys):
    """The run reports its EMA as its result, so the tools use the EMA's weights where the file has them."""
    import torch

    record = torch.load(trained, weights_only=False)
    no_ema = tmp_path / "no_ema.pt"
    torch.save({k: v for k, v in record.items() if k != "ema_state_dict"}, no_ema)
    data = ["--data", str(tiny_tree), "--workers", "0", "--device", "cpu", "--json"]
    capsys.readouterr()
    for model, flags, weights in ((trained, [], "ema"), (trained, ["--no-ema"], "raw"), (no_ema, [], "raw")):
        assert main(["evaluate", "--model", str(model), *flags, *data]) == 0
        assert json.loads(capsys.readouterr().out)["weights"] == weights
    assert main(["evaluate", "--model", str(trained), *data[:-1]]) == 0
    assert "the EMA's weights" in capsys.readouterr().out


def test_evaluate_on_a_folder_of_unreadable_images_is_an_error(trained, tiny_tree, tmp_path, capsys):
    for path in (tiny_tree / "val").rglob("*.jpg"):
        path.write_bytes(b"junk")
    capsys.readouterr()
    code = main(["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--workers", "0", "--device", "cpu"])
    _one_line_error(capsys, code, "no image could be read (6 unreadable, the first")


def test_evaluate_sizes_out_of_range_are_one_line_errors(trained, tiny_tree, capsys):
    base = ["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--workers", "0", "--device", "cpu"]
    cases = [  # the model file says crop 32, resize 36
        (["--crop-size", "40"], "--crop-size 40 / --image-size 36 (the model file's): need 8 <= crop-size <= image-size"),
        (["--image-size", "20"], "--crop-size 32 (the model file's) / --image-size 20: need"),
        (["--tta-shift", "32"], "--tta-shift 32: must be 0 (off) or a number of pixels smaller than the crop (32 px)"),
    ]
    capsys.readouterr()
    for extra, message in cases:
        _one_line_error(capsys, main(base + extra), message)


def test_an_output_path_that_is_a_file_is_a_one_line_error(trained, tiny_tree, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    run = str(trained.parent)
    cases = [
        (["plot", run, "--out", str(blocker)], f"{blocker}: a file is in the way where a folder is needed"),
        (["evaluate", "--model", str(trained), "--data", str(tiny_tree), "--report", str(blocker / "r")],
         f"{blocker / 'r'}: part of this path is a file, not a folder"),
        (["convert", "--src", str(trained), "--dst", str(blocker / "m.pt")], "part of this path is a file, not a folder"),
        (["train", "--data", str(tiny_tree), "--output", str(blocker), "--device", "cpu", "--workers", "0"],
         f"{blocker}: a file is in the way"),
    ]
    capsys.readouterr()
    for args, message in cases:
        _one_line_error(capsys, main(args), message)
    assert blocker.read_text() == "in the way"


def test_other_os_errors_keep_their_traceback():
    import errno

    from imagenet_trainer.errors import os_error_message

    assert os_error_message(OSError(errno.EIO, "I/O error")) is None  # no path: not the user's input
    assert os_error_message(OSError(errno.EIO, "I/O error", "/x")) is None  # a fault, not a usage problem
    assert os_error_message(OSError(errno.ENOSPC, "No space left", "/x")) == \
        "/x: the disk is full; free some space or choose another path"


def _one_line_error(capsys, code, expect_in_message):
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert code == 2
    assert "Traceback" not in captured.err
    assert lines and expect_in_message in lines[-1]


@pytest.mark.parametrize("case", ["missing", "file", "no-train", "train-is-file", "empty-class", "odd-val"])
def test_bad_data_gives_one_line_error(tmp_path, tiny_tree, capsys, case):
    data = tiny_tree
    expect = str(tiny_tree)
    if case == "missing":
        data = tmp_path / "nope"
        expect = "no such folder"
    elif case == "file":
        data = tmp_path / "f.txt"
        data.write_text("x")
        expect = "is a file"
    elif case == "no-train":
        data = tmp_path / "d"
        data.mkdir()
        expect = "train"
    elif case == "train-is-file":
        data = tmp_path / "d"
        data.mkdir()
        (data / "train").write_text("x")
        expect = "is a file"
    elif case == "empty-class":
        (tiny_tree / "train" / "zebra").mkdir()
        expect = "zebra"
    elif case == "odd-val":
        (tiny_tree / "val" / "wolf").mkdir()
        expect = "wolf"
    capsys.readouterr()
    _one_line_error(capsys, _train(data, tmp_path / "run"), expect)


@pytest.mark.parametrize("argv,expect", [
    (["--arch", "resnet9000"], "--arch resnet9000"),
    (["--device", "tpu"], "--device tpu"),
    (["--resume", "/nonexistent/checkpoint_last.pt"], "no such file"),
    (["--retrain", "/nonexistent/model.pt"], "no such file"),
    (["--save-interval", "-1"], "--save-interval -1"),
    (["--cutout", "1.5"], "--cutout 1.5"),
])
def test_bad_options_give_one_line_error(tiny_tree, tmp_path, capsys, argv, expect):
    capsys.readouterr()
    _one_line_error(capsys, _train(tiny_tree, tmp_path / "run", *argv), expect)


def test_bench_checks_the_options_it_shares_with_train(tiny_tree, capsys):
    capsys.readouterr()
    code = main(["bench", "loader", "--data", str(tiny_tree), "--cpu-share", "3", "--device", "cpu"])
    _one_line_error(capsys, code, "--cpu-share 3: must be a share from 0 to 1")


def test_full_disk_during_a_checkpoint_is_one_line(tiny_tree, tmp_path, capsys, monkeypatch):
    import torch

    def no_space(obj, f):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    capsys.readouterr()
    _one_line_error(capsys, _train(tiny_tree, tmp_path / "run"), "could not be written (No space left on device)")


def test_bad_model_files(tmp_path, tiny_tree, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    _one_line_error(capsys, main(["evaluate", "--model", str(bad), "--data", str(tiny_tree)]), str(bad))
    _one_line_error(capsys, main(["predict", "--model", str(bad), str(tiny_tree)]), str(bad))
    _one_line_error(capsys, main(["predict", "--model", str(bad), str(tmp_path / "missing.jpg")]), "missing.jpg")


@pytest.mark.parametrize("argv,expect", [
    (["train"], "imagenet-trainer train: error: the following arguments are required: --data"),
    (["no-such-command"], "imagenet-trainer: error: argument COMMAND: invalid choice: 'no-such-command'"),
    (["train", "--data", "x", "--batch-size", "0"], "imagenet-trainer train: error: argument --batch-size"),
    (["train", "--data", "x", "--bogus", "1"], "imagenet-trainer train: error: unrecognized arguments: --bogus 1"),
    (["evaluate", "--model", "m.pt", "--data", "x", "--crops", "7"], "imagenet-trainer evaluate: error: argument --crops"),
    (["evaluate", "--model", "m.pt", "--data", "x", "--workers", "-4"],
     "imagenet-trainer evaluate: error: argument --workers: must be 0 (decode in the main process) or more, or -1"),
    (["resize", "x", "--out", "y", "--quality", "500"], "imagenet-trainer resize: error: argument --quality: must be from 1 to 100"),
    (["create-dataset", "--src", "x", "--dst", "y", "--quality", "101"], "imagenet-trainer create-dataset: error: argument --quality"),
])
def test_argparse_errors_are_one_line_that_points_to_help(capsys, argv, expect):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(expect), err  # no usage block above it
    assert err.rstrip().endswith("--help)")


@pytest.mark.parametrize("world_size", [None, "2"])
def test_the_command_leaves_without_the_interpreters_teardown(monkeypatch, capsys, world_size):
    """The process ends with os._exit once the command is done: the teardown of torch's modules only costs time
    (1-2 s). A lone process first waits for its threads and runs its exit handlers, as a normal exit does; a rank
    under torchrun or srun (WORLD_SIZE > 1) does not, as multiprocessing's children do not: there the teardown
    could abort a rank whose work was done."""
    import os
    import sys

    from imagenet_trainer import cli

    exits, handlers = [], []

    def exit_(code):
        exits.append(code)
        raise SystemExit(code)  # os._exit does not return

    monkeypatch.setattr(sys, "argv", ["imagenet-trainer", "plot", "/nonexistent"])  # a quick command: exit code 2
    monkeypatch.setattr(os, "_exit", exit_)
    monkeypatch.setattr(cli, "_finish_threads_and_exit_handlers", lambda: handlers.append(True))
    if world_size:
        monkeypatch.setenv("WORLD_SIZE", world_size)
    else:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit):
        cli.console_main()
    assert exits == [2] and handlers == ([] if world_size else [True])
    assert "no such folder" in capsys.readouterr().err


_EXIT_WORK = """
import atexit, sys, threading, time
from pathlib import Path
from imagenet_trainer.cli import console_main
out = Path(sys.argv[1])
def late():  # a thread that is not a daemon, still writing when the command ends
    time.sleep(0.5)
    out.with_suffix(".thread").write_text("done")
threading.Thread(target=late).start()
atexit.register(lambda: out.with_suffix(".atexit").write_text("done"))
sys.argv = ["imagenet-trainer", "models"]
console_main()
"""


def test_a_quick_exit_still_finishes_threads_and_exit_handlers(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _EXIT_WORK, str(tmp_path / "x")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resnet50" in r.stdout  # the command's output, flushed
    assert (tmp_path / "x.thread").read_text() == "done" and (tmp_path / "x.atexit").read_text() == "done"


def test_a_training_run_from_the_command_line_leaves_its_files_whole(tiny_tree, tmp_path):
    """The run's logs, metrics and TensorBoard events are complete after the quick exit: every writer was
    closed by the command itself, none is left to the interpreter's teardown."""
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "imagenet_trainer", "train", "--data", str(tiny_tree), "--output",
                        str(run), "--arch", "smallcnn", "--epochs", "3", "--batch-size", "6", "--image-size", "36",
                        "--crop-size", "32", "--workers", "0", "--device", "cpu", "--save-interval", "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert len((run / "train.log").read_text().splitlines()) == 4  # a header and 3 epochs
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert (run / "accuracy.png").stat().st_size > 0 and (run / "model_03.pt").exists()
