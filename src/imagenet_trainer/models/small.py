"""Networks made for small images (CIFAR-sized, 32-64 px), which keep full resolution in their first layer."""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    # Pooling straight after the convolution (as in the later fast CIFAR nets) gives BN and ReLU a
    # quarter of the pixels; max-pooling commutes with ReLU, so the network computes nearly the same
    # function. Measured on an H200 (CIFAR-10 JPEG, 16 epochs): 14% less training time, the same
    # accuracy (90.6-90.8% vs 90.5-90.6%, two runs each).
    layers = [nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(width, width), _conv_bn(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """The 9-layer residual network of the DAWNBench CIFAR-10 entries (Myrtle.ai, 2018).

    prep 64 -> [128, pool, residual] -> [256, pool] -> [512, pool, residual] -> global max-pool ->
    linear, with the logits scaled by 1/8; each block is conv -> (pool) -> BN -> ReLU. No stride in the first layer: it is for small images (at
    224 px it costs about 18 GFLOPs).
    """

    def __init__(self, num_classes: int = 1000, width: int = 64, scale: float = 0.125):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn(3, w),
            _conv_bn(w, 2 * w, pool=True), _Residual(2 * w),
            _conv_bn(2 * w, 4 * w, pool=True),
            _conv_bn(4 * w, 8 * w, pool=True), _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
        )
        self.fc = nn.Linear(8 * w, num_classes, bias=False)
        self.scale = scale
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1)) * self.scale


def resnet9_w96(num_classes: int = 1000) -> ResNet9:
    """ResNet-9 at 1.5 times the width: about 25% less time per epoch than ``resnet9_wide``. On CIFAR-10 JPEG
    (one H100, 100 epochs, ``--cutout 0.3 --label-smoothing 0.2 --tta-shift 1``): 92.94-93.32%, mean 93.14% over
    5 seeds, in 105-108 s."""
    return ResNet9(num_classes, width=96)


def resnet9_wide(num_classes: int = 1000) -> ResNet9:
    """ResNet-9 at twice the width. On CIFAR-10 JPEG (one H100): 92.3% in 62 s (40 epochs) and 92.6% in
    113 s (80 epochs), where ResNet-9 stops near 92.2% (80 epochs)."""
    return ResNet9(num_classes, width=128)
