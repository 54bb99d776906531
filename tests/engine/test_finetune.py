"""Fine-tuning: the finetune recipe, the optimizers and their parameter groups, a head-only phase, gradient
clipping, and a timm model through train, resume, convert and predict."""

from __future__ import annotations

import pytest
import torch

from imagenet_trainer.cli import main
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.engine.checkpoint import safe_load
from imagenet_trainer.engine.optim import Schedule, make_optimizer, param_groups
from imagenet_trainer.engine.run import adapt_to_data, train
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model
from tests.engine.test_train import _cfg, _weights, assert_resume_is_exact


def _pretrain(tree, out) -> str:
    assert train(_cfg(tree, out, epochs=1)) == 0
    return str(out / "model_best.pt")


def test_the_finetune_recipe_resolves(tiny_tree):
    cfg = TrainConfig.from_recipe("finetune", data=str(tiny_tree), arch="resnet18", workers=0)
    assert (cfg.opt, cfg.freeze_epochs, cfg.layer_decay, cfg.ema, cfg.label_smoothing) == ("adamw", 1, 0.75, True, 0.1)
    resolved = adapt_to_data(cfg, verbose=False)
    assert resolved.drop_path is None  # the recipe's drop-path, for the models that have it: not torchvision's ResNet
    assert Schedule(resolved, 10).at(10 ** 6)[1] == 0.05
    typed = TrainConfig.from_recipe("finetune", data=str(tiny_tree), arch="resnet18", drop_path=0.1)
    with pytest.raises(UsageError, match="--drop-path: resnet18 has no stochastic depth"):
        train(typed.replace(device="cpu", workers=0, epochs=1, output=str(tiny_tree.parent / "r")))


def test_a_frozen_body_does_not_change_during_the_head_warmup(tiny_tree, tmp_path):
    start = _pretrain(tiny_tree, tmp_path / "pre")
    cfg = _cfg(tiny_tree, tmp_path / "ft", epochs=1, weights=start, opt="adamw", lr=1e-2, freeze_epochs=1,
               num_classes=4)  # 4 outputs: a new head
    assert train(cfg) == 0
    before, after = _weights(start), _weights(tmp_path / "ft" / "model_01.pt")
    for k, v in before.items():
        if k.startswith("fc."):
            assert after[k].shape != v.shape
        elif "running_" not in k and "num_batches" not in k:  # batch-norm statistics follow the new data
            assert torch.equal(after[k], v), k
    assert not torch.equal(after["fc.weight"], create_model("resnet18", 4).fc.weight)  # the head trained


def test_freeze_backbone_trains_the_head_only(tiny_tree, tmp_path):
    start = _pretrain(tiny_tree, tmp_path / "pre")
    assert train(_cfg(tiny_tree, tmp_path / "ft", epochs=2, weights=start, freeze_backbone=True)) == 0
    before, after = _weights(start), _weights(tmp_path / "ft" / "model_02.pt")
    assert torch.equal(after["layer4.1.conv2.weight"], before["layer4.1.conv2.weight"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])


def test_weights_decay_only_on_weights_and_layer_decay_grows_to_the_head():
    pytest.importorskip("timm")
    model = create_model("timm/test_vit", 3, image_size=32)
    groups = param_groups(model, TrainConfig(no_bn_decay=True, layer_decay=0.5), ["head"])
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in groups if not g["decay"] for p in g["params"]}
    assert {"pos_embed", "cls_token", "blocks.0.norm1.weight", "head.bias"} <= no_decay
    assert "blocks.0.attn.qkv.weight" not in no_decay
    scale = {names[id(p)]: g["lr_scale"] for g in groups for p in g["params"]}
    assert scale["head.weight"] == 1.0 and scale["pos_embed"] < scale["blocks.0.attn.qkv.weight"] < 1.0
    from timm.optim import param_groups_layer_decay  # the same scales as timm's own grouping

    ref = {id(p): g["lr_scale"] for g in param_groups_layer_decay(model, 0.05, layer_decay=0.5)
           for p in g["params"]}
    assert {names[k]: v for k, v in ref.items()} == scale
    # a torchvision model: each residual block, and each other module, in order
    resnet = create_model("resnet18", 3)
    groups = param_groups(resnet, TrainConfig(layer_decay=0.5), ["fc"])
    names = {id(p): n for n, p in resnet.named_parameters()}
    scale = {names[id(p)]: g["lr_scale"] for g in groups for p in g["params"]}
    assert scale["fc.weight"] == 1.0 and scale["layer4.1.conv1.weight"] == 0.5
    assert scale["layer4.0.conv2.weight"] == 0.25 and scale["conv1.weight"] == 0.5 ** 10


def test_the_schedule_scales_each_group_and_holds_the_body_in_the_head_phase():
    model = create_model("resnet18", 3)
    cfg = TrainConfig(opt="adamw", layer_decay=0.5, freeze_epochs=1, lr=0.1, epochs=4)
    opt = make_optimizer(model, cfg, ["fc"])
    assert isinstance(opt, torch.optim.AdamW)
    sched = Schedule(cfg, steps_per_epoch=10)
    sched.apply(opt, 5)
    assert all(g["lr"] == 0.0 for g in opt.param_groups if not g["head"])
    assert all(g["lr"] > 0 for g in opt.param_groups if g["head"])
    sched.apply(opt, 10)
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert len(lrs) == 11 and all(lr > 0 for lr in lrs)


@pytest.mark.parametrize("opt", ["lamb", "lars"])
def test_timms_lamb_and_lars_step(opt):
    pytest.importorskip("timm")
    model = create_model("smallcnn", 3)
    optimizer = make_optimizer(model, TrainConfig(opt=opt), [])
    Schedule(TrainConfig(opt=opt, lr=0.1, epochs=1), 10).apply(optimizer, 5)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.rand(4, 3, 32, 32)).logsumexp(1).mean().backward()
    optimizer.step()
    assert type(optimizer).__name__.lower() == opt
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_clip_grad_bounds_each_step(tiny_tree, tmp_path):
    start = _pretrain(tiny_tree, tmp_path / "pre")
    cfg = _cfg(tiny_tree, tmp_path / "ft", epochs=1, weights=start, clip_grad=1e-9, lr=1.0, momentum=0.0,
               weight_decay=0.0)
    assert train(cfg) == 0
    before, after = _weights(start), _weights(tmp_path / "ft" / "model_01.pt")
    steps = 3  # 18 images at batch 6
    for k in ("conv1.weight", "fc.weight", "layer3.0.conv2.weight"):
        assert (after[k] - before[k]).abs().max() <= 1.0 * 1e-9 * steps * 1.01, k


def test_adamw_resumes_exactly(tiny_tree, tmp_path, monkeypatch):
    assert_resume_is_exact(tiny_tree, tmp_path, monkeypatch, opt="adamw", lr=1e-3, layer_decay=0.8, clip_grad=1.0,
                           no_bn_decay=True)


@pytest.mark.parametrize("arch", ["timm/test_convnext", "timm/test_vit"])
def test_a_tiny_timm_model_trains_resumes_converts_and_predicts(tiny_tree, tmp_path, capsys, arch):
    pytest.importorskip("timm")
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_tree), "--arch", arch, "--epochs", "2", "--batch-size", "6",
            "--crop-size", "32", "--image-size", "36", "--workers", "0", "--device", "cpu", "--output", str(run),
            "--recipe", "finetune", "--save-interval", "0"]
    assert main(args) == 0
    assert main([*args[:6], "3", *args[7:], "--resume", "auto"]) == 0
    assert safe_load(run / "checkpoint_last.pt")["epoch"] == 3
    assert main(["convert", "--src", str(run / "model_best.pt"), "--dst", str(tmp_path / "m.onnx")]) == 0
    image = next((tiny_tree / "val" / "cat").iterdir())
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m.onnx"), str(image)]) == 0
    assert "cat" in capsys.readouterr().out


def test_weights_and_pretrained_on_the_command_line(tiny_tree, tmp_path, capsys):
    start = _pretrain(tiny_tree, tmp_path / "pre")
    common = ["train", "--data", str(tiny_tree), "--arch", "resnet18", "--epochs", "1", "--batch-size", "6",
              "--workers", "0", "--device", "cpu", "--recipe", "none", "--output", str(tmp_path / "ft")]
    capsys.readouterr()
    assert main([*common, "--weights", start]) == 0
    err = capsys.readouterr().err
    assert "loaded 122 of 122 tensors" in err and "head kept (3 classes" in err  # same classes: the head stays
    assert "input recipe of" in err and "crops of 32 px" in err  # the file's own sizes
    for bad, words in ((["--weights", str(tmp_path / "nope.pth")], "no such file"),
                       (["--weights", start, "--pretrained"], "choose one"),
                       (["--arch", "resnet9", "--pretrained"], "has no published weights")):
        assert main([*common[:-2], "--output", str(tmp_path / "x"), *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err


def test_a_resumed_fine_tune_keeps_the_input_recipe_of_its_weights(tiny_tree, tmp_path, monkeypatch):
    from imagenet_trainer.engine import runlog

    pre = tmp_path / "pre"
    assert train(_cfg(tiny_tree, pre, epochs=1, crop_size=48, image_size=56, normalize="fixed",
                      mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])) == 0
    args = ["train", "--data", str(tiny_tree), "--arch", "resnet18", "--weights", str(pre / "model_best.pt"),
            "--recipe", "finetune", "--epochs", "2", "--batch-size", "6", "--workers", "0", "--device", "cpu",
            "--output", str(tmp_path / "ft"), "--save-interval", "0"]
    real = runlog.RunLog.metrics

    def stop(self, record):
        real(self, record)
        raise KeyboardInterrupt

    monkeypatch.setattr(runlog.RunLog, "metrics", stop)
    assert main(args) == 130
    monkeypatch.undo()
    assert main([*args, "--resume", "auto"]) == 0
    import yaml

    saved = yaml.safe_load((tmp_path / "ft" / "config.yaml").read_text())
    assert (saved["crop_size"], saved["image_size"], saved["mean"], saved["small_stem"]) == (48, 56, [0.5] * 3, "off")
