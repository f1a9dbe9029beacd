"""Process settings for the long-running commands (``parsing-predict``, ``parsing index``, ``parsing serve``, the Ray
actors): they parse photo after photo, each needing tens of MB of short-lived arrays.

* **glibc's allocator keeps freed memory** (``mallopt``): by default every array above a few MB is a fresh ``mmap``
  that the kernel zero-fills page by page and unmaps on free — 1.7 M page faults over 90 CCP photos (18 k a photo,
  3.1 s of system time). Serving allocations below 64 MiB from the heap and keeping up to 128 MiB of freed heap
  (16 MiB grown at a time): 0.3 M faults, 1.2 s of system time, the run 4–6 % faster, peak memory +4 % (measured with
  ``perf stat -e page-faults`` on ``parsing-predict``; the numbers in ``docs/benchmarks.md``). Intel's PyTorch CPU
  guide gets the same by swapping in jemalloc or tcmalloc; these settings need no extra library. Not applied where
  the user set any ``MALLOC_*`` variable (theirs win), on other C libraries, or with ``PARSING_MALLOC=default``.
* **The start-up objects leave the garbage collector's scans** (``gc.freeze``): the imported modules (torch,
  OpenVINO, the model) are hundreds of thousands of objects that every full collection walked again.

Library users (``Parser``) get none of this: a library does not change its host process.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters (malloc.h)
MIB = 1 << 20
SETTINGS = {M_MMAP_THRESHOLD: 64 * MIB, M_TRIM_THRESHOLD: 128 * MIB, M_TOP_PAD: 16 * MIB}


def keep_freed_memory() -> bool:
    """Apply ``SETTINGS`` to glibc's allocator; whether they were applied."""
    if not sys.platform.startswith("linux") or os.environ.get("PARSING_MALLOC") == "default":
        return False
    if any(name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's C library
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())


def tune_process() -> None:
    """Once the model is loaded: the allocator settings and the start-up objects out of the collector's way."""
    keep_freed_memory()
    gc.collect()
    gc.freeze()
