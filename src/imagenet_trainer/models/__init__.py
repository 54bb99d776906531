"""Models: a registry of the original example's networks plus ResNets, for any number of classes, and the zoos
(``zoo.py``): every torchvision classification model, and every timm model as ``timm/NAME``.

torchvision's builders are used where torchvision has the net; ``classic.py`` has the rest.
"""

from __future__ import annotations

import torch.nn as nn

from imagenet_trainer.models import classic, small
from imagenet_trainer.models.registry import (aliases_of, create_model, describe, has_drop_path, is_registered,
                                               list_models,
                                               min_input_size, register_model, resolve_name, supports_small_stem,
                                               torchvision_name)

__all__ = ["create_model", "list_models", "register_model", "resolve_name", "aliases_of", "describe", "min_input_size",
           "supports_small_stem", "is_registered", "torchvision_name", "has_drop_path"]


def _tv(name: str, **extra):
    def build(num_classes: int = 1000) -> nn.Module:
        # Imported when such a net is built: torchvision pulls in torch._dynamo, seconds of start-up that
        # a run of this project's own nets (resnet9 on CIFAR) does not need.
        from torchvision import models as tvm

        return getattr(tvm, name)(weights=None, num_classes=num_classes, **extra)
    build.torchvision = name
    return build


def _register_tv(name: str, description: str, builder, aliases: tuple[str, ...] = ()) -> None:
    register_model(name, description, aliases=aliases, torchvision=builder.torchvision)(builder)


_register_tv("alexnet", "AlexNet, one-weird-trick variant (torchvision)", _tv("alexnet"), aliases=("alexnetowt",))
register_model("alexnetowtbn", "AlexNet one-weird-trick with batch norm")(classic.AlexNetOWTBN)
register_model("overfeat", "OverFeat, fast model")(classic.OverFeatFast)
register_model("ninbn", "Network-in-Network with batch norm")(classic.NINBN)
register_model("googlenet", "GoogLeNet (Inception v1), no batch norm")(classic.googlenet_plain)
_register_tv("googlenetbn", "GoogLeNet with batch norm (torchvision)",
             _tv("googlenet", aux_logits=False, init_weights=True), aliases=("googlenet_bn",))
for _depth in (11, 13, 16, 19):
    _register_tv(f"vgg{_depth}", f"VGG-{_depth} (torchvision)", _tv(f"vgg{_depth}"),
                 aliases=("vgg",) if _depth == 11 else ())
    _register_tv(f"vgg{_depth}_bn", f"VGG-{_depth} with batch norm (torchvision)", _tv(f"vgg{_depth}_bn"),
                 aliases=(f"vgg{_depth}bn",))
_register_tv("squeezenet1_0", "SqueezeNet 1.0 (torchvision)", _tv("squeezenet1_0"), aliases=("squeezenet",))
_register_tv("squeezenet1_1", "SqueezeNet 1.1 (torchvision)", _tv("squeezenet1_1"))
# Each residual branch's last batch norm starts at zero (Goyal et al. 2017; timm's default): every block is
# then the identity at the start, and a fresh ResNet-50 takes a high LR without its loss blowing up.
for _depth in (18, 34, 50, 101, 152):
    _register_tv(f"resnet{_depth}", f"ResNet-{_depth} (torchvision)", _tv(f"resnet{_depth}", zero_init_residual=True))
register_model("resnet9", "ResNet-9 of the DAWNBench CIFAR entries: for small images (32-64 px)")(small.ResNet9)
register_model("resnet9_w96", "ResNet-9 at 1.5 times the width (96-768 channels): 93% on CIFAR-10 JPEG in 100 epochs")(
    small.resnet9_w96)
register_model("resnet9_wide", "ResNet-9 at twice the width (128-1024 channels): more accuracy for longer budgets")(
    small.resnet9_wide)
register_model("smallcnn", "4-layer CNN, no BN or dropout: CPU smoke tests")(classic.SmallCNN)
