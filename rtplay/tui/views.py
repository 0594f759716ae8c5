"""The help screen (every key, what the panes show) and the per-transport info view."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown, Static, TabbedContent, TabPane

from rtplay.protocol.faults import TRANSPORTS
from rtplay.tui.actions import ACTIONS, Action, pane_keys
from rtplay.tui.controls import FAULT_KEYS
from rtplay.tui.history import (
    MARK_DOWN,
    MARK_FAILED,
    MARK_FAULT,
    MARK_FAULT_END,
    MARK_OVERLOAD,
    MARK_RESET,
    MARK_UP,
)
from rtplay.tui.info import INFO
from rtplay.tui.model import PAUSED, PLAYING

KEY_STYLE = "bold #e5c07b"

MARKERS = (
    (MARK_FAULT, "a fault started"),
    (MARK_FAULT_END, "a fault ended"),
    (MARK_DOWN, "connection went down"),
    (MARK_UP, "reconnected"),
    (MARK_RESET, "reset: gone from the buffer"),
    (MARK_FAILED, "gave up for good"),
    (MARK_OVERLOAD, "rtplay itself overloaded: figures unreliable"),
)

COUNTERS = (
    ("delivered", "unique messages received"),
    ("lost", "can never arrive (see the README's definitions)"),
    ("pending", "published, not received yet, still recoverable"),
    ("reset", "the server said: too old for the replay buffer"),
    ("dup / ooo", "duplicates / out of order"),
    ("p50 / p99", "latency: receive − send time"),
    ("reconn / down", "reconnects / seconds without a connection"),
)

_KEY_NAMES = {"plus": "+", "equals_sign": "=", "minus": "-", "question_mark": "?", "space": "space"}


def _keys(action: Action) -> str:
    return " ".join(_KEY_NAMES.get(k, k) for k in action.keys.split(","))


def _by_action() -> dict[str, Action]:
    return {a.action: a for a in ACTIONS}


HEADER = (
    (f"{PLAYING} 10 msg/s", f"the publish rate ({PAUSED} paused at 0)"),
    ("http://…", "the built-in server (also in a browser)"),
    ("sel", "the selection: where fault keys act"),
    ("published", "messages the server has published"),
    ("42 s", "time since the session started"),
    ("ui Hz", "frames the screen drew in the last second"),
    ("lag", "how late the screen's timer fired (5 s worst)"),
)
"""The header's figures and what they mean (the help's legend)."""


def _key_rows(transports: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(keys, what) rows of the help's two columns, built from the action table."""
    actions = _by_action()
    numbered = ", ".join(f"{i} {name}" for i, name in enumerate(transports, 1))
    left: list[tuple[str, str]] = [
        ("", "[b u]Selection[/]"),
        (pane_keys(len(transports)), f"select a pane: faults act on it ({numbered})"),
    ]
    left.append((_keys(actions["select(0)"]), actions["select(0)"].help))
    left.append(("", "[b u]Faults[/] (toggle on the selection)"))
    for fk in FAULT_KEYS:
        keys = fk.key + (f" {fk.amount_key}" if fk.amount_key else "")
        left.append((keys, f"[b]{fk.kind.value}[/]: {fk.help}"))
    left.append(("+ -", "next/previous amount of the armed fault"))
    left.append(("", "shift+key cycles that fault's amount"))
    left.append((_keys(actions["faults"]), actions["faults"].help))
    left.append((_keys(actions["clear_faults"]), actions["clear_faults"].help))
    left.append((_keys(actions["restart"]), actions["restart"].help))
    left.append((_keys(actions["policy"]), actions["policy"].help))
    left.append((_keys(actions["reset_counters"]), actions["reset_counters"].help))
    right: list[tuple[str, str]] = [("", "[b u]Rate[/]")]
    right += [(_keys(actions[a]), actions[a].help) for a in ("rate(1)", "rate(-1)", "pause")]
    right.append(("", "[b u]Views[/]"))
    right += [(_keys(actions[a]), actions[a].help) for a in ("zoom", "info", "compare", "crowd", "help")]
    right += [("↑ ↓ PgUp PgDn", "scroll the panes when they do not all fit")]
    right += [("ctrl+p", "command palette: every action by name"), ("q", "quit (stops the session)")]
    right.append(("", "[b u]Header[/]"))
    right += list(HEADER)
    return left, right


#: Below this many columns the help is one column of keys, not two.
TWO_COLUMNS_WIDTH = 100


def help_renderable(
    width: int = 120, transports: list[str] | None = None, extra: Sequence[tuple[str, str]] = ()
) -> RenderableType:
    """Every key, the header's figures, then the chart markers and the counters, laid out
    for ``width`` columns and the panes of ``transports``; ``extra`` (keys, what) rows lead the
    second column (``rtplay replay``'s player keys)."""
    left, right = _key_rows(list(transports or TRANSPORTS))
    right = [*extra, *right]
    keys = Table.grid(padding=(0, 1))
    keys.add_column(justify="right", style=KEY_STYLE, no_wrap=True)
    if width >= TWO_COLUMNS_WIDTH:
        keys.add_column(width=46)
        keys.add_column(justify="right", style=KEY_STYLE, no_wrap=True)
        keys.add_column()
        for (lk, lt), (rk, rt) in zip_longest(left, right, fillvalue=("", "")):
            keys.add_row(lk, Text.from_markup(lt), rk, Text.from_markup(rt))
    else:
        keys.add_column()
        for key, what in (*left, *right):
            keys.add_row(key, Text.from_markup(what))
    legend = Table.grid(padding=(0, 1))
    legend.add_column(style="bold", no_wrap=True)
    legend.add_column(width=28)
    legend.add_column(style="bold", no_wrap=True)
    legend.add_column()
    for (mark, what), (name, meaning) in zip(MARKERS, COUNTERS, strict=True):
        legend.add_row(mark, what, name, meaning)
    intro = Text.from_markup(
        "Break things and watch each transport notice, retry and recover. A fault key toggles "
        "that fault on the selection; [b]drop[/] is one-shot, [b]outage[/] and [b]crash[/] end by themselves."
    )
    titles = Text.from_markup("[b u]Chart markers[/] (time axis)       [b u]Counters[/]")
    return Group(intro, Text(""), keys, Text(""), titles, legend)


class HelpScreen(ModalScreen[None]):
    """All keys and what the panes show."""

    def __init__(self, transports: list[str] | None = None, extra: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.transports = list(transports or TRANSPORTS)
        self.extra = list(extra)
        """More (keys, what) rows, shown first (a replay's player keys)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "close", key_display="esc"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "rtplay help"
            box.border_subtitle = "esc closes"
            yield Static(id="help-text")

    def on_resize(self) -> None:
        """Two columns of keys when they fit, one otherwise."""
        self.query_one("#help-text", Static).update(help_renderable(self.size.width, self.transports, self.extra))


class InfoScreen(Screen[None]):
    """What each transport is: a tab per transport, opened on the selected one."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,i,q", "dismiss", "close", key_display="esc")]

    def __init__(self, transport: str) -> None:
        super().__init__()
        self.transport = transport

    def compose(self) -> ComposeResult:
        with TabbedContent(initial=f"info-{self.transport}", id="info-tabs"):
            for name in TRANSPORTS:
                with TabPane(name, id=f"info-{name}"):
                    yield Markdown(INFO[name])
        yield Static("← → another transport   esc back", id="info-hint")
