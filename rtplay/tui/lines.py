"""Widgets that draw Rich text line by line, and repaint only the lines that changed.

Textual's general path turns every span of every line into its own content model on each
repaint, and repaints a widget whole. At 10 frames a second with six panes of counters that
change on every frame, that was most of the playground's frame time. A :class:`TextLines`
widget turns each line of its text into a strip straight from Rich's segments (Textual's
line API), keeps the strips, and on new data (:meth:`TextLines.repaint_lines`) redraws only
the lines whose text changed and tells Textual to repaint only those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.geometry import Region, Size
from textual.strip import Strip

from rtplay.tui.styles import TextStyles

LineKey = tuple[str, tuple[Span, ...], str | Style, str | None]
"""What a drawn line looks like: its text, spans, base style and overflow."""


def line_key(line: Text) -> LineKey:
    """A value equal for two lines that draw alike."""
    return (line.plain, tuple(line.spans), line.style, line.overflow)


def line_segments(line: Text, base: Style, console: Console) -> list[Segment]:
    """The segments of ``line`` on ``base``: the line's own style under its spans, a later
    span over an earlier one, as Rich combines them (a named style is resolved by
    ``console``). A few plain loops: Rich's general ``Text.render`` costs several times more."""
    plain = line.plain
    style = base + _resolve(line.style, console)
    spans = line.spans
    if not spans:
        return [Segment(plain, style)] if plain else []
    points = {0, len(plain)}
    for span in spans:
        points.add(min(span.start, len(plain)))
        points.add(min(span.end, len(plain)))
    cuts = sorted(points)
    segments = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        current = style
        for span in spans:
            if span.start <= start and end <= span.end:
                current = current + _resolve(span.style, console)
        segments.append(Segment(plain[start:end], current))
    return segments


def _resolve(style: str | Style, console: Console) -> Style:
    return style if isinstance(style, Style) else console.get_style(style, default=Style.null())


def line_strip(line: Text, width: int, base: Style, console: Console) -> Strip:
    """One line of text as a strip of exactly ``width`` cells on ``base``; a line too long
    is cut by its own ``overflow`` (``…`` for "ellipsis"). The line is never wrapped."""
    cells = line.cell_len
    if cells > width:
        line = line.copy()
        line.truncate(width, overflow="ellipsis" if line.overflow == "ellipsis" else "crop")
        cells = line.cell_len
    segments = line_segments(line, base, console)
    if cells < width:
        segments.append(Segment(" " * (width - cells), base))
    return Strip(segments, max(width, cells))


@dataclass(slots=True)
class Painted:
    """The strips of one drawing of a widget, and what they were drawn from."""

    size: Size
    base: Style
    """The widget's own style, under every line."""
    version: int
    """The palette version the text's styles came from."""
    keys: list[LineKey | None]
    """Per row, the key of its line (None: a blank row below the text)."""
    strips: list[Strip]


def paint(
    lines: list[Text], size: Size, base: Style, console: Console, previous: Painted | None = None, version: int = 0
) -> Painted:
    """``lines`` as exactly ``size.height`` strips; a row whose line is unchanged since
    ``previous`` (same size and base) keeps its strip (the very object)."""
    width, height = size
    reuse = previous is not None and previous.size == size and previous.base == base
    keys: list[LineKey | None] = []
    strips: list[Strip] = []
    for y in range(height):
        key = line_key(lines[y]) if y < len(lines) else None
        if reuse and previous is not None and previous.keys[y] == key:
            strip = previous.strips[y]
        elif key is None:
            strip = Strip.blank(width, base)
        else:
            strip = line_strip(lines[y], width, base, console)
        keys.append(key)
        strips.append(strip)
    return Painted(size, base, version, keys, strips)


def changed_rows(old: Painted, new: Painted) -> list[Region]:
    """The rows (as regions, runs of rows merged) whose strip differs between two drawings."""
    regions: list[Region] = []
    start: int | None = None
    width = new.size.width
    for y, (a, b) in enumerate(zip(old.strips, new.strips, strict=True)):
        if a is not b and start is None:
            start = y
        elif a is b and start is not None:
            regions.append(Region(0, start, width, y - start))
            start = None
    if start is not None:
        regions.append(Region(0, start, width, new.size.height - start))
    return regions


class TextLines(TextStyles):
    """A widget drawing the lines of :meth:`text_lines` (by default, its ``render()``'s
    Rich text); see the module's docstring."""

    _painted: Painted | None = None

    def text_lines(self, size: Size) -> list[Text]:
        """The lines to show at ``size`` (subclasses may lay them out without joining)."""
        text = self.render()
        assert isinstance(text, Text), "TextLines widgets render Rich text"
        return list(text.split("\n", allow_blank=True))

    def _paint(self, size: Size, previous: Painted | None) -> Painted:
        base, version = self.visual_style.rich_style, self.styles_version
        return paint(self.text_lines(size)[: size.height], size, base, self.app.console, previous, version)

    def _current(self) -> Painted | None:
        """The strips drawn last, if they still fit the size and the styles."""
        painted = self._painted
        if painted is None or painted.size != self.size or painted.version != self.styles_version:
            return None
        return painted if painted.base == self.visual_style.rich_style else None

    def repaint_lines(self) -> None:
        """The data changed: draw the lines now and repaint only the rows that changed."""
        old, size = self._current(), self.size
        if old is None or not size.area:
            self.refresh()
            return
        new = self._paint(size, old)
        self._painted = new
        regions = changed_rows(old, new)
        if regions:
            super().refresh(*regions)

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False) -> TextLines:
        """A refresh of the whole widget draws every line again."""
        if not regions:
            self._painted = None
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def render_line(self, y: int) -> Strip:
        """Row ``y``, drawn with every other row when something changed. (Textual restyles
        every widget under one whose class changed, e.g. on a new selection, and asks for
        its lines again: unchanged lines are not drawn again.)"""
        painted = self._current()
        if painted is None:
            painted = self._painted = self._paint(self.size, None)
        strips = painted.strips
        return strips[y] if 0 <= y < len(strips) else Strip.blank(painted.size.width, painted.base)
