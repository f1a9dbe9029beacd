"""The labelling queue of ``parsing serve --photos DIR --dataset OUT``: the folder's photos, the most useful first.

Each photo is scored in the background, when the server is idle, by how unsure the network is about it (the mean
of 1 − its top probability over the person's pixels: ``Parse.uncertainty``); the queue lists the unsaved photos
most unsure first (unscored ones after, by name), then those already saved. A photo counts as saved when the
dataset holds one with the same bytes (``sources.json``), so a queue resumes where it stopped, whatever the names.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from parsing.data.io import list_images
from parsing.serve.dataset import TrainingFolder, digest

IDLE = 1.5  # seconds without a request before the next photo is scored


class PhotoQueue:
    """The photos of one folder (recursively), their scores and whether each is saved."""

    def __init__(self, folder: Path, dataset: TrainingFolder | None) -> None:
        self.root = Path(folder).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"--photos {folder}: not a folder")
        self.names = [p.relative_to(self.root).as_posix() for p in list_images(self.root, True)]
        if not self.names:
            raise FileNotFoundError(f"--photos {folder}: no photos in it (jpg, png, webp, …)")
        self.dataset = dataset
        self.scores: dict[str, float | None] = {}  # None: could not be parsed
        self._digests: dict[str, tuple[float, str]] = {}  # name → (mtime, sha1)
        self.last_request = time.monotonic()
        self._stop = threading.Event()

    def path(self, name: str) -> Path:
        """A listed photo's file; KeyError for any other name (nothing else is served)."""
        if name not in set(self.names):
            raise KeyError(name)
        return self.root / name

    def done(self, name: str) -> bool:
        if self.dataset is None:
            return False
        path = self.root / name
        mtime = path.stat().st_mtime
        known = self._digests.get(name)
        if known is None or known[0] != mtime:
            known = (mtime, digest(path.read_bytes()))
            self._digests[name] = known
        return self.dataset.saved(known[1]) is not None

    def listing(self) -> dict[str, Any]:
        """``photos`` in queue order (name, done, uncertainty), and the counts."""
        rows = [{"name": n, "done": self.done(n), "uncertainty": self.scores.get(n)} for n in self.names]

        def order(row: dict[str, Any]) -> tuple:
            score = row["uncertainty"]
            return (row["done"], score is None, -(score or 0.0), row["name"])

        rows.sort(key=order)
        done = sum(r["done"] for r in rows)
        scored = sum(n in self.scores for n in self.names)
        return {"photos": rows, "done": done, "remaining": len(rows) - done, "scored": scored}

    def next_unscored(self) -> str | None:
        return next((n for n in self.names if n not in self.scores and not self.done(n)), None)

    def score(self, name: str, parser: Any) -> None:
        """Parse one photo (``parser``: an editable ``Parser``) and keep its uncertainty."""
        result = parser(self.root / name)
        self.scores[name] = round(result.uncertainty(), 4) if result.ok else None

    def run(self, parser: Any, submit: Any) -> None:
        """Score every photo, one at a time through ``submit`` (the service's parse thread), when idle."""
        while not self._stop.is_set():
            if time.monotonic() - self.last_request < IDLE:
                self._stop.wait(0.5)
                continue
            name = self.next_unscored()
            if name is None:
                return
            try:
                submit(self.score, name, parser).result()
            except Exception:  # noqa: BLE001 — a photo that cannot be scored is listed unscored
                self.scores[name] = None

    def start(self, parser: Any, submit: Any) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(parser, submit), name="queue-scores", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
