"""``Box``: a rectangle on a photo or a label map, (top, left, bottom, right) with bottom/right exclusive."""

from __future__ import annotations

Box = tuple[int, int, int, int]


def scale_box(box: Box, source: tuple[int, int], target: tuple[int, int]) -> Box:
    """A box on a (h, w) photo → the same box on the photo at ``target`` size (H, W)."""
    sy, sx = target[0] / source[0], target[1] / source[1]
    top, left, bottom, right = box
    return round(top * sy), round(left * sx), round(bottom * sy), round(right * sx)
