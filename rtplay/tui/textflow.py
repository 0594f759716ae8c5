"""Laying text out in lines: short items that are never split, and words that are never cut."""

from __future__ import annotations

from rich.text import Span, Text


def flow(groups: list[list[Text]], width: int, gap: int = 2) -> list[Text]:
    """Lay items out in lines of at most ``width`` cells; each group starts a new line."""
    lines: list[Text] = []
    for items in groups:
        line: list[Text] = []
        used = 0  # cells of ``line`` so far
        for item in items:
            cells = item.cell_len
            if line and used + gap + cells > width:
                lines.append(join_items(line, gap))
                line, used = [], 0
            used += cells + (gap if line else 0)
            line.append(item)
        lines.append(join_items(line, gap))
    return lines


def join_items(items: list[Text], gap: int) -> Text:
    """``items`` on one line, ``gap`` spaces apart, styles kept (built in one go: appending
    Rich texts one by one costs several times more, on every frame)."""
    plain: list[str] = []
    spans: list[Span] = []
    offset = 0
    for item in items:
        if plain:
            plain.append(" " * gap)
            offset += gap
        text = item.plain
        if item.style:
            spans.append(Span(offset, offset + len(text), item.style))
        spans += [span.move(offset) for span in item.spans]
        plain.append(text)
        offset += len(text)
    return Text("".join(plain), spans=spans, no_wrap=True, overflow="ellipsis")


def wrap_words(text: Text, width: int, indent: int = 0) -> list[Text]:
    """Break ``text`` at spaces into lines of at most ``width`` cells; continuation lines
    start with ``indent`` spaces. Only a word longer than a whole line is cut (at the edge)."""
    width = max(1, width)
    plain = text.plain
    lines: list[Text] = []
    start, limit = 0, width
    while start < len(plain):
        if len(plain) - start <= limit:
            end = len(plain)
            nxt = end
        else:
            space = plain.rfind(" ", start, start + limit + 1)
            if space > start:
                end, nxt = space, space + 1
            else:  # one word longer than the line: cut it, nothing else would fit
                end = nxt = start + limit
        piece = text[start:end]
        piece.rstrip()
        if lines and indent:
            piece = Text(" " * indent) + piece
        piece.no_wrap = True
        lines.append(piece)
        broke_at_space = nxt == end + 1
        start = nxt
        while broke_at_space and start < len(plain) and plain[start] == " ":
            start += 1  # several spaces at a break: none starts the next line
        limit = max(1, width - indent)
    return lines or [Text("")]
