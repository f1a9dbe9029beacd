"""The studio's edit sessions: the editable parses the service keeps between ``POST /edit`` requests.

``POST /parse`` with ``edit=true`` opens one (an id in the answer); each ``/edit`` applies one ``Parse`` edit —
``click``, ``paint``, ``set`` (the whole mask, e.g. an undo) or ``preview`` (what a click would take, nothing
changed) — and answers the new mask. The newest ``EDIT_SESSIONS`` are kept (least recently used dropped first);
each holds the photo as parsed, its mask twice (photo and working size) and ~4.5 MB of edit grid (``Parse.edit``).
"""

from __future__ import annotations

import io
import secrets
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from parsing.outputs.parse import Parse

EDIT_SESSIONS = 8  # photos open for editing at once, per server process
OPS = ("click", "paint", "set", "preview")


class EditError(ValueError):
    """A bad edit request: ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_mask(data: bytes, size: tuple[int, int] | None, what: str = "mask") -> np.ndarray:
    """A PNG of label ids (palette or greyscale) → (H, W) uint8; ``size`` (H, W) it must have, if given."""
    if not data:
        raise EditError(400, f"empty {what}: send a PNG of label ids in the multipart field '{what}'")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("P", "L", "1", "I", "I;16"):
                raise EditError(422, f"{what} is a {im.mode} image: send label ids (a palette or greyscale PNG)")
            array = np.asarray(im)
    except UnidentifiedImageError:
        raise EditError(415, f"{what} is not an image") from None
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, EditError):
            raise
        raise EditError(400, f"unreadable {what} ({err})") from None
    if size is not None and array.shape != tuple(size):
        h, w = array.shape[:2]
        raise EditError(422, f"{what} of {w}×{h}: the photo is {size[1]}×{size[0]}")
    if array.max(initial=0) > 255:
        raise EditError(422, f"{what} holds label id {int(array.max())}")
    return array.astype(np.uint8)


def read_stroke(data: bytes) -> np.ndarray:
    """A stroke as a PNG (any mode: its alpha where it has one, else its grey level) → (H, W) bool, non-zero."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            plane = im.getchannel("A") if "A" in im.getbands() else im.convert("L")
            return np.asarray(plane) > 0
    except UnidentifiedImageError:
        raise EditError(415, "mask is not an image") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise EditError(400, f"unreadable mask ({err})") from None


class EditSessions:
    """Open editable parses by id, the newest ``limit`` kept."""

    def __init__(self, limit: int = EDIT_SESSIONS) -> None:
        self.limit = limit
        self._parses: OrderedDict[str, Parse] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._parses)

    def open(self, parse: Parse) -> str:
        key = secrets.token_urlsafe(9)
        with self._lock:
            self._parses[key] = parse
            while len(self._parses) > self.limit:
                self._parses.popitem(last=False)
        return key

    def get(self, key: str) -> Parse:
        with self._lock:
            if key not in self._parses:
                raise EditError(404, f"edit session {key!r} is closed (or never was): parse the photo again")
            self._parses.move_to_end(key)
            return self._parses[key]

    def apply(self, key: str, op: str, form: dict[str, Any], mask: bytes | None) -> tuple[Parse, np.ndarray | None]:
        """One edit → (the session's parse after it, the pixels a ``preview`` would change or None)."""
        if op not in OPS:
            raise EditError(422, f"op {op!r}: choose one of {', '.join(OPS)}")
        parse = self.get(key)
        try:
            if op in ("click", "preview"):
                x, y, label = _number(form, "x"), _number(form, "y"), _label(form)
                if op == "preview":
                    return parse, parse.click_region(x, y, label)
                edited = parse.click(x, y, label)
            elif op == "paint":
                if mask is None:
                    raise EditError(400, "paint needs a stroke: a PNG in the field 'mask' (opaque or non-zero = paint)")
                edited = parse.paint(read_stroke(mask), _label(form))
            else:
                if mask is None:
                    raise EditError(400, "set needs the mask: a PNG of label ids in the multipart field 'mask'")
                edited = parse.with_labels(read_mask(mask, parse.labels.shape))
                edited.clicks = ()  # an undo or a mask of the user's own: earlier clicks no longer hold
        except EditError:
            raise
        except ValueError as err:
            raise EditError(422, str(err)) from None
        with self._lock:
            if key in self._parses:
                self._parses[key] = edited
        return edited, None


def _number(form: dict[str, Any], name: str) -> float:
    try:
        return float(form[name])
    except KeyError:
        raise EditError(422, f"give {name}: a pixel of the photo") from None
    except ValueError:
        raise EditError(422, f"{name} {form[name]!r}: give a number") from None


def _label(form: dict[str, Any]) -> str | int:
    label = str(form.get("label", "")).strip()
    if not label:
        raise EditError(422, "give label: a label name (or id) of the parse")
    return int(label) if label.isdigit() else label
