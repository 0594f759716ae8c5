"""Every action of the main screen, in one table: its key bindings, the help screen and the
command palette are all generated from it, so they never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from rtplay.protocol.faults import TRANSPORTS
from rtplay.tui.controls import FAULT_KEYS


@dataclass(frozen=True, slots=True)
class Action:
    """A main-screen action and the key(s) that run it."""

    keys: str
    """Comma-separated Textual key names."""
    action: str
    """The action string, e.g. ``fault('drop')``."""
    title: str
    """Short name (footer, palette title)."""
    help: str
    """One sentence (help screen, palette help)."""
    group: str
    show: bool = False
    """Shown in the footer."""
    key_display: str | None = None
    command: str = ""
    """Title in the command palette (defaults to :attr:`title`)."""

    @property
    def palette_title(self) -> str:
        """The title the command palette lists."""
        return self.command or self.title


def _fault_actions() -> list[Action]:
    actions = []
    for fk in FAULT_KEYS:
        kind = fk.kind.value
        actions.append(Action(fk.key, f"fault('{kind}')", f"Toggle {kind}", f"{kind}: {fk.help}", "Faults"))
    for fk in FAULT_KEYS:
        if fk.amount_key:
            kind = fk.kind.value
            actions.append(
                Action(
                    fk.amount_key,
                    f"amount('{kind}')",
                    f"Next {kind} amount",
                    f"cycle the next {kind} fault's amount",
                    "Amounts",
                )
            )
    return actions


ACTIONS: tuple[Action, ...] = (
    Action("1", "select(1)", "pane", "select pane 1: faults apply to its transport", "Selection", True, "1-6"),
    *(
        Action(str(n), f"select({n})", f"Select pane {n}", f"select pane {n}", "Selection")
        for n in range(2, len(TRANSPORTS) + 1)
    ),
    Action("0,a", "select(0)", "all", "select every transport: faults apply to all", "Selection", True, "0"),
    *_fault_actions(),
    Action(
        "plus,equals_sign",
        "step_amount(1)",
        "amount",
        "next amount of the armed fault",
        "Amounts",
        True,
        "+",
        "Next amount of the armed fault",
    ),
    Action(
        "minus",
        "step_amount(-1)",
        "amount down",
        "previous amount of the armed fault",
        "Amounts",
        False,
        "-",
        "Previous amount of the armed fault",
    ),
    Action(
        "g", "restart", "restart", "start a failed client again (a page reload)", "Faults", True, None,
        "Restart failed client",
    ),
    Action(
        "b", "policy", "policy", "the selected client's next retry policy (exponential, jitter, fixed…)", "Faults",
        False, None, "Next retry policy",
    ),
    Action(
        "w", "crowd", "crowd", "the crowd view (--clients N): connections/s, states, the wave", "Views", False, None,
        "Crowd view",
    ),
    Action(
        "f", "faults", "faults", "active faults with time left; clear one", "Faults", True, None,
        "Fault list: active faults, clear one",
    ),
    Action("x", "clear_faults", "clear", "clear every active fault", "Faults", True, None, "Clear all faults"),
    Action(
        "C", "reset_counters", "reset counters", "zero every counter, latency and fault record", "Faults", False,
        None, "Reset all counters",
    ),
    Action(
        "r", "rate(1)", "rate", "faster: 1 → 10 → 100 → 1000 msg/s (then stays)", "Rate", True, None,
        "Publish faster",
    ),
    Action(
        "R", "rate(-1)", "rate down", "slower: 1000 → 100 → 10 → 1 msg/s (then stays)", "Rate", False, None,
        "Publish slower",
    ),
    Action(
        "space",
        "pause",
        "pause",
        "pause publishing (rate 0) or resume",
        "Rate",
        True,
        "space",
        "Pause / resume publishing",
    ),
    Action(
        "z",
        "zoom",
        "zoom",
        "one pane full-screen, or back to the grid",
        "Views",
        True,
        None,
        "Zoom: one pane full-screen / grid",
    ),
    Action(
        "i", "info", "info", "what the transport is: direction, strengths, fits", "Views", True, None, "Transport info"
    ),
    Action(
        "c",
        "compare",
        "compare",
        "transports side by side, last fault's recovery",
        "Views",
        True,
        None,
        "Compare transports",
    ),
    Action("up", "scroll_panes(-1)", "scroll up", "scroll the panes up a line", "Views", False, "↑", "Scroll up"),
    Action("down", "scroll_panes(1)", "scroll down", "scroll the panes down a line", "Views", False, "↓", "Scroll down"),
    Action("pageup", "page_panes(-1)", "page up", "scroll the panes up a screen", "Views", False, "PgUp", "Page up"),
    Action(
        "pagedown", "page_panes(1)", "page down", "scroll the panes down a screen", "Views", False, "PgDn", "Page down"
    ),
    Action(
        "question_mark",
        "help",
        "help",
        "this help: keys, markers, counters",
        "Views",
        True,
        "?",
        "Help: keys and legend",
    ),
)


FOOTER_ORDER = (
    "help",
    "select(1)",
    "select(0)",
    "faults",
    "clear_faults",
    "restart",
    "rate(1)",
    "pause",
    "zoom",
    "info",
    "compare",
)
"""The footer shows these first, in this order."""

FOOTER_KEEP = (
    "help",
    "quit",
    "select(1)",
    "select(0)",
    "faults",
    "clear_faults",
    "rate(1)",
    "pause",
    "restart",
    "compare",
    "info",
    "zoom",
    "step_amount(1)",
)
"""The footer's keys, most needed first: a footer too narrow for all of them leaves out the
last ones whole (``?`` lists every key). ``compare``, ``info`` and ``zoom`` are views the
help names; the armed amount is underlined on the fault keys' line, and the help says ``+``."""


def footer_fit(keys: list[tuple[str, int]], width: int) -> set[str]:
    """Which of ``keys`` (action, cells with its gap) a footer ``width`` cells wide shows:
    the most needed (:data:`FOOTER_KEEP` order, unlisted ones last) for as long as they fit."""
    rank = {action: i for i, action in enumerate(FOOTER_KEEP)}
    shown: set[str] = set()
    used = 0
    for action, cells in sorted(keys, key=lambda k: rank.get(k[0], len(rank))):
        if used + cells > width:
            break
        shown.add(action)
        used += cells
    return shown


def pane_keys(count: int) -> str:
    """The keys that select a pane: ``1-6``, ``1-2``, ``1``."""
    return "1" if count <= 1 else f"1-{count}"


def bindings(panes: int = len(TRANSPORTS)) -> list[Binding]:
    """The main screen's BINDINGS for ``panes`` panes, footer keys first in :data:`FOOTER_ORDER`."""
    order = {action: i for i, action in enumerate(FOOTER_ORDER)}
    ranked = sorted(ACTIONS, key=lambda a: order.get(a.action, len(order)))
    out = []
    for a in ranked:
        display = pane_keys(panes) if a.action == "select(1)" else a.key_display
        out.append(Binding(a.keys, a.action, a.title, show=a.show, key_display=display, tooltip=a.help))
    return out
