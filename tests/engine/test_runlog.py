from imagenet_trainer.engine import runlog as runlog_mod
from imagenet_trainer.engine.runlog import RunLog


def _log_epoch(log: RunLog, epoch: int) -> None:
    stats = {"top1": 50.0, "top5": 90.0, "loss": 1.0}
    log.epoch_row("train.log", epoch, stats)
    log.epoch_row("test.log", epoch, stats)
    log.metrics({"epoch": epoch, "train_loss": 1.0, "train_top1": 50.0, "train_images_per_s": 100.0,
                 "train_lr": 0.1, "val_loss": 1.0, "val_top1": 50.0})


def test_charts_wait_for_the_interval_but_always_come_at_the_end(tmp_path, monkeypatch):
    log = RunLog(tmp_path)
    _log_epoch(log, 1)
    log.plots()  # a second into the run: not yet
    assert not (tmp_path / "accuracy.png").exists()
    log.plots(final=True)
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    (tmp_path / "accuracy.png").unlink()
    monkeypatch.setattr(runlog_mod, "PLOT_EVERY_S", 0.0)  # the interval has passed
    _log_epoch(log, 2)
    log.plots()
    assert (tmp_path / "accuracy.png").exists()
    log.close()


def test_a_chart_failure_warns_once_and_never_stops_the_run(tmp_path, monkeypatch, capsys):
    import imagenet_trainer.engine.plots as plot_mod

    calls = []

    def broken(dirs):
        calls.append(dirs)
        raise ValueError("no display")

    monkeypatch.setattr(plot_mod, "plot_runs", broken)
    log = RunLog(tmp_path)
    _log_epoch(log, 1)
    log.plots(final=True)
    log.plots(final=True)  # not retried after a failure
    assert len(calls) == 1
    err = capsys.readouterr().err
    assert err.count("charts not drawn (ValueError: no display)") == 1 and "imagenet-trainer plot" in err
    log.close()


def test_only_the_main_process_writes(tmp_path):
    log = RunLog(tmp_path / "run", enabled=False)
    _log_epoch(log, 1)
    log.plots(final=True)
    log.bad_image("x.jpg", "truncated")
    log.close()
    assert not (tmp_path / "run").exists()


def test_a_new_run_folder_never_reuses_an_existing_one(tmp_path, monkeypatch):
    monkeypatch.setattr(runlog_mod.time, "strftime", lambda fmt: "20261126-120000")
    first = runlog_mod.new_run_dir("resnet50", str(tmp_path))
    first.mkdir()
    second = runlog_mod.new_run_dir("resnet50", str(tmp_path))
    second.mkdir()
    assert (first.name, second.name) == ("resnet50-20261126-120000", "resnet50-20261126-120000-2")
    assert runlog_mod.new_run_dir("resnet50", str(tmp_path)).name == "resnet50-20261126-120000-3"


def test_resume_auto_finds_the_newest_checkpoint_of_the_arch(tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    assert runlog_mod.find_latest_checkpoint(None, "resnet50") is None
    for i, name in enumerate(["resnet50-a", "resnet50-b", "alexnet-c"]):
        p = tmp_path / "runs" / name / "checkpoint_last.pt"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
    os.utime(tmp_path / "runs" / "resnet50-a" / "checkpoint_last.pt", (2000, 2000))  # the newest resnet50 run
    found = runlog_mod.find_latest_checkpoint(None, "resnet50")
    assert found.resolve() == tmp_path / "runs" / "resnet50-a" / "checkpoint_last.pt"
    assert runlog_mod.find_latest_checkpoint(str(tmp_path / "runs" / "resnet50-b"), "resnet50").parent.name == "resnet50-b"
    assert runlog_mod.find_latest_checkpoint(str(tmp_path / "nowhere"), "resnet50") is None
