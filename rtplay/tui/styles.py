"""Named text styles: widgets read them from the .tcss (component classes), pure render
functions take them as a mapping, so every colour lives in ``rtplay.tcss``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.style import Style
from textual.widget import Widget

Styles = Mapping[str, Style]
"""Style by short name (``latency``, ``axis``…); a missing name means no style."""

PLAIN = Style()

NO_STYLES: Styles = {}
"""The default for pure render functions: everything plain (tests, no app)."""


def get(styles: Styles, name: str) -> Style:
    """The style called ``name``, or no style."""
    return styles.get(name, PLAIN)


class TextStyles(Widget):
    """A widget drawing its own text in the styles of its ``{PREFIX}--{name}`` component
    classes. The styles are looked up once and kept until the CSS or theme changes
    (Textual drops its own cache on every refresh, i.e. every frame)."""

    STYLE_PREFIX: ClassVar[str] = ""
    STYLE_NAMES: ClassVar[tuple[str, ...]] = ()

    _text_styles: dict[str, Style] | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[arg-type]
        cls.COMPONENT_CLASSES = {f"{cls.STYLE_PREFIX}--{name}" for name in cls.STYLE_NAMES}

    @property
    def text_styles(self) -> dict[str, Style]:
        """``{name: style}`` of this widget's component classes (kept until the CSS changes)."""
        if self._text_styles is None:
            self._text_styles = {
                name: self.get_component_rich_style(f"{self.STYLE_PREFIX}--{name}", partial=True)
                for name in self.STYLE_NAMES
            }
        return self._text_styles

    def notify_style_update(self) -> None:
        self._text_styles = None
        super().notify_style_update()
