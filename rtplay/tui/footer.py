"""The main screen's footer: Textual's compact footer, showing whole keys only.

A footer wider than the terminal is cut at its end, mid-key (``i inf`` at 80 columns).
:class:`KeyFooter` shows the keys that fit its width, the most needed first
(:data:`rtplay.tui.actions.FOOTER_KEEP`), each whole and in the bindings' order; the help
screen lists every key.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Footer

from rtplay.tui.actions import footer_fit

#: Cells between two keys of Textual's compact footer (``FooterKey { margin-right: 1 }``).
KEY_GAP = 1


def key_cells(key_display: str, description: str) -> int:
    """Cells one key takes in the compact footer: ``key description`` and its gap."""
    cells = Text(key_display).cell_len
    if description:
        cells += 1 + Text(description).cell_len
    return cells + KEY_GAP


def _attr(key: Widget, name: str) -> str:
    """A public attribute of Textual's ``FooterKey`` (the widget type is not exported)."""
    return str(getattr(key, name, ""))


class KeyFooter(Footer):
    """The compact footer, leaving out whole the least needed keys that do not fit."""

    def __init__(self) -> None:
        # Textual's docked ^p item overlaps the keys' end on narrow terminals (a stray "n");
        # ctrl+p still opens the palette, and the help says so.
        super().__init__(compact=True, show_command_palette=False)

    async def recompose(self) -> None:
        """New keys (the bindings changed): show the ones that fit."""
        await super().recompose()
        self.fit_keys()

    def on_resize(self) -> None:
        self.fit_keys()

    def fit_keys(self) -> None:
        """Show the keys that fit the footer's width, hide the others."""
        keys = list(self.query("FooterKey"))
        if not keys or not self.size.width:
            return
        cells = [(_attr(k, "action"), key_cells(_attr(k, "key_display"), _attr(k, "description"))) for k in keys]
        shown = footer_fit(cells, self.size.width + KEY_GAP)  # the last key needs no gap
        for key in keys:
            key.display = _attr(key, "action") in shown
