"""DenseNet-121 as torchxrayvision builds it, for speed comparison only.

torchxrayvision's chest X-ray DenseNets ("densenet121-res224-*") are the standard
DenseNet-121 (Huang et al., CVPR 2017: growth rate 32, blocks 6/12/24/16, 64 initial
features, bottleneck 4x) with a one-channel 224 px input and 18 pathology outputs.
Neither torchxrayvision (it needs torchvision, which does not import beside the local
torch wheel here) nor its weights can be installed on this machine, so the architecture is
written out and initialised randomly: this model is timed, never used to read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _DenseLayer(nn.Module):
    def __init__(self, in_features: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.norm1(x)))
        y = self.conv2(F.relu(self.norm2(y)))
        return torch.cat([x, y], 1)


class _Transition(nn.Sequential):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_features),
            nn.ReLU(),
            nn.Conv2d(in_features, out_features, 1, bias=False),
            nn.AvgPool2d(2, 2),
        )


class DenseNet121(nn.Module):
    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 18,
        growth: int = 32,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        init_features: int = 64,
        bn_size: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, init_features, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(init_features),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        n = init_features
        for i, count in enumerate(blocks):
            for _ in range(count):
                layers.append(_DenseLayer(n, growth, bn_size))
                n += growth
            if i != len(blocks) - 1:
                layers.append(_Transition(n, n // 2))
                n //= 2
        layers.append(nn.BatchNorm2d(n))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(n, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.relu(self.features(x))
        return torch.sigmoid(self.classifier(f.mean(dim=(2, 3))))
