"""A stream's machinery: photos grouped into network batches, and the one thread their networks run on."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from parsing.inference.photo import ParseError


class NetworkThread:
    """One thread for the network, shared by a parser and its ``replace``d variants (created on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="parsing-network")
            return self._pool


def batches(items: Iterable[tuple[Any, Any]], size: int) -> Iterator[list[tuple[Any, Any]]]:
    """(photo, garments) items → lists of up to ``size`` photos in order; a ``ParseError`` item is a list of its own."""
    batch: list[tuple[Any, Any]] = []
    for item in items:
        if isinstance(item[0], ParseError):
            if batch:
                yield batch
                batch = []
            yield [item]
            continue
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
