"""Overlays: the photo with its coloured label map blended over it and a legend of the garments found."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def colourise(labels: np.ndarray, palette: list[list[int]] | np.ndarray) -> np.ndarray:
    """Label map (H, W) → RGB (H, W, 3) uint8 in the palette's colours."""
    return np.asarray(palette, dtype=np.uint8)[labels]


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    palette: list[list[int]] | np.ndarray,
    names: list[str],
    alpha: float = 0.55,
    hide: tuple[str, ...] = ("null", "background"),
    min_share: float = 0.001,
    notes: dict[int, str] | None = None,
) -> Image.Image:
    """Photo (H, W, 3) uint8 + label map (H, W) → a PIL image: the blend, and to its right a legend of the labels
    cover at least ``min_share`` (largest first; ``hide`` left uncoloured and out of the legend); ``notes``: label
    id → a text after its legend entry (``parsing-predict``: the likelier alternative of an unsure name)."""
    notes = notes or {}
    colours = colourise(labels, palette).astype(np.float32)
    shown = ~np.isin(labels, [i for i, n in enumerate(names) if n in hide])
    blend = image.astype(np.float32)
    blend[shown] = (1 - alpha) * blend[shown] + alpha * colours[shown]
    photo = Image.fromarray(np.clip(blend + 0.5, 0, 255).astype(np.uint8))

    counts = np.bincount(labels.ravel(), minlength=len(names))
    present = [i for i in np.argsort(-counts) if counts[i] >= min_share * labels.size and names[i] not in hide]
    font = ImageFont.load_default()
    row, swatch, pad = 16, 12, 6
    texts = {
        i: f"{names[i]}  {100.0 * counts[i] / max(labels.size, 1):.1f}%  {notes.get(i, '')}".rstrip() for i in present
    }
    width = 8 + swatch + pad + max([int(font.getlength(t)) for t in texts.values()] + [60]) + 8
    canvas = Image.new("RGB", (photo.width + width, max(photo.height, pad + row * len(present))), "white")
    canvas.paste(photo, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for n, i in enumerate(present):
        x, y = photo.width + 8, pad + n * row
        draw.rectangle((x, y, x + swatch, y + swatch), fill=tuple(int(c) for c in palette[i]), outline="black")
        draw.text((x + swatch + pad, y), texts[i], fill="black", font=font)
    return canvas
