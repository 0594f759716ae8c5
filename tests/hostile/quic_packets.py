"""Bogus QUIC packets an attacker sends, for the hostile tests (``benchmarks/hostile.py``, a
stand-alone script its attacker processes run, keeps its own copy so it imports nothing of
the tests)."""

from __future__ import annotations

import os

INITIAL_BYTES = 1200
"""RFC 9000 §14.1: a client's Initial is padded to at least 1200 bytes."""


def initial_packet() -> bytes:
    """A 1200-byte QUIC v1 Initial (RFC 9000 §17.2.2) with random connection ids and garbage."""
    head = bytes([0xC3]) + (1).to_bytes(4, "big") + bytes([8]) + os.urandom(8) + bytes([8]) + os.urandom(8) + b"\x00"
    rest = INITIAL_BYTES - len(head) - 2
    return head + (0x4000 | rest).to_bytes(2, "big") + os.urandom(rest)
