"""Drawing text line by line: the same cells as Rich draws, and unchanged rows left alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.geometry import Region, Size

from rtplay.tui.lines import changed_rows, line_strip, paint

CONSOLE = Console(width=200, color_system="truecolor")
BASE = Style(color="#e0e0e0", bgcolor="#121212")
STYLES = [Style(color="#4fc3f7"), Style(bold=True), Style(color="#ef5350", underline=True), Style(bgcolor="#c62828")]


def cells(segments: list[Segment]) -> list[tuple[str, Style | None]]:
    """Each cell of a line with its style, however it is cut into segments."""
    return [(char, segment.style) for segment in segments for char in segment.text]


def rich_cells(line: Text, width: int) -> list[tuple[str, Style | None]]:
    """What Rich itself draws for ``line`` on ``BASE``, padded to ``width``. (The line's own
    style goes in as a first span: ``Text.render`` drops it from a line without spans.)"""
    reference = line.copy()
    reference.spans = [Span(0, len(line), line.style), *line.spans]
    reference.style = ""
    segments = list(Segment.apply_style(reference.render(CONSOLE, end=""), BASE))
    return cells(segments) + [(" ", BASE)] * (width - line.cell_len)


@st.composite
def lines(draw: st.DrawFn) -> Text:
    plain = draw(st.text(alphabet="ab ⣀▆│", min_size=0, max_size=30))
    spans = [
        Span(start, start + draw(st.integers(0, 12)), draw(st.sampled_from([*STYLES, "italic"])))
        for start in draw(st.lists(st.integers(0, max(0, len(plain))), max_size=5))
    ]
    return Text(plain, style=draw(st.sampled_from([*STYLES, "", "bold red"])), spans=spans)


@given(lines())
def test_a_line_is_drawn_cell_for_cell_as_rich_draws_it(line: Text) -> None:
    width = 40
    strip = line_strip(line, width, BASE, CONSOLE)
    assert strip.cell_length == width
    assert cells(list(strip)) == rich_cells(line, width)


def test_a_line_too_long_is_cut_by_its_own_overflow() -> None:
    cut = line_strip(Text("published 123456789", overflow="ellipsis"), 12, BASE, CONSOLE)
    assert "".join(s.text for s in cut) == "published 1…"
    cropped = line_strip(Text("published 123456789"), 12, BASE, CONSOLE)
    assert "".join(s.text for s in cropped) == "published 12"


def test_a_repaint_keeps_unchanged_rows_and_reports_the_changed_ones() -> None:
    size = Size(20, 5)
    before = paint([Text("deliv 10"), Text("lost 0"), Text("p50 1ms"), Text("rx 9/s")], size, BASE, CONSOLE)
    after = paint([Text("deliv 11"), Text("lost 0"), Text("p50 2ms"), Text("rx 9/s")], size, BASE, CONSOLE, before)
    assert after.strips[1] is before.strips[1] and after.strips[3] is before.strips[3]
    assert after.strips[4] is before.strips[4]  # the blank row below the text
    assert changed_rows(before, after) == [Region(0, 0, 20, 1), Region(0, 2, 20, 1)]
    longer = paint([Text("x")] * 5, size, BASE, CONSOLE, after)
    assert changed_rows(after, longer) == [Region(0, 0, 20, 5)]


def test_new_styles_draw_every_row_again() -> None:
    size = Size(10, 2)
    before = paint([Text("a"), Text("b")], size, BASE, CONSOLE)
    lighter = paint([Text("a"), Text("b")], size, Style(bgcolor="#e0e0e0"), CONSOLE, before)
    assert all(new is not old for new, old in zip(lighter.strips, before.strips, strict=True))
