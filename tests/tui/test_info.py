"""The info view's text (key ``i``): every transport is explained under the same headings, and
what it suggests trying names faults the playground has."""

from __future__ import annotations

import re

import pytest

from rtplay.protocol.faults import TRANSPORTS, Kind
from rtplay.tui.info import INFO, TITLES

SECTIONS = ("**What it is.**", "**Direction.**", "**Strengths**", "**Weaknesses**", "**Fits.**", "**Try here.**")


def test_every_transport_has_a_title_and_a_page() -> None:
    assert set(TITLES) == set(INFO) == set(TRANSPORTS)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_page_opens_with_its_title_and_has_every_section_in_order(transport: str) -> None:
    page = INFO[transport]
    heading = page.splitlines()[0]
    assert heading.lower().startswith(f"# {TITLES[transport].lower()} — ")
    positions = [page.find(section) for section in SECTIONS]
    assert -1 not in positions, f"{transport}: missing {[s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]}"
    assert positions == sorted(positions)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_what_a_page_suggests_trying_is_a_fault_the_playground_has(transport: str) -> None:
    tries = INFO[transport].split("**Try here.**", 1)[1]
    # a suggestion is "`FAULT [AMOUNT]`:" or "`FAULT [AMOUNT]` then" (``retry:`` is SSE's field)
    suggested = re.findall(r"`([a-z]+)(?: [^`]*)?`(?::| then)", tries)
    assert suggested, f"{transport}: Try here names no fault"
    kinds = {k.value for k in Kind}
    assert [s for s in suggested if s not in kinds] == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_page_has_at_least_two_strengths_and_two_weaknesses(transport: str) -> None:
    page = INFO[transport]
    strengths = page.split("**Strengths**", 1)[1].split("**Weaknesses**", 1)[0]
    weaknesses = page.split("**Weaknesses**", 1)[1].split("**Fits.**", 1)[0]
    assert strengths.count("\n- ") >= 2 and weaknesses.count("\n- ") >= 2
