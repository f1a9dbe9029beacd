"""FCN-8s-style decoder on any smp encoder (Long et al. 2015, the paper's base network).

The deepest features go through an fc6/fc7-like block; stride-16 and stride-8 features are projected and added
after upsampling (the 32s → 16s → 8s skip fusion), and a 1×1 head scores classes at stride 8, upsampled ×8.
Projecting to a shared width, summing, then scoring equals FCN's score-then-sum: every step is linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base import SegmentationHead, SegmentationModel
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FCN8sDecoder(nn.Module):
    def __init__(self, encoder_channels: list[int], channels: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        c8, c16, c32 = encoder_channels[-3:]
        self.fc = nn.Sequential(  # fc6/fc7 as convolutions
            _conv_bn_relu(c32, channels, 3),
            nn.Dropout2d(dropout),
            _conv_bn_relu(channels, channels, 1),
            nn.Dropout2d(dropout),
        )
        self.skip16 = nn.Conv2d(c16, channels, 1)
        self.skip8 = nn.Conv2d(c8, channels, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        f8, f16, f32 = features[-3:]  # strides 8, 16, 32
        x = self.fc(f32)  # (B, C, H/32, W/32)
        x = F.interpolate(x, size=f16.shape[-2:], mode="bilinear", align_corners=False) + self.skip16(f16)
        x = F.interpolate(x, size=f8.shape[-2:], mode="bilinear", align_corners=False) + self.skip8(f8)
        return x  # (B, C, H/8, W/8)


class FCN8s(SegmentationModel):
    """smp-compatible FCN-8s: ``encoder`` → ``decoder`` → ``segmentation_head``, like smp's own models."""

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_weights: str | None = None,
        in_channels: int = 3,
        classes: int = 1,
        decoder_channels: int = 256,
        decoder_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder_name, in_channels=in_channels, depth=5, weights=encoder_weights)
        self.decoder = FCN8sDecoder(self.encoder.out_channels, decoder_channels, decoder_dropout)
        self.segmentation_head = SegmentationHead(decoder_channels, classes, kernel_size=1, upsampling=8)
        self.classification_head = None
        self.name = f"fcn8s-{encoder_name}"
        self.initialize()
