"""Shared by the benchmark scripts (run as ``python bench/<name>.py``, which puts this folder on the path)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository


def shown(path: str | Path) -> str:
    """A path as recorded in results: relative to the repository when inside it, else its file name, so committed
    results name no machine's folders."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name
