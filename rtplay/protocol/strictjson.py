"""Strict JSON in and out, shared by every parser of client input (pure: no I/O).

:func:`loads_strict` accepts RFC 8259 JSON only: no ``NaN``/``Infinity`` (not JSON, RFC 8259
§6, and browsers' ``JSON.parse`` rejects them), no fraction or exponent that overflows a
double (``1e400``), no integer longer than :data:`MAX_INT_DIGITS` (past Python's own digit
limit ``int()`` raises a bare ``ValueError``; integers shorter than that stay exact, as JSON
allows, and a caller that needs a float converts with :func:`as_float`), and bounded nesting,
checked before the parser recurses. Any input either parses or raises
:class:`JsonError`, never anything else. :func:`dumps_strict` refuses to emit a non-finite
number instead of sending invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Deepest JSON nesting accepted from a client. Control bodies are flat objects (depth 1) and
#: pings too; 32 leaves room for any sane extension while staying far below Python's
#: recursion limit (~1000), which a 30,000-deep body would otherwise blow.
MAX_JSON_DEPTH = 32

#: Most digits of a JSON integer: Python's default ``int()`` limit
#: (``sys.int_info.default_max_str_digits``), past which the conversion raises a bare
#: ``ValueError``, and far beyond any figure (a double tops out at 309 digits).
MAX_INT_DIGITS = 4300


class JsonError(ValueError):
    """Input that is not strict JSON (says why)."""


class JsonTooDeep(JsonError):
    """JSON nested deeper than allowed."""


def nesting_depth(text: str, limit: int) -> int:
    """The deepest ``[``/``{`` nesting of ``text`` (strings skipped), stopping past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def within_depth(text: str, limit: int) -> bool:
    """True when ``text`` nests ``[``/``{`` at most ``limit`` deep. Exact, and cheap for short
    texts: the depth never exceeds the number of opening brackets, which ``str.count`` finds
    in C, so only a text with more than ``limit`` of them is walked character by character."""
    if text.count("[") + text.count("{") <= limit:
        return True
    return nesting_depth(text, limit) <= limit


def _reject_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """A JSON number's text as a float; :class:`JsonError` when it overflows to infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"number {text[:40]} is out of range")
    return value


def bounded_int(text: str) -> int:
    """A JSON integer's text as an int; :class:`JsonError` past :data:`MAX_INT_DIGITS` digits."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonError(f"integer of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def as_float(value: float, what: str = "number") -> float:
    """``value`` as a finite float; :class:`JsonError` for an integer too large for a double."""
    try:
        result = float(value)
    except OverflowError:
        raise JsonError(f"{what} is out of range") from None
    if not math.isfinite(result):
        raise JsonError(f"{what} is out of range")
    return result


_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=finite_float, parse_int=bounded_int)
"""Made once: ``json.loads`` with hooks builds a new decoder (and scanner) on every call."""


def loads_strict(data: str | bytes | bytearray, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``data`` as RFC 8259 JSON with finite numbers and at most ``max_depth`` nesting."""
    try:
        text = bytes(data).decode() if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError:
        raise JsonError("body is not UTF-8") from None
    if not within_depth(text, max_depth):
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    if text.startswith("\ufeff"):  # what json.loads refuses before decoding
        raise JsonError("body is not JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) at 0")
    try:
        return _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonError(f"body is not JSON: {exc.msg} at {exc.pos}") from None


def dumps_strict(obj: Any) -> str:
    """JSON text of ``obj``; a non-finite number is a bug and raises instead of going out."""
    return json.dumps(obj, allow_nan=False)
