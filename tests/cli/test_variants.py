"""Scenario variants and comparisons (``[[variants]]``, ``[compare]``): what a scenario author
writes is read as meant, anything else is refused with where and why, and a comparison holds
exactly when its inequality does."""

from __future__ import annotations

import operator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.cli.variants import (
    MAX_VARIANTS,
    Comparison,
    VariantError,
    parse_comparisons,
    parse_variants,
    value_at,
)
from rtplay.model.retry_spec import parse_policy

TRANSPORTS = ["sse", "ws"]
names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,11}", fullmatch=True)
factors = st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False, allow_infinity=False)
ops = st.sampled_from(["<=", ">=", "<", ">"])
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def test_variants_carry_their_policies_per_transport() -> None:
    variants = parse_variants(
        "s.toml",
        [
            {"name": "no-jitter", "retry": {"ws": "exponential:none"}},
            {"name": "full-jitter", "retry": {"ws": "exponential:full", "sse": "fixed:2"}},
            {"name": "plain"},
        ],
        TRANSPORTS,
    )
    assert [v.name for v in variants] == ["no-jitter", "full-jitter", "plain"]
    assert variants[0].retry == {"ws": parse_policy("exponential:none")}
    assert variants[1].retry["sse"] == parse_policy("fixed:2")
    assert variants[2].retry == {}


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ({"name": "a"}, "must be a list"),
        ([{"name": f"v{i}"} for i in range(MAX_VARIANTS + 1)], f"at most {MAX_VARIANTS}"),
        (["a"], "needs a name"),
        ([{"retry": {}}], "needs a name"),
        ([{"name": 3}], "needs a name"),
        ([{"name": "a", "rate": 5}], "needs a name"),
        ([{"name": "a", "retry": {"rtc": "immediate"}}], "variant a: retry must map transports the scenario runs"),
        ([{"name": "a", "retry": "immediate"}], "variant a: retry must map"),
        ([{"name": "a", "retry": {"ws": "sometimes"}}], "variant a: unknown retry policy 'sometimes'"),
        ([{"name": "a"}, {"name": "a"}], "names must differ"),
    ],
)
def test_a_bad_variants_table_is_refused_naming_the_file_and_the_fault(table: Any, reason: str) -> None:
    with pytest.raises(VariantError, match="^s.toml: ") as info:
        parse_variants("s.toml", table, TRANSPORTS)
    assert reason in str(info.value)


@given(names, ops, factors, names)
def test_any_well_formed_comparison_is_read_back_as_written(left: str, op: str, factor: Any, right: str) -> None:
    text = f"{left} {op} {factor} * {right}"
    (parsed,) = parse_comparisons("s.toml", {"ws.crowd.peak": text}, [left, right])
    assert parsed == Comparison("ws.crowd.peak", left, op, float(factor), right)
    # and its description is the same inequality again
    assert str(parsed) == f"ws.crowd.peak: {left} {op} {float(factor):g} * {right}"


@given(names, ops, factors, names)
def test_spaces_around_the_parts_do_not_matter(left: str, op: str, factor: Any, right: str) -> None:
    tight = parse_comparisons("s", {"p": f"{left}{op}{factor}*{right}"}, [left, right])
    loose = parse_comparisons("s", {"p": f"  {left}  {op}  {factor}  *  {right}  "}, [left, right])
    assert tight == loose


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a <= b", "expected 'VARIANT OP FACTOR * VARIANT'"),
        ("a == 1 * b", "expected"),
        ("a <= -1 * b", "expected"),
        ("a <= 1e3 * b", "expected"),
        ("a <= 0.5 * b extra", "expected"),
        (3, "expected"),
        ("a <= 0.5 * c", "no variant named c"),
    ],
)
def test_a_bad_comparison_is_refused_naming_its_path(text: Any, reason: str) -> None:
    with pytest.raises(VariantError, match=r"^s.toml: compare\.ws\.x: ") as info:
        parse_comparisons("s.toml", {"ws.x": text}, ["a", "b"])
    assert reason in str(info.value)


def test_compare_must_be_a_table() -> None:
    with pytest.raises(VariantError, match="must be a table"):
        parse_comparisons("s.toml", ["a <= 1 * b"], ["a", "b"])


def report(value: object) -> dict[str, Any]:
    return {"transports": {"ws": {"crowd": {"peak": value}}}}


@given(
    ops,
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=-1e6, max_value=1e6),
)
def test_a_comparison_holds_exactly_when_its_inequality_does(op: str, factor: float, a: float, b: float) -> None:
    comparison = Comparison("ws.crowd.peak", "x", op, factor, "y")
    verdict = comparison.check({"x": report(a), "y": report(b)})
    if OPS[op](a, factor * b):
        assert verdict is None
    else:
        assert verdict is not None and f"got {a}" in verdict and str(b) in verdict


def test_a_missing_or_non_numeric_value_fails_the_comparison_and_says_which() -> None:
    comparison = Comparison("ws.crowd.peak", "x", "<=", 1.0, "y")
    missing = comparison.check({"x": report(1), "y": {"transports": {"ws": {}}}})
    assert missing is not None and "no value" in missing and "<missing ws.crowd.peak>" in missing
    text = comparison.check({"x": report("fast"), "y": report(2)})
    assert text is not None and "no value" in text and "fast" in text


def test_value_at_follows_the_dotted_path_into_the_transports() -> None:
    assert value_at(report(7), "ws.crowd.peak") == 7
    assert value_at(report(7), "ws.crowd") == {"peak": 7}
    assert value_at(report(7), "ws.crowd.peak.deeper") == "<missing ws.crowd.peak.deeper>"
    assert value_at({}, "sse") == "<missing sse>"
