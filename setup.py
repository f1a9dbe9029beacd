"""The install requirements that keep the user's torch (the rest of the metadata is in setup.cfg).

smp and timm need torchvision, and every torchvision release needs one torch release: left alone, pip takes the
newest torchvision and replaces an installed CPU torch with a newer CUDA build (6 GB). So, when torch is already
installed where this package goes, torchvision is pinned to the release made for that torch (0.N+15 for 2.N):
pip then keeps the user's torch. Without an installed torch, pip chooses both, as usual.
"""

import re
import subprocess
import sys

from setuptools import setup

RUNTIME = [
    "torch>=2.1",
    "segmentation-models-pytorch>=0.6",
    "albumentations>=2.0",
    "numpy",
    "scipy",
    "scikit-image",
    "pillow",
    "rich",
    "colour-science",
    "webcolors",
    "pyyaml",
]


def installed_torch() -> str | None:
    """The torch version of the environment being installed into. pip builds in an isolated environment, so ask the
    target interpreter itself in isolated mode (-I), which sees only its own site-packages."""
    code = "import importlib.metadata as m; print(m.version('torch'))"
    try:
        out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def torchvision_for(torch_version: str | None) -> list[str]:
    """``torchvision==0.(N+15).*`` for an installed torch 2.N, else nothing."""
    match = re.match(r"2\.(\d+)\.", torch_version or "")
    return [f"torchvision==0.{int(match.group(1)) + 15}.*"] if match else []


setup(install_requires=RUNTIME + torchvision_for(installed_torch()))
