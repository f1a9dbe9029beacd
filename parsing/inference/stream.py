"""A stream's machinery: photos grouped into network batches, and the one thread their networks run on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


class ReadsPlacement:
    """Where a stream's first reads of the logits (argmax, sampled softmax: ~15-20 ms a photo) run: on the network
    thread while the decoding thread does not wait for the network, else on the decoding thread. Which thread is
    the bound depends on the CPU: on an Intel Xeon with AMX (bf16 network) the decoding was, and the reads moved to
    the network thread cut 96 to 89 ms a photo; on an AMD EPYC (int8 decoder) the network is, and the reads on the
    decoding thread cut the command over 90 photos by ~0.5 s. Re-decided after every batch."""

    WAITED = 0.001  # seconds of waiting that count as the decoding waiting for the network

    def __init__(self) -> None:
        self.on_network = True

    def result(self, ahead: Future) -> Any:
        """``ahead.result()``, the wait timed: the next batch's reads go where the time is."""
        start = time.perf_counter()
        out = ahead.result()
        self.on_network = time.perf_counter() - start < self.WAITED
        return out


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
