"""Laying short items out in lines, never splitting an item (Rich wraps at any space)."""

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
