"""Overlays: the photo with its coloured label map blended over it and a legend of the garments found."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from parsing.labels import NON_GARMENTS

UNSURE = 0.5  # below it a name is more often wrong than right (bench/results/garments.md): overlays say so


def colourise(labels: np.ndarray, palette: list[list[int]] | np.ndarray) -> np.ndarray:
    """Label map (H, W) → RGB (H, W, 3) uint8 in the palette's colours. A uint8 map goes through OpenCV's
    table lookup: 6× faster than numpy's fancy indexing (0.58 against 3.5 ms on an 831 × 550 map, measured)."""
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if labels.dtype != np.uint8 or len(colours) > 256:
        return colours[labels]
    table = np.zeros((1, 256, 3), np.uint8)
    table[0, : len(colours)] = colours
    return cv2.LUT(cv2.merge([labels] * 3), table)


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
    hidden = np.array([n in hide for n in names] + [False] * (len(palette) - len(names)), dtype=np.uint8)
    mixed = cv2.addWeighted(image, 1 - alpha, colourise(labels, palette), alpha, 0.0)  # uint8, rounded: 4× numpy's
    cv2.copyTo(image, colourise(labels, hidden[:, None].repeat(3, 1))[..., 0], mixed)  # hidden labels: the photo
    photo = Image.fromarray(mixed)

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


def unsure_notes(sure: dict[int, dict[str, object]], names: list[str], below: float = UNSURE) -> dict[int, str]:
    """Label id → "(alternative?)" for the garments named below ``below`` confidence: the overlay legend's hint."""
    return {
        label: f"({fields['alternative']}?)"
        for label, fields in sure.items()
        if fields["confidence"] < below
        and names[label] not in NON_GARMENTS
        and fields["alternative"] not in ("null", "background")
    }
