"""Figures and limits of this process on both sides: resident memory (crowd workers, the
server) and the open-files limit their connections need."""

from __future__ import annotations

import resource


def resident_kb() -> float:
    """This process's resident memory now (Linux /proc; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 1024
    except (OSError, IndexError, ValueError):
        return 0.0


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
