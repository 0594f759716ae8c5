"""Figures and limits of this process on both sides: resident memory (crowd workers, the
server), the open-files limit their connections need, and freed heap handed back."""

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


def raise_open_files_limit(needed: int | None = None) -> int:
    """Raise this process's soft open-files limit (RLIMIT_NOFILE) towards its hard one.

    Every connection is a file descriptor on both sides: a server holding a crowd's 10,000
    sockets, and each crowd worker holding its share, need a soft limit above that, while
    many systems start processes at a soft 1,024 under a much higher hard limit. Raising
    the soft limit up to the hard one needs no privilege (getrlimit(2)). With ``needed``
    the soft limit is raised only that far; without, all the way. Returns the soft limit now
    (``RLIM_INFINITY`` stays as it is), which may be below ``needed``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft
    target = hard if needed is None else needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target != resource.RLIM_INFINITY and target <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # an unlimited hard limit the kernel caps lower (macOS's OPEN_MAX)
        return soft
    return target
