"""Named text styles: one :class:`Palette` reads them from the .tcss (its component
classes), widgets take theirs from it, pure render functions take them as a mapping, so
every colour lives in ``rtplay.tcss``.

Why one palette and not component classes on each widget: Textual restyles a widget's
component classes (one stylesheet match per class) whenever the widget or an ancestor
changes class. The panes carry ~30 of them each and change class when their state or the
selection changes, so a key that selects a pane cost 60-150 ms of restyling; the palette
is restyled only when the theme or the CSS changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.style import Style
from textual.css.query import NoMatches
from textual.widget import Widget

Styles = Mapping[str, Style]
"""Style by short name (``latency``, ``axis``…); a missing name means no style."""

PLAIN = Style()

NO_STYLES: Styles = {}
"""The default for pure render functions: everything plain (tests, no app)."""

_NAMES: set[str] = set()
"""``{prefix}--{name}`` of every :class:`TextStyles` widget class: the palette's classes."""


def get(styles: Styles, name: str) -> Style:
    """The style called ``name``, or no style."""
    return styles.get(name, PLAIN)


class Palette(Widget):
    """Holds every named text style (``Palette > .chart--latency`` in the .tcss); never shown."""

    DEFAULT_CSS = "Palette { display: none; }"
    COMPONENT_CLASSES: ClassVar[set[str]] = _NAMES  # filled as the widget classes are defined

    version = 0
    """Bumped whenever the styles may have changed (theme or CSS): widgets read them again."""

    def notify_style_update(self) -> None:
        self.version += 1
        super().notify_style_update()
        if self.is_mounted:  # text drawn in the old styles is drawn again
            for widget in self.screen.query(TextStyles):
                widget.refresh()

    def styles_of(self, prefix: str, names: tuple[str, ...]) -> dict[str, Style]:
        """``{name: style}`` of ``{prefix}--{name}`` for each of ``names``."""
        return {name: self.get_component_rich_style(f"{prefix}--{name}", partial=True) for name in names}


class TextStyles(Widget):
    """A widget drawing its own text in the styles named ``{PREFIX}--{name}`` in the
    palette. The styles are looked up once and kept until the palette changes (Textual
    drops its own cache on every refresh, i.e. every frame)."""

    STYLE_PREFIX: ClassVar[str] = ""
    STYLE_NAMES: ClassVar[tuple[str, ...]] = ()

    _text_styles: tuple[int, dict[str, Style]] | None = None
    _palette: Palette | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[arg-type]  # Widget's hook takes typed keywords; these pass through
        _NAMES.update(f"{cls.STYLE_PREFIX}--{name}" for name in cls.STYLE_NAMES)

    def _find_palette(self) -> Palette | None:
        if self._palette is None:
            try:
                self._palette = self.screen.query_one(Palette)
            except NoMatches:
                return None
        return self._palette

    @property
    def styles_version(self) -> int:
        """The palette's :attr:`Palette.version` (text drawn in older styles is stale)."""
        palette = self._find_palette()
        return -1 if palette is None else palette.version

    @property
    def text_styles(self) -> dict[str, Style]:
        """``{name: style}`` of this widget's styles (plain when its screen has no palette)."""
        palette = self._find_palette()
        if palette is None:
            return {}
        if self._text_styles is None or self._text_styles[0] != palette.version:
            self._text_styles = (palette.version, palette.styles_of(self.STYLE_PREFIX, self.STYLE_NAMES))
        return self._text_styles[1]
