"""The zoos: torchvision's classification models by name, timm's as timm/NAME, and `models --filter` over all."""

from __future__ import annotations

import builtins

import pytest
import torch

from imagenet_trainer.cli import main
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model, has_drop_path, resolve_name, torchvision_name, zoo


def test_every_torchvision_classification_model_is_an_arch():
    names = zoo.torchvision_names()
    assert {"convnext_tiny", "efficientnet_b0", "vit_b_16", "swin_t", "regnet_y_400mf", "mobilenet_v3_large"} <= set(names)
    for name in names:
        assert resolve_name(name) == name
    model = create_model("mobilenet_v3_small", 4)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 4)
    assert torchvision_name("googlenetbn") == "googlenet" and torchvision_name("resnet9") is None


def test_a_fixed_size_model_is_built_for_the_crop():
    vit = create_model("vit_b_16", 3, image_size=48)
    assert vit(torch.zeros(1, 3, 48, 48)).shape == (1, 3)


def test_drop_path_through_the_models_own_argument():
    tv = create_model("convnext_tiny", 3, drop_path=0.2)
    assert max(m.p for m in tv.modules() if type(m).__name__ == "StochasticDepth") == pytest.approx(0.2)
    assert has_drop_path("convnext_tiny") and not has_drop_path("resnet50") and not has_drop_path("mobilenet_v2")
    with pytest.raises(UsageError, match="--drop-path: resnet50 has no stochastic depth"):
        create_model("resnet50", 3, drop_path=0.1)


def test_timm_models_by_name():
    pytest.importorskip("timm")
    model = create_model("timm/test_convnext", 5, drop_path=0.1)
    assert type(model).__module__.startswith("timm.") and model(torch.zeros(1, 3, 64, 64)).shape == (1, 5)
    assert resolve_name("timm/test_convnext") == "timm/test_convnext" and has_drop_path("timm/test_convnext")
    with pytest.raises(UsageError, match="--arch timm/convnext_teeny: timm has no such model .*models --filter"):
        resolve_name("timm/convnext_teeny")


def test_without_timm_a_timm_model_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm" or name.startswith("timm."):
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(UsageError, match=r"pip install 'imagenet-trainer\[timm\]'"):
        create_model("timm/convnext_tiny", 3)
    assert zoo.timm_names() == []


def test_models_filter_searches_all_zoos(capsys):
    assert main(["models", "--filter", "convnext_t"]) == 0
    out = capsys.readouterr().out
    assert "convnext_tiny " in out
    if zoo.timm_names():
        assert "timm/convnext_tiny " in out
    assert main(["models", "--filter", "resnet9*", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["resnet9", "resnet9_w96", "resnet9_wide"] and not rows[0]["weights"]
    assert main(["models", "--filter", "no-such-net"]) == 1


def test_a_vit_takes_sides_its_patches_divide(tiny_tree):
    pytest.importorskip("timm")
    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.engine.resolve import adapt_to_data, check_input_size
    from imagenet_trainer.models.registry import fitting_side, min_input_size

    assert fitting_side("timm/test_vit", 20) == 32 and fitting_side("timm/test_vit", 48) == 48
    assert min_input_size("timm/test_vit") == 16 and fitting_side("resnet18", 20) == 20
    cfg = TrainConfig.from_recipe("fast", data=str(tiny_tree), arch="timm/test_vit", workers=0)
    resolved = adapt_to_data(cfg, verbose=False)  # the photos' 40-52 px: crops of 48, and no progressive resizing
    assert resolved.crop_size == 48 and resolved.prog_resize is None
    with pytest.raises(UsageError, match="--crop-size 20: timm/test_vit takes sides that its patches divide; give "
                                         "--crop-size 32"):
        check_input_size(resolved.replace(crop_size=20, image_size=24))
    with pytest.raises(UsageError, match="--prog-resize: timm/test_vit takes only the input side"):
        adapt_to_data(TrainConfig.from_recipe("fast", data=str(tiny_tree), arch="timm/test_vit", workers=0,
                                              prog_resize=[0.5, 0.5]), verbose=False)


def test_tagged_timm_names_and_published_weights():
    pytest.importorskip("timm")
    assert zoo.input_recipe("timm/resnet50.tv_in1k")["image_size"] == 256  # the tag's recipe, not the default's
    assert zoo.input_recipe("timm/resnet50")["interpolation"] == "bicubic"
    assert zoo.has_published_weights("timm/convnext_tiny") and not zoo.has_published_weights("timm/beit3_giant_patch14_224")
    from imagenet_trainer.models.registry import fitting_side

    assert fitting_side("timm/vit_small_patch16_224", 200) == 208 and fitting_side("vit_b_16", 200) == 208


def test_googlenet_and_inception_weights_take_their_own_input_scaling():
    assert zoo.input_recipe("inception_v3")["mean"] == [0.5] * 3 and zoo.input_recipe("googlenet")["std"] == [0.5] * 3
    assert zoo.input_recipe("resnet50")["mean"] == [0.485, 0.456, 0.406]
