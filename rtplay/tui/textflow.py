"""Laying text out in lines: short items that are never split, and words that are never cut."""

from __future__ import annotations

from rich.text import Text


def flow(groups: list[list[Text]], width: int, gap: int = 2) -> list[Text]:
    """Lay items out in lines of at most ``width`` cells; each group starts a new line."""
    lines: list[Text] = []
    for items in groups:
        line = Text(no_wrap=True, overflow="ellipsis")
        for item in items:
            if line.cell_len and line.cell_len + gap + item.cell_len > width:
                lines.append(line)
                line = Text(no_wrap=True, overflow="ellipsis")
            if line.cell_len:
                line.append(" " * gap)
            line.append_text(item)
        lines.append(line)
    return lines


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
