"""Colours a search names: a CSS colour name or ``#hex`` → CIELAB, and distances between Lab colours.

Lab here is what ``parsing.outputs.embedding`` stores for each garment (OpenCV's sRGB → CIELAB, D65: L* 0–100,
a*, b* about −128–127).
"""

from __future__ import annotations

import re

import cv2
import numpy as np

COLOUR_WORDS = {"grey": "gray", "navy blue": "navy", "dark grey": "darkgray", "light grey": "lightgray"}


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(…, 3) uint8 sRGB → (…, 3) float32 CIELAB."""
    rgb = np.asarray(rgb, np.uint8)
    lab = cv2.cvtColor(rgb.reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(rgb.shape).astype(np.float32)
    return lab * np.array([100 / 255, 1, 1], np.float32) - np.array([0, 128, 128], np.float32)


def colour_lab(colour: str) -> np.ndarray:
    """``"red"``, ``"navy"``, ``"#ff8800"`` or ``"f80"`` → its CIELAB (3,); a ValueError naming it otherwise."""
    text = str(colour).strip().lower()
    text = COLOUR_WORDS.get(text, text)
    hexa = text.lstrip("#")
    if re.fullmatch(r"[0-9a-f]{3}|[0-9a-f]{6}", hexa) and (text.startswith("#") or not text.isalpha()):
        hexa = "".join(c * 2 for c in hexa) if len(hexa) == 3 else hexa
        rgb = [int(hexa[i : i + 2], 16) for i in (0, 2, 4)]
    else:
        import webcolors

        try:
            rgb = list(webcolors.name_to_rgb(text.replace(" ", "")))
        except ValueError:
            raise ValueError(f"colour {colour!r}: give a CSS colour name (red, navy, beige …) or #rrggbb") from None
    return rgb_to_lab(np.array(rgb, np.uint8))


def delta_e(labs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """CIE76 distances (n,) between Lab colours (n, 3) and one (3,): what ranks a colour search."""
    return np.linalg.norm(np.asarray(labs, np.float32) - np.asarray(target, np.float32), axis=-1)
