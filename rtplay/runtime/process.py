"""Figures of this process both sides report: resident memory (crowd workers, the server)."""

from __future__ import annotations

import resource


def resident_kb() -> float:
    """This process's resident memory now (Linux /proc; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 1024
    except (OSError, IndexError, ValueError):
        return 0.0
