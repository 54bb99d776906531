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
