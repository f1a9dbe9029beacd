"""The segmentation network: an smp architecture (or FCN-8s) on any smp encoder, normalising its own input."""

from __future__ import annotations

import warnings
from typing import Literal, get_args

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from parsing.nn.context import ContextBlock
from parsing.nn.encoder_weights import OFFLINE, load_encoder_file, normalisation, offline_weights_file
from parsing.nn.fcn import FCN8s
from parsing.nn.outfit import GateMode, OutfitEncoder, gate

Arch = Literal["unet", "fpn", "deeplabv3plus", "fcn8s"]
Outfit = Literal["none", "aux", "gate"]
Context = Literal["none", "attention"]
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "unet": smp.Unet,
    "fpn": smp.FPN,
    "deeplabv3plus": smp.DeepLabV3Plus,
    "fcn8s": FCN8s,
}


class ParsingNet(nn.Module):
    """Photos (B, 3, H, W) in [0, 1], any H and W → class logits (B, K, H, W).

    The input is padded bottom/right to a multiple of the encoder's stride (32) and the logits cropped back.
    ``outfit``: no outfit encoder (``none``); the branch trained as an auxiliary task (``aux``); or the branch
    gating the logits per class (``gate``, the paper's outfit filter). ``context``: ``attention`` puts a
    self-attention block over the deepest features (``parsing.nn.context``) before the decoder and the outfit branch.
    """

    def __init__(
        self,
        arch: Arch,
        encoder: str,
        num_classes: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        encoder_weights: str | None = None,
        outfit: Outfit = "none",
        gate_mode: GateMode = "multiply",
        context: Context = "none",
    ) -> None:
        super().__init__()
        if outfit not in get_args(Outfit):
            raise ValueError(f"unknown outfit mode {outfit!r}; choose from {list(get_args(Outfit))}")
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
        if context not in get_args(Context):
            raise ValueError(f"unknown context {context!r}; choose from {list(get_args(Context))}")
        smp_weights = encoder_weights if encoder_weights == "imagenet" else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*`timm-` encoders are deprecated.*")
            self.seg = ARCHITECTURES[arch](encoder_name=encoder, encoder_weights=smp_weights, classes=num_classes)
        if encoder_weights == OFFLINE:
            load_encoder_file(self.seg.encoder, offline_weights_file(encoder))
        elif encoder_weights not in (None, "imagenet"):
            load_encoder_file(self.seg.encoder, encoder_weights)
        _drop_unused_head(self.seg.encoder)
        deepest = self.seg.encoder.out_channels[-1]
        self.context = ContextBlock(deepest) if context == "attention" else None
        self.outfit = OutfitEncoder(deepest, num_classes) if outfit != "none" else None
        self.gate_mode = gate_mode if outfit == "gate" else None
        self.stride = 32
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised, padded input → the encoder's 6 feature maps (strides 1 … 32), the deepest with context."""
        features = self.seg.encoder((x - self.mean) / self.std)
        if self.context is not None:
            features = [*features[:-1], self.context(features[-1])]
        return features

    def forward_with_presence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, K, H, W), gated if the outfit encoder gates, and presence logits (B, K) or None."""
        return self.forward_embedded(x, embed=False)[:2]

    def forward_embedded(self, x: torch.Tensor, embed: bool = True) -> tuple[torch.Tensor | None, ...]:
        """``forward_with_presence``'s logits and presence, plus what search reads: the decoder's features under
        the segmentation head (B, C, ⌈H/4⌉, ⌈W/4⌉) and the outfit encoder's hidden layer (B, 256) or None."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % self.stride, 0, -h % self.stride))  # (B, 3, H', W'), zeros like the transforms
        features = self.features(x)
        decoded = self.seg.decoder(features)  # (B, C, H'/4, W'/4)
        logits = self.seg.segmentation_head(decoded)  # (B, K, H', W')
        presence = self.outfit(features[-1]) if self.outfit is not None else None  # (B, K)
        if self.gate_mode is not None:
            logits = gate(logits, presence, self.gate_mode)
        if not embed:
            return logits[..., :h, :w], presence
        hidden = self.outfit.hidden(features[-1]) if self.outfit is not None else None
        return logits[..., :h, :w], presence, decoded[..., : -(-h // 4), : -(-w // 4)], hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_presence(x)[0]


UNUSED_HEADS = ("conv_head", "bn2", "_conv_head", "_bn1")  # EfficientNet's ImageNet head, kept by smp's encoders


def _drop_unused_head(encoder: nn.Module) -> None:
    """Replace the classification head layers that smp's EfficientNet encoders keep but never run: they get no
    gradient (DDP would need ``find_unused_parameters``) and take 1.6 MB. Called after the weights are loaded."""
    for name in UNUSED_HEADS:
        if isinstance(getattr(encoder, name, None), nn.Module) and "efficientnet" in type(encoder).__name__.lower():
            setattr(encoder, name, nn.Identity())


def build_model(
    arch: Arch = "fpn",
    encoder: str = "timm-tf_efficientnet_lite0",
    encoder_weights: str | None = OFFLINE,
    num_classes: int = 59,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    outfit: Outfit = "none",
    gate_mode: GateMode = "multiply",
    context: Context = "none",
) -> ParsingNet:
    """The network with its encoder weights loaded; normalisation defaults to the weights' own."""
    default_mean, default_std = normalisation(encoder, encoder_weights)
    mean, std = mean or default_mean, std or default_std
    return ParsingNet(arch, encoder, num_classes, mean, std, encoder_weights, outfit, gate_mode, context)
