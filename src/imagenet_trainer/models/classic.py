"""Networks of the original Torch-7 example that torchvision lacks (or builds differently)."""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv_bn_relu(cin: int, cout: int, k: int, s: int = 1, p: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class AlexNetOWTBN(nn.Module):
    """AlexNet, "one weird trick" variant (Krizhevsky 2014), with batch norm after every layer."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(3, 64, 11, 4, 2), nn.MaxPool2d(3, 2),
            *_conv_bn_relu(64, 192, 5, 1, 2), nn.MaxPool2d(3, 2),
            *_conv_bn_relu(192, 384, 3, 1, 1),
            *_conv_bn_relu(384, 256, 3, 1, 1),
            *_conv_bn_relu(256, 256, 3, 1, 1), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class OverFeatFast(nn.Module):
    """OverFeat, fast model (Sermanet et al. 2013), as in the original example."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, 4), relu(), nn.MaxPool2d(2, 2),
            nn.Conv2d(96, 256, 5, 1), relu(), nn.MaxPool2d(2, 2),
            nn.Conv2d(256, 512, 3, 1, 1), relu(),
            nn.Conv2d(512, 1024, 3, 1, 1), relu(),
            nn.Conv2d(1024, 1024, 3, 1, 1), relu(), nn.MaxPool2d(2, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(5)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(1024 * 5 * 5, 3072), relu(),
            nn.Dropout(0.5), nn.Linear(3072, 4096), relu(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class NINBN(nn.Module):
    """Network-in-Network (Lin et al. 2013) with batch norm, as the original's ``ninbn``."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()

        def block(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
            return [*_conv_bn_relu(cin, cout, k, s, p), *_conv_bn_relu(cout, cout, 1), *_conv_bn_relu(cout, cout, 1)]

        self.features = nn.Sequential(
            *block(3, 96, 11, 4, 5), nn.MaxPool2d(3, 2, 1),
            *block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2, 1),
            *block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2, 1),
            *block(384, 1024, 3, 1, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class _PlainConv2d(nn.Module):
    """Conv + bias + ReLU: the GoogLeNet conv unit of 2014, before batch norm existed."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=True, **kwargs)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def googlenet_plain(num_classes: int = 1000) -> nn.Module:
    """GoogLeNet (Szegedy et al. 2014) without batch norm, built on torchvision's Inception blocks."""
    from torchvision.models.googlenet import GoogLeNet, Inception, InceptionAux

    model = GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=False,
                      blocks=[_PlainConv2d, Inception, InceptionAux])
    nn.init.normal_(model.fc.weight, std=0.01)
    nn.init.zeros_(model.fc.bias)
    return model


class SmallCNN(nn.Module):
    """A four-layer CNN with no batch norm and no dropout: seconds per epoch on a CPU, for smoke tests
    and for checks that need the same result however the batch is split (several processes)."""

    def __init__(self, num_classes: int = 1000, width: int = 32):
        super().__init__()
        layers, cin = [], 3
        for cout in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))
