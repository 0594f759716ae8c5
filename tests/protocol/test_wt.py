"""The WebTransport wire format: QUIC varints and the session-close capsule, against aioquic's
own encoder (the peer both ends are built on)."""

from __future__ import annotations

from aioquic.buffer import encode_uint_var
from hypothesis import given
from hypothesis import strategies as st

from rtplay.protocol.wt import close_capsule, decode_varint, encode_varint, parse_close_capsule


@given(st.integers(min_value=0, max_value=(1 << 62) - 1))
def test_varints_match_aioquics_and_read_back(value: int) -> None:
    raw = encode_varint(value)
    assert raw == encode_uint_var(value)
    assert decode_varint(b"\x00" + raw + b"tail", 1) == (value, 1 + len(raw))
    assert decode_varint(raw[:-1], 0) is None or len(raw) == 1


@given(st.integers(min_value=0, max_value=(1 << 32) - 1), st.text(max_size=50), st.binary(max_size=20))
def test_a_close_capsule_reads_back_and_a_cut_one_is_incomplete(code: int, reason: str, noise: bytes) -> None:
    capsule = close_capsule(code, reason)
    expected = f"{reason} (code {code})" if reason else f"code {code}"
    assert parse_close_capsule(capsule) == expected
    assert parse_close_capsule(capsule[:-1]) is None
    parse_close_capsule(noise)  # any bytes: a reason or None, never an exception
