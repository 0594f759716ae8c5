"""The main screen's action table: one key per action and no key twice, every fault on a key,
every action runs a method of the screen, and the footer leads with what matters most."""

from __future__ import annotations

import inspect
from collections import Counter

import pytest
from textual.actions import parse

from rtplay.protocol.faults import TRANSPORTS, Kind
from rtplay.tui.actions import ACTIONS, FOOTER_ORDER, Action, bindings, pane_keys
from rtplay.tui.app import RtplayApp
from rtplay.tui.controls import FAULT_KEYS
from rtplay.tui.main import MainScreen


def all_keys() -> list[str]:
    return [key.strip() for action in ACTIONS for key in action.keys.split(",")]


def test_no_key_runs_two_actions() -> None:
    twice = [key for key, n in Counter(all_keys()).items() if n > 1]
    assert twice == []


def test_the_main_screen_never_takes_the_quit_keys() -> None:
    app_keys = {key.strip() for b in RtplayApp.BINDINGS for key in b.key.split(",")}  # type: ignore[union-attr]
    assert app_keys & set(all_keys()) == set()


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.action)
def test_every_action_runs_a_method_of_the_main_screen_with_the_arguments_it_takes(action: Action) -> None:
    namespace, name, args = parse(action.action)
    method = getattr(MainScreen, f"action_{name}", None)
    assert namespace == "" and method is not None, f"{action.action}: MainScreen has no action_{name}"
    inspect.signature(method).bind(None, *args)  # raises TypeError when the arguments do not fit


def test_every_keyboard_fault_has_a_toggle_key_and_its_amount_a_cycle_key() -> None:
    toggles = {a.action: a.keys for a in ACTIONS if a.action.startswith("fault(")}
    assert toggles == {f"fault('{fk.kind.value}')": fk.key for fk in FAULT_KEYS}
    amounts = {a.action: a.keys for a in ACTIONS if a.action.startswith("amount(")}
    assert amounts == {f"amount('{fk.kind.value}')": fk.amount_key for fk in FAULT_KEYS if fk.amount_key}


def test_every_pane_can_be_selected_by_its_number() -> None:
    selects = {a.keys: a.action for a in ACTIONS if a.action.startswith("select(")}
    for n in range(1, len(TRANSPORTS) + 1):
        assert selects[str(n)] == f"select({n})"
    assert selects["0,a"] == "select(0)"


def test_every_action_can_be_found_in_the_help_and_the_palette() -> None:
    for action in ACTIONS:
        assert action.title and action.help and action.group and action.palette_title
    titles = Counter(a.palette_title for a in ACTIONS)
    assert [t for t, n in titles.items() if n > 1] == []  # the palette lists each once


def test_the_footer_leads_with_its_order_and_shows_every_one_of_those() -> None:
    made = bindings()
    assert [b.action for b in made[: len(FOOTER_ORDER)]] == list(FOOTER_ORDER)
    assert all(b.show for b in made[: len(FOOTER_ORDER)])
    assert sorted(b.action for b in made) == sorted(a.action for a in ACTIONS)


@pytest.mark.parametrize(("panes", "keys"), [(1, "1"), (2, "1-2"), (6, "1-6")])
def test_the_footer_names_the_pane_keys_there_are(panes: int, keys: str) -> None:
    assert pane_keys(panes) == keys
    (select,) = [b for b in bindings(panes) if b.action == "select(1)"]
    assert select.key_display == keys
    assert MainScreen.for_transports(panes).BINDINGS == bindings(panes) or panes == len(TRANSPORTS)


def test_every_fault_the_server_applies_has_a_key() -> None:
    """reorder and duplicate had none: the playground could not start them."""
    assert {fk.kind for fk in FAULT_KEYS} == set(Kind)
    assert len({fk.key for fk in FAULT_KEYS} | {fk.amount_key for fk in FAULT_KEYS if fk.amount_key}) == len(
        FAULT_KEYS
    ) + sum(1 for fk in FAULT_KEYS if fk.amount_key)  # no key twice
