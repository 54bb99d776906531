"""Recipes: files resolve, schedules fit the budget, EMA is saved and evaluated, small images get a small stem."""

import json

import pytest
import yaml

from imagenet_trainer.cli import build_parser, main
from imagenet_trainer.cli.train import config_from_args
from imagenet_trainer.config import TrainConfig, list_recipes, load_recipe, recipe_dir as config_dir
from imagenet_trainer.engine.checkpoint import safe_load
from imagenet_trainer.engine.optim import Schedule
from imagenet_trainer.data.build import crop_size_at
from imagenet_trainer.engine.run import adapt_to_data, train
from tests.conftest import jpeg_bytes, random_image
from tests.engine.test_train import _cfg


def _cfg_from(argv):
    args = build_parser().parse_args(argv)
    args.argv = argv
    return config_from_args(args)


@pytest.mark.parametrize("name", list_recipes())
def test_each_recipe_loads_and_resolves(name):
    assert set(list_recipes()) >= {"fast", "standard", "seed-alexnet"}
    cfg = _cfg_from(["train", "--data", "d", "--recipe", name])
    assert cfg.recipe == name and isinstance(cfg, TrainConfig)
    Schedule(cfg, 100).at(0)


def test_command_line_beats_the_recipe():
    cfg = _cfg_from(["train", "--data", "d", "--recipe", "seed-alexnet", "--epochs", "3", "--no-nesterov",
                     "--arch=resnet18"])
    assert (cfg.epochs, cfg.arch, cfg.lr_schedule, cfg.sampling) == (3, "resnet18", "seed", "balanced")
    assert _cfg_from(["train", "--data", "d"]).recipe == "fast"  # the default
    assert _cfg_from(["train", "--data", "d", "--recipe", "none"]).ema is False


@pytest.mark.parametrize("recipe", ["fast", "standard", "none"])
def test_the_python_api_and_the_command_line_resolve_the_same_config(recipe):
    import imagenet_trainer as it

    argv = ["train", "--data", "d", "--recipe", recipe, "--arch", "resnet18", "--epochs", "5", "--prog-resize",
            "0.5", "1", "--no-ema", "-b64", "-j0"]
    cli = _cfg_from(argv).replace(command=[])
    api = it.TrainConfig.from_recipe(recipe, data="d", arch="resnet18", epochs=5, prog_resize=[0.5, 1.0], ema=False,
                                     batch_size=64, workers=0)
    assert cli == api
    assert it.TrainConfig.from_recipe("fast", data="d") == _cfg_from(["train", "--data", "d"]).replace(command=[])


def test_bad_recipe(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("epochz: 3\n")
    assert main(["train", "--data", str(tmp_path), "--recipe", str(bad)]) == 2
    assert "epochz" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--recipe", "nope"]) == 2


@pytest.mark.parametrize("text, message", [
    ("epochs: ten\n", "epochs: 'ten' is not a whole number"),
    ("- 1\n- 2\n", "a recipe is a mapping of settings (name: value), not a list"),
    ("prog_resize: 0.5\n", "prog_resize: 0.5 is not a list of two numbers (or null)"),
    ("prog_resize: [0.5, x]\n", "prog_resize: [0.5, 'x'] is not a list of two numbers"),
    ("arch: 7\n", "arch: 7 is not text"),
    ("ema: 1\n", "ema: 1 is not true or false"),
    ("lr: true\n", "lr: True is not a number (or null)"),
    ("epochs: null\n", "epochs: None is not a whole number"),
])
def test_a_recipe_value_of_the_wrong_kind_is_a_one_line_error(tmp_path, capsys, text, message):
    bad = tmp_path / "r.yaml"
    bad.write_text(text)
    capsys.readouterr()
    assert main(["train", "--data", str(tmp_path), "--recipe", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith(f"imagenet-trainer train: error: {bad}: {message}"), err
    assert "Traceback" not in err


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("weight_decay: 5e-5\nlr: null\nprog_resize: [0.5, 1]\n")
    assert load_recipe(str(path)) == {"weight_decay": 5e-5, "lr": None, "prog_resize": [0.5, 1]}


@pytest.mark.parametrize("name", ["fast", "standard"])
def test_a_five_epoch_budget_is_a_complete_schedule(name):
    cfg = _cfg_from(["train", "--data", "d", "--recipe", name, "--epochs", "5"])
    s = Schedule(cfg, steps_per_epoch=20)
    first, last = s.at(0)[0], s.at(5 * 20 - 1)[0]
    if cfg.lr_schedule == "cosine":
        assert last < 0.01 * s.base_lr and first < s.base_lr  # warmed up from low, decayed to ~0
    else:
        assert last == s.base_lr  # step: 5 epochs never reach the first decay at epoch 30


def test_progressive_resizing_grows_to_full_size():
    cfg = TrainConfig(crop_size=224, epochs=8, prog_resize=[0.5, 0.75])
    sizes = [crop_size_at(cfg, e) for e in range(1, 9)]
    assert sizes[0] == 112 and sizes[5:] == [224, 224, 224]
    assert sizes == sorted(sizes) and all(s % 8 == 0 for s in sizes)
    assert crop_size_at(TrainConfig(), 1) is None


def test_ema_is_saved_and_evaluated(tiny_tree, tmp_path, capsys):
    cfg = _cfg(tiny_tree, tmp_path / "run", epochs=2, ema=True, tta=True, prog_resize=[0.5, 1.0], small_stem="off")
    assert train(cfg) == 0
    m = safe_load(tmp_path / "run" / "model_02.pt")
    assert "ema_state_dict" in m and m["ema_state_dict"].keys() == m["state_dict"].keys()
    assert 0 <= m["metrics"]["val"]["ema_top1"] <= 100
    assert m["metrics"]["train"]["crop_size"] == 32
    assert safe_load(tmp_path / "run" / "model_01.pt")["metrics"]["train"]["crop_size"] == 16
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model_02.pt"), "--data", str(tiny_tree), "--ema",
                 "--tta", "--workers", "0"]) == 0
    assert "top-1 error" in capsys.readouterr().out
    # by default, evaluate validates as training did (here with flip TTA): the run's figure again
    assert m["tta"] is True
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model_02.pt"), "--data", str(tiny_tree), "--json",
                 "--workers", "0"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["tta"] is True and res["weights"] == "ema"
    assert res["top1_error"] == pytest.approx(100 - m["metrics"]["val"]["ema_top1"])
    assert res["loss"] == pytest.approx(m["metrics"]["val"]["ema_loss"], rel=1e-4)
    assert train(_cfg(tiny_tree, tmp_path / "run", epochs=3, ema=True, small_stem="off", resume="auto")) == 0


def _tree(root, side):
    for c in ("a", "b"):
        d = root / "train" / c
        d.mkdir(parents=True)
        for i in range(3):
            (d / f"{i}.jpg").write_bytes(jpeg_bytes(random_image(side, side + 4, seed=i)))
    return root


def test_small_stem_for_32px_data_not_for_224px(tmp_path):
    small = adapt_to_data(TrainConfig(data=str(_tree(tmp_path / "s", 32)), arch="resnet18",
                                            prog_resize=[0.6, 0.75]), verbose=False)
    assert (small.small_stem, small.crop_size, small.image_size) == ("on", 32, 32)
    assert small.prog_resize is None  # no low-resolution phase for 32 px images
    assert small.train_crop == "pad"  # random crops with 4 black pixels around, not random-resized
    big = adapt_to_data(TrainConfig(data=str(_tree(tmp_path / "b", 224)), arch="resnet18"), verbose=False)
    assert (big.small_stem, big.crop_size, big.train_crop) == ("off", 224, "rrc")
    other = adapt_to_data(TrainConfig(data=str(tmp_path / "s"), arch="alexnet"), verbose=False)
    assert other.small_stem == "off" and other.crop_size == 64  # AlexNet takes no less than 63 px
    native = adapt_to_data(TrainConfig(data=str(tmp_path / "s"), arch="resnet9"), verbose=False)
    assert native.small_stem == "off" and native.crop_size == 32  # resnet9 is made for small images
    off = adapt_to_data(TrainConfig(data=str(tmp_path / "s"), arch="resnet18", small_stem="off"))
    assert off.crop_size == 32 and off.train_crop == "pad"
    kept = adapt_to_data(TrainConfig(data=str(tmp_path / "s"), arch="resnet18", train_crop="rrc"), verbose=False)
    assert kept.train_crop == "rrc" and kept.small_stem == "on"


def test_sizes_and_batch_follow_the_data_unless_given(tmp_path):
    mid = adapt_to_data(TrainConfig(data=str(_tree(tmp_path / "m", 128)), arch="resnet18"), verbose=False)
    assert (mid.crop_size, mid.image_size, mid.small_stem, mid.train_crop) == (128, 146, "off", "rrc")
    assert mid.batch_size == 32 and mid.lr == pytest.approx(0.1)  # 6 images: the smallest batch, at 256's LR
    typed = adapt_to_data(TrainConfig(data=str(tmp_path / "m"), arch="resnet18", crop_size=224, image_size=256,
                                      batch_size=4), verbose=False)
    assert (typed.crop_size, typed.image_size, typed.batch_size) == (224, 256, 4)  # what the user typed stays
    assert typed.lr is None  # a batch the user gives scales the LR linearly
    small = adapt_to_data(TrainConfig(data=str(_tree(tmp_path / "s", 32)), arch="resnet18", crop_size=64,
                                      image_size=72), verbose=False)
    assert (small.crop_size, small.image_size) == (64, 72)
    only_image = adapt_to_data(TrainConfig(data=str(tmp_path / "m"), arch="resnet18", image_size=120), verbose=False)
    assert (only_image.crop_size, only_image.image_size) == (120, 120)  # a crop never above the resize


def test_a_small_set_takes_the_recipes_stronger_weight_decay(tmp_path):
    data = str(_tree(tmp_path / "m", 128))
    fast = adapt_to_data(TrainConfig.from_recipe("fast", data=data, arch="resnet18"), verbose=False)
    assert fast.batch_size == 32 and fast.weight_decay == 5e-4 and fast.rrc_min_scale == 0.35
    typed = adapt_to_data(TrainConfig.from_recipe("fast", data=data, arch="resnet18", weight_decay=1e-4), verbose=False)
    assert typed.weight_decay == 1e-4  # what the user typed stays
    batch = adapt_to_data(TrainConfig.from_recipe("fast", data=data, arch="resnet18", batch_size=16), verbose=False)
    assert batch.weight_decay == 5e-5  # a batch the user chose: not one the data made smaller
    assert adapt_to_data(TrainConfig(data=data, arch="resnet18"), verbose=False).weight_decay is None  # no recipe


def test_a_large_set_keeps_the_recipes_weight_decay_on_any_number_of_gpus(monkeypatch):
    from imagenet_trainer.engine import resolve

    counts = {"imagenet": 1_281_167, "caltech": 6_982}  # train images
    monkeypatch.setattr(resolve, "load_indexes", lambda cfg: (range(counts[cfg.data]), None))
    monkeypatch.setattr(resolve, "median_image_side", lambda index: 400)
    for world in (1, 3, 5, 8):  # a batch rounded up to fit 3 processes (258) is no small set
        cfg = adapt_to_data(TrainConfig.from_recipe("fast", data="imagenet"), world_size=world, verbose=False)
        assert cfg.batch_size >= 256 and cfg.weight_decay == 5e-5 and cfg.lr is None, world
    small = adapt_to_data(TrainConfig.from_recipe("fast", data="caltech"), world_size=3, verbose=False)
    assert small.batch_size == 66 and small.weight_decay == 5e-4
    other = adapt_to_data(TrainConfig.from_recipe("fast", data="caltech", opt="adamw"), verbose=False)
    assert other.batch_size == 64 and other.weight_decay == 5e-5  # the small-set decay is SGD's


def test_a_resumed_run_keeps_the_lr_and_weight_decay_the_data_chose():
    from imagenet_trainer.engine.run import resumed_settings

    saved = {"batch_size": 32, "lr": 0.5, "weight_decay": 5e-4, "crop_size": 128}
    got = resumed_settings(TrainConfig.from_recipe("fast", data="x"), saved)
    assert got == {"batch_size": 32, "lr": 0.5, "weight_decay": 5e-4, "crop_size": 128}
    typed = resumed_settings(TrainConfig.from_recipe("fast", data="x", lr_per_256=0.1, weight_decay=1e-4), saved)
    assert "lr" not in typed and "weight_decay" not in typed  # what the user gives now wins


def test_auto_sizes_and_batch():
    from imagenet_trainer.config import auto_batch_size, auto_sizes

    assert auto_sizes(400) == (224, 256) and auto_sizes(0) == (224, 256)  # ImageNet-like, or unknown
    assert auto_sizes(128) == (128, 146) and auto_sizes(150) == (144, 165) and auto_sizes(70) == (64, 73)
    assert auto_sizes(32) == (32, 32)
    assert auto_sizes(128, crop_size=96) == (96, 110) and auto_sizes(128, image_size=100) == (100, 100)
    assert auto_batch_size(1_281_167) == 256 and auto_batch_size(50_000) == 256
    assert auto_batch_size(6_982) == 64 and auto_batch_size(9_469) == 64 and auto_batch_size(100) == 32
    assert auto_batch_size(6_982, multiple=3) == 66  # divides by 3 processes


def test_small_stem_model_round_trips(tmp_path):
    root = _tree(tmp_path / "s", 32)
    for c in ("a", "b"):
        (root / "val" / c).mkdir(parents=True)
        (root / "val" / c / "v.jpg").write_bytes(jpeg_bytes(random_image(32, 32, seed=9)))
    assert main(["train", "--data", str(root), "--arch", "resnet18", "--epochs", "1", "--batch-size", "6",
                 "--workers", "0", "--device", "cpu", "--output", str(tmp_path / "run")]) == 0
    m = safe_load(tmp_path / "run" / "model_01.pt")
    assert m["small_stem"] is True and m["crop_size"] == 32
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["recipe"] == "fast"
    assert main(["predict", "--model", str(tmp_path / "run" / "model_01.pt"), str(root / "val")]) == 0



def test_config_yaml_is_fully_resolved_and_runs_again(tiny_tree, tmp_path):
    first = tmp_path / "first"
    assert main(["train", "--data", str(tiny_tree), "--arch", "resnet18", "--epochs", "1", "--workers", "0",
                 "--device", "cpu", "--normalize", "auto", "--output", str(first)]) == 0
    saved = yaml.safe_load((first / "config.yaml").read_text())
    autos = sorted(k for k, v in saved.items() if v == "auto")
    assert not autos, f"config.yaml keeps auto for {autos}"
    for key in ("loader", "cache", "workers", "device", "precision", "lr", "crop_size", "image_size", "batch_size",
                "small_stem", "train_crop", "mean", "std", "num_classes", "weight_decay"):
        assert saved[key] is not None and saved[key] != -1, key
    again = tmp_path / "again"
    assert main(["train", "--config", str(first / "config.yaml"), "--output", str(again)]) == 0
    repeated = yaml.safe_load((again / "config.yaml").read_text())
    differ = {k for k in saved if saved[k] != repeated.get(k)}
    assert differ == {"output", "run_dir", "command", "typed"}, differ


def test_a_net_that_cannot_take_small_images_gets_crops_it_can_take(tmp_path, capsys):
    data = _tree(tmp_path / "s", 32)
    cfg = adapt_to_data(TrainConfig(data=str(data), arch="alexnet"), verbose=False)
    assert cfg.crop_size == 64 and cfg.image_size == 64 and cfg.small_stem == "off"
    for arch in ("alexnetowtbn", "overfeat"):
        cfg = adapt_to_data(TrainConfig(data=str(data), arch=arch), verbose=False)
        assert cfg.crop_size >= 64 and cfg.image_size >= cfg.crop_size
    (data / "val").mkdir()
    (data / "val" / "a").symlink_to(data / "train" / "a")
    code = main(["train", "--data", str(data), "--arch", "alexnet", "--crop-size", "32", "--image-size", "32",
                 "--device", "cpu", "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "--crop-size 32: alexnet takes inputs of at least 63 px" in err[-1]
    assert not (tmp_path / "run").exists()


def test_an_option_the_user_typed_beats_every_automatic_choice(tmp_path):
    data = str(_tree(tmp_path / "s", 32))
    recipe = adapt_to_data(TrainConfig.from_recipe("fast", data=data, arch="resnet18"), verbose=False)
    assert recipe.prog_resize is None  # the recipe's progressive resizing: dropped for 32-px images
    typed = adapt_to_data(TrainConfig.from_recipe("fast", data=data, arch="resnet18", prog_resize=[0.5, 0.5]),
                          verbose=False)
    assert typed.prog_resize == [0.5, 0.5]
    cli = adapt_to_data(_cfg_from(["train", "--data", data, "--prog-resize", "0.5", "0.5", "--crop-size", "32",
                                   "--image-size", "40", "-b", "4"]), verbose=False)
    assert (cli.prog_resize, cli.crop_size, cli.image_size, cli.batch_size) == ([0.5, 0.5], 32, 40, 4)


@pytest.mark.parametrize("name", ["tv-resnet50-v2", "deit-small", "timm-a3"])
def test_a_published_recipe_runs_and_records_every_value_of_its_source(name, tiny_tree, tmp_path):
    values = load_recipe(name)
    if values["arch"].startswith("timm/"):
        pytest.importorskip("timm")
    source = (config_dir() / f"{name}.yaml").read_text()
    assert "http" in source or "et al." in source  # the file names where its values come from
    short = dict(epochs=1, epoch_size=2, batch_size=6, crop_size=32, image_size=36, workers=0, device="cpu",
                 save_interval=0, output=str(tmp_path / "run"))
    cfg = TrainConfig.from_recipe(name, data=str(tiny_tree), **short)
    assert train(cfg) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    for key, value in values.items():
        if key not in short and key not in ("lr_per_256", "weight_decay", "warmup_fraction"):
            assert saved[key] == value, key
    assert saved["lr_per_256"] == values["lr_per_256"] and saved["weight_decay"] == values["weight_decay"]
