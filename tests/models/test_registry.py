import pytest
import torch
import torch.nn as nn

from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model, list_models, resolve_name, supports_small_stem
from imagenet_trainer.models.registry import aliases_of


def test_names_and_aliases_resolve():
    names = list_models()
    assert {"alexnet", "resnet50", "resnet9", "resnet9_w96", "resnet9_wide", "googlenet"} <= set(names)
    for name in names:
        assert resolve_name(name.upper()) == name
        for alias in aliases_of(name):
            assert resolve_name(alias) == name


def test_unknown_name_is_a_usage_error_that_names_the_option():
    with pytest.raises(UsageError, match="--arch resnet7"):
        resolve_name("resnet7")


def test_small_stem_only_for_torchvision_resnets():
    assert supports_small_stem("resnet18") and not supports_small_stem("resnet9")
    model = create_model("resnet18", 10, small_stem=True)
    assert model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    with pytest.raises(UsageError, match="only the ResNets"):
        create_model("alexnet", 10, small_stem=True)


@pytest.mark.parametrize("name,width", [("resnet9", 64), ("resnet9_w96", 96), ("resnet9_wide", 128)])
def test_resnet9_widths_and_pool_before_bn(name, width):
    model = create_model(name, 10).eval()
    assert model.features[0][0].out_channels == width and model.fc.in_features == 8 * width
    block = model.features[1]  # conv -> max-pool -> BN -> ReLU
    assert [type(m) for m in block] == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU]
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
