"""The ``dense`` CRF: pydensecrf's mean-field on one photo, the reference (the ``crf`` extra)."""

from __future__ import annotations

import numpy as np
import torch

from parsing.inference.crf_params import CRFParams


class MissingCRFError(ImportError):
    """pydensecrf is not installed."""


def densecrf():  # noqa: ANN201
    """pydensecrf's ``densecrf`` module, or ``MissingCRFError`` naming the extra to install."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:
        raise MissingCRFError(
            "crf='dense' needs pydensecrf: pip install 'clothing-parsing[crf]' (the pydensecrf2 build), "
            "or use crf='fast', which needs nothing extra"
        ) from err
    return dcrf


def as_rgb_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any photo array → C-contiguous uint8 (H, W, 3): grayscale (H, W) or (H, W, 1), RGBA (alpha dropped),
    CHW tensors, floats in [0, 1] or [0, 255], 16-bit, non-contiguous views."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)  # CHW → HWC
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image (H, W), (H, W, 1|3|4) or (1|3|4, H, W), got shape {arr.shape}")
    arr = arr[:, :, :3] if arr.shape[-1] == 4 else arr
    arr = np.repeat(arr, 3, axis=2) if arr.shape[-1] == 1 else arr
    if arr.dtype == np.uint16:
        arr = arr / 257.0
    elif arr.dtype.kind == "f" and arr.size and arr.max() <= 1.0:
        arr = arr * 255.0
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    return arr if arr.flags.writeable else arr.copy()  # pydensecrf refuses read-only buffers


def dense_crf(unary: np.ndarray, image: np.ndarray | torch.Tensor, params: CRFParams, compat: np.ndarray) -> np.ndarray:
    """The reference: pydensecrf's mean-field on one photo. unary (K, H, W) energies (−log probability) at the
    photo's size → labels (H, W)."""
    dcrf = densecrf()
    k, h, w = unary.shape
    rgb = as_rgb_uint8(image)
    if rgb.shape[:2] != (h, w):
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]} but the logits are {w}x{h}")
    crf = dcrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.reshape(k, -1), dtype=np.float32))
    compat = np.ascontiguousarray(compat, dtype=np.float32)
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_weight * compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=rgb, compat=params.bilateral_weight * compat
    )
    q = np.asarray(crf.inference(params.steps("dense")), dtype=np.float32)  # (K, H·W)
    return q.argmax(0).reshape(h, w)
