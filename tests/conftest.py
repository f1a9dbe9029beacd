import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # hub look-ups fail at once instead of retrying
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# The onnxruntime backend's exported networks (the default on a CPU) go to a temporary folder, never ~/.cache;
# subprocesses inherit it. One folder for the session: a checkpoint is exported once.
os.environ.setdefault("PARSING_CACHE", tempfile.mkdtemp(prefix="parsing-test-cache-"))

ROOT = Path(__file__).resolve().parents[1]
CCP_ROOT = Path(os.environ.get("PARSING_CCP_ROOT", ROOT.parent / "shared" / "data" / "ccp"))
CCP_IDS = ["0001", "0002", "0003", "0004", "0005", "0006"]


@pytest.fixture(scope="session")
def ccp_root() -> Path:
    if not (CCP_ROOT / "photos").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CCP data not found at {CCP_ROOT}")
        pytest.skip(f"CCP data not found at {CCP_ROOT} (set PARSING_CCP_ROOT)")
    return CCP_ROOT


def write_ccp_root(root: Path, masks: dict[str, np.ndarray], photo_sizes: dict[str, tuple[int, int]] | None = None):
    """A CCP-layout folder with synthetic photos and ``groundtruth`` .mat masks."""
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem, mask in masks.items():
        h, w = (photo_sizes or {}).get(stem, mask.shape)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "photos" / f"{stem}.jpg")
        scipy.io.savemat(root / "annotations" / "pixel-level" / f"{stem}.mat", {"groundtruth": mask})
    return root


def write_folder_root(root: Path, masks: dict[str, np.ndarray], suffix: str = ".png"):
    """An images/ + masks/ folder dataset whose photo colour encodes the label (for alignment checks)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for stem, mask in masks.items():
        tone = mask.astype(np.int64) * 40 % 256
        image = np.stack([tone, 255 - tone, np.full_like(tone, 128)], -1).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"{stem}{suffix}")
        Image.fromarray(mask.astype(np.uint8), mode="L").save(root / "masks" / f"{stem}.png")
    return root


def blocks(h: int, w: int, labels: list[int], seed: int = 0) -> np.ndarray:
    """A piecewise-constant label map of big rectangles."""
    rng = np.random.default_rng(seed)
    mask = np.full((h, w), labels[0], np.uint8)
    for label in labels[1:]:
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        mask[y : y + h // 3, x : x + w // 3] = label
    return mask
