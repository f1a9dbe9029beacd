"""The segmentation network: an smp architecture (or FCN-8s) on any smp encoder, normalising its own input."""

from __future__ import annotations

import warnings
from typing import Literal

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from parsing.encoder_weights import OFFLINE, load_encoder_file, normalisation, offline_weights_file
from parsing.fcn import FCN8s

Arch = Literal["unet", "fpn", "deeplabv3plus", "fcn8s"]
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "unet": smp.Unet,
    "fpn": smp.FPN,
    "deeplabv3plus": smp.DeepLabV3Plus,
    "fcn8s": FCN8s,
}


class ParsingNet(nn.Module):
    """Photos (B, 3, H, W) in [0, 1], any H and W → class logits (B, K, H, W).

    The input is padded bottom/right to a multiple of the encoder's stride (32) and the logits cropped back.
    """

    def __init__(
        self,
        arch: Arch,
        encoder: str,
        num_classes: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
        smp_weights = encoder_weights if encoder_weights == "imagenet" else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*`timm-` encoders are deprecated.*")
            self.seg = ARCHITECTURES[arch](encoder_name=encoder, encoder_weights=smp_weights, classes=num_classes)
        if encoder_weights == OFFLINE:
            load_encoder_file(self.seg.encoder, offline_weights_file(encoder))
        elif encoder_weights not in (None, "imagenet"):
            load_encoder_file(self.seg.encoder, encoder_weights)
        self.stride = 32
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised, padded input → the encoder's 6 feature maps (strides 1 … 32)."""
        return self.seg.encoder((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % self.stride, 0, -h % self.stride))  # (B, 3, H', W'), zeros like the transforms
        features = self.features(x)
        logits = self.seg.segmentation_head(self.seg.decoder(features))  # (B, K, H', W')
        return logits[..., :h, :w]


def build_model(
    arch: Arch = "fpn",
    encoder: str = "timm-tf_efficientnet_lite0",
    encoder_weights: str | None = OFFLINE,
    num_classes: int = 59,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> ParsingNet:
    """The network with its encoder weights loaded; normalisation defaults to the weights' own."""
    default_mean, default_std = normalisation(encoder, encoder_weights)
    return ParsingNet(arch, encoder, num_classes, mean or default_mean, std or default_std, encoder_weights)
