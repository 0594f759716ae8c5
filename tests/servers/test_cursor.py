"""The resume cursor grammar (``since=N``, ``Last-Event-ID``) every endpoint shares."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.core.cursor import MAX_CURSOR_DIGITS, parse_cursor


@given(st.integers(min_value=0, max_value=10**MAX_CURSOR_DIGITS - 1))
def test_every_non_negative_integer_of_up_to_18_digits_is_read_back(n: int) -> None:
    assert parse_cursor(str(n)) == n


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=5))
def test_leading_zeros_do_not_change_the_cursor(n: int, zeros: int) -> None:
    assert parse_cursor("0" * zeros + str(n)) == n


@pytest.mark.parametrize("raw", [None, ""])
def test_no_cursor_means_from_the_start(raw: str | None) -> None:
    assert parse_cursor(raw) == 0


@pytest.mark.parametrize(
    "raw",
    ["-1", "+5", " 5", "5 ", "1.0", "1e3", "0x10", "abc", "١٢", "²", "9" * (MAX_CURSOR_DIGITS + 1)],
)
def test_anything_else_is_refused_with_the_name_of_the_parameter(raw: str) -> None:
    """``int()`` alone would take ``+5``, `` 5``, Arabic-Indic digits; ``isdigit`` alone takes ``²``."""
    with pytest.raises(ValueError, match="^Last-Event-ID must be a non-negative integer"):
        parse_cursor(raw, "Last-Event-ID")


@given(st.text(min_size=1))
def test_any_text_parses_to_its_own_digits_or_raises_value_error(raw: str) -> None:
    try:
        value = parse_cursor(raw)
    except ValueError as exc:
        assert str(exc).startswith("since must be")
        assert str(exc).endswith(repr(raw[:40]))  # the echo of a long input is cut
        return
    assert str(value) == raw.lstrip("0") or (value == 0 and set(raw) == {"0"})
    assert raw.isascii() and len(raw) <= MAX_CURSOR_DIGITS
