"""A ``parsing-predict`` output folder that several processes may write at once (``--shard``, array jobs, two
runs started by mistake) without duplicating or losing a photo.

* **claims**: before parsing a photo a process takes a non-blocking ``flock`` on ``.claims/<key>.lock``; a photo
  claimed by another process is left to it. The kernel drops the lock when its process dies, so a killed run's
  photos are free again at once (no stale claims to expire). After claiming, the process reads the summary lines
  written since it last looked and skips the photo if another process has finished it meanwhile.
* **logs**: ``summary.jsonl`` and ``errors.jsonl`` lines are appended under an exclusive ``flock`` on
  ``.summary.lock``, each in one ``write``, and the rewrite that drops redone photos' old lines takes the same lock.

Needs a filesystem with working ``flock`` (local disks; NFS v4). Each photo keeps one summary line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from parsing.atomic import atomic_write
from parsing.outputs.files import output_paths


class OutputFolder:
    """The output folder: what is done, who is parsing what, and the logs ``summary.jsonl`` and ``errors.jsonl``."""

    def __init__(self, root: Path, probs: bool = False, cutouts: bool = False) -> None:
        self.root, self.probs, self.cutouts = root, probs, cutouts
        self.summary, self.errors = root / "summary.jsonl", root / "errors.jsonl"
        root.mkdir(parents=True, exist_ok=True)
        self._offset, self._inode = 0, None
        self.finished: set[str] = set()  # files whose summary line appeared since ``refresh`` began reading

    def done(self, key: Path) -> bool:
        """Whether every output file of ``key`` exists."""
        return all(p.exists() for p in output_paths(self.root, key, self.probs, self.cutouts).values())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The folder's log lock (exclusive, blocking)."""
        with open(self.root / ".summary.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def summarised(self) -> dict[str, str]:
        """file → its summary line, from earlier runs."""
        lines: dict[str, str] = {}
        if self.summary.is_file():
            for line in self.summary.read_text().splitlines():
                try:
                    lines[json.loads(line)["file"]] = line
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut by a killed run
        return lines

    def forget(self, files: set[str]) -> None:
        """Drop these files' earlier summary lines (they are being redone: --overwrite, or left half done)."""
        with self.locked():
            kept = [line for f, line in self.summarised().items() if f not in files]
            atomic_write(self.summary, lambda tmp: tmp.write_text("".join(f"{line}\n" for line in kept)))

    def append(self, log: Path, record: dict[str, Any]) -> None:
        """One JSON line, appended in one write under the folder's lock."""
        data = (json.dumps(record) + "\n").encode()
        with self.locked():
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def refresh(self) -> set[str]:
        """Read the summary lines written since the last call (by any process) into ``finished``."""
        if not self.summary.is_file():
            return self.finished
        stat = self.summary.stat()
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # rewritten by ``forget``: read it all
            self._inode, self._offset = stat.st_ino, 0
        with open(self.summary, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1  # a line being written is read next time
        for line in chunk[:end].splitlines():
            try:
                self.finished.add(json.loads(line)["file"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        self._offset += end
        return self.finished

    def claim(self, key: Path) -> IO[str] | None:
        """A held claim on ``key`` (close it with ``release``), or None when another process holds it."""
        path = self.root / ".claims" / Path(key).parent / f"{Path(key).name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a")  # noqa: SIM115  (held across the photo's parse, closed by release)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return None
        return fh

    def release(self, claim: IO[str], finished: bool) -> None:
        """Let go of a claim; a finished photo's lock file is removed (its summary line says it is done)."""
        if finished:
            Path(claim.name).unlink(missing_ok=True)
        claim.close()
