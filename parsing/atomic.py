"""Writing a file atomically: under a temporary name beside it, then renamed into place, so a killed run never
leaves a half-written file under the final name (outputs, caches, datasets all write this way)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(target: Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp_path)`` then rename ``tmp_path`` to ``target``; the temporary file is removed if ``write``
    fails. ``tmp_path`` keeps ``target``'s suffix (libraries that pick a format by suffix still work)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
