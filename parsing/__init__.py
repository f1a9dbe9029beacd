"""parsing: clothing parsing with an outfit encoder and a dense CRF (Tangseng, Wu, Yamaguchi 2017)."""

import os

from parsing._torchvision import ensure_torchvision_importable

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check at import
ensure_torchvision_importable()  # before anything imports timm / smp

__version__ = "0.1.0"
