"""Figures of this process both sides report: resident memory (crowd workers, the server)."""

from __future__ import annotations

import ctypes
import resource
from collections.abc import Callable


def resident_kb() -> float:
    """This process's resident memory now (Linux /proc; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 1024
    except (OSError, IndexError, ValueError):
        return 0.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)  # glibc only (musl and others have none)


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim(0)``); False
    where the C library cannot.

    Python returns an arena of small objects once it is empty, but big buffers (bytearrays,
    deques' blocks) come from glibc's heap, which keeps what is freed in its middle: after a
    burst of connections has come and gone, resident memory stays at the burst's peak until
    the heap is trimmed. A trim walks the heap (milliseconds): call it after such a burst,
    not per connection.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
