"""TrainConfig: the range check of every numeric option, and the round trip through a dict."""

from __future__ import annotations

import pytest

from imagenet_trainer.cli import main
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.errors import UsageError

BAD = [
    (["--label-smoothing", "1.5"], "--label-smoothing 1.5: must be from 0 to below 1"),
    (["--momentum", "-1"], "--momentum -1: must be from 0 to below 1"),
    (["--momentum", "0", "--nesterov"], "--momentum 0: Nesterov momentum needs a momentum above 0"),
    (["--lr", "-1"], "--lr -1: must be 0 or more"),
    (["--lr-per-256", "-0.1"], "--lr-per-256 -0.1: must be 0 or more"),
    (["--weight-decay", "-1"], "--weight-decay -1: must be 0 or more"),
    (["--workers", "-5"], "--workers -5: must be 0"),
    (["--ema-half-life", "0"], "--ema-half-life 0: must be a share of the run above 0"),
    (["--tta-shift", "40"], "--tta-shift 40: must be smaller than the crop (32 px)"),
    (["--warmup-fraction", "2"], "--warmup-fraction 2: must be a share of the run from 0 to 1"),
    (["--warmup-epochs", "-1"], "--warmup-epochs -1: must be 0 or more"),
    (["--step-gamma", "-1"], "--step-gamma -1: must be above 0 and at most 1"),
    (["--rrc-min-scale", "0"], "--rrc-min-scale 0: must be an area share above 0 and at most 1"),
    (["--rrc-min-scale", "2"], "--rrc-min-scale 2: must be an area share"),
    (["--cpu-share", "2"], "--cpu-share 2: must be a share from 0 to 1"),
    (["--dist-timeout", "0"], "--dist-timeout 0: must be more than 0 minutes"),
    (["--cutout", "1"], "--cutout 1: must be a share of the crop side"),
    (["--save-interval", "-1"], "--save-interval -1: must be 0 or more"),
    (["--prog-resize", "1.5", "0.5"], "--prog-resize 1.5 0.5: needs two shares above 0 and at most 1"),
    (["--prog-resize", "0", "0.75"], "--prog-resize 0 0.75: needs two shares"),
    (["--prog-resize", "0.6", "0"], "--prog-resize 0.6 0: needs two shares"),
]


@pytest.mark.parametrize("options, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_an_out_of_range_option_is_a_one_line_error_before_anything_runs(options, message, tmp_path, capsys):
    """Exit code 2 and the option named, checked before the data is even looked at (the folder is missing)."""
    code = main(["train", "--data", str(tmp_path / "missing"), "--crop-size", "32", "--image-size", "36",
                 "--device", "cpu", "--output", str(tmp_path / "run"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "Traceback" not in "\n".join(err)
    assert message in err[-1]
    assert not (tmp_path / "run").exists()


def test_the_defaults_and_the_recipes_pass_the_check():
    from imagenet_trainer.config import list_recipes, load_recipe

    TrainConfig().check()
    for name in list_recipes():
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in load_recipe(name).items()}
        TrainConfig(**values).check()


def test_library_callers_get_the_same_check():
    with pytest.raises(UsageError, match="--label-smoothing 1.5"):
        TrainConfig(label_smoothing=1.5).check()


def test_the_ddp_graph_is_auto_split_or_whole_and_whole_needs_the_compile_backend():
    TrainConfig(backend="compile", ddp_graph="whole").check()
    TrainConfig(ddp_graph="split").check()
    assert TrainConfig().ddp_graph == "auto"  # the default, which the eager backend ignores
    TrainConfig().check()
    with pytest.raises(UsageError, match="--ddp-graph whole: chooses how torch.compile cuts a DDP model: add --backend"):
        TrainConfig(ddp_graph="whole").check()
    with pytest.raises(UsageError, match="--ddp-graph halves: unknown; choose one of auto, split, whole"):
        TrainConfig(backend="compile", ddp_graph="halves").check()


def test_a_compile_mode_needs_the_compile_backend():
    TrainConfig(backend="compile", compile_mode="reduce-overhead").check()
    with pytest.raises(UsageError, match="--compile-mode reduce-overhead: is a mode of torch.compile: add --backend"):
        TrainConfig(compile_mode="reduce-overhead").check()
    with pytest.raises(UsageError, match="--compile-mode fastest: unknown"):
        TrainConfig(backend="compile", compile_mode="fastest").check()


def test_round_trip_through_a_dict_ignores_unknown_keys():
    cfg = TrainConfig(data="d", arch="resnet50", prog_resize=[0.5, 0.75])
    assert TrainConfig.from_dict(cfg.to_dict() | {"from_a_newer_version": 1}) == cfg
