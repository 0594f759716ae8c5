"""Named text styles: a widget's styles come from the palette's rules in the stylesheet, are
looked up once, and are looked up again when the theme changes."""

from __future__ import annotations

from typing import ClassVar

from rich.color import Color
from rich.style import Style
from textual.app import App, ComposeResult

from rtplay.tui.styles import NO_STYLES, PLAIN, Palette, TextStyles, get


class Gauge(TextStyles):
    STYLE_PREFIX: ClassVar[str] = "gauge"
    STYLE_NAMES: ClassVar[tuple[str, ...]] = ("ok", "bad", "unstyled")


class Host(App[None]):
    CSS = """
    Palette > .gauge--ok { color: #00ff00; }
    Palette > .gauge--bad { color: $error; text-style: bold; }
    """

    def __init__(self, palette: bool = True) -> None:
        super().__init__()
        self.with_palette = palette

    def compose(self) -> ComposeResult:
        if self.with_palette:
            yield Palette()
        yield Gauge()


def test_a_missing_name_means_no_style() -> None:
    assert get(NO_STYLES, "latency") is PLAIN
    red = Style(color="red")
    assert get({"latency": red}, "latency") is red


def test_a_widget_class_declares_its_styles_to_the_palette() -> None:
    assert {"gauge--ok", "gauge--bad", "gauge--unstyled"} <= Palette.COMPONENT_CLASSES


async def test_a_widget_draws_in_the_styles_the_stylesheet_gives_its_names() -> None:
    app = Host()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        styles = app.screen.query_one(Gauge).text_styles
        assert styles["ok"].color == Color.parse("#00ff00")
        assert styles["bad"].bold
        assert styles["unstyled"].color is None and not styles["unstyled"].bold
        assert not app.screen.query_one(Palette).display  # holds styles, never shown


async def test_styles_are_looked_up_once_until_the_theme_changes_them() -> None:
    app = Host()
    async with app.run_test(size=(40, 10)) as pilot:
        app.theme = "nord"
        await pilot.pause()
        gauge = app.screen.query_one(Gauge)
        first = gauge.text_styles
        version = gauge.styles_version
        assert gauge.text_styles is first  # cached: no lookup per frame
        app.theme = "dracula"
        await pilot.pause()
        assert gauge.styles_version > version
        again = gauge.text_styles
        assert again is not first
        assert again["bad"].color != first["bad"].color  # $error differs between the themes


async def test_without_a_palette_everything_is_plain() -> None:
    app = Host(palette=False)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        gauge = app.screen.query_one(Gauge)
        assert gauge.text_styles == {}
        assert gauge.styles_version == -1
