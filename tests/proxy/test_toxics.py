"""Toxiproxy's toxic JSON: parsed, validated and written back in its shape."""

from __future__ import annotations

import pytest

from rtplay.proxy.faults import Change, ProxyToxics, ToxicExists, ToxicNotFound
from rtplay.proxy.toxics import ToxicError, parse_toxic, update_toxic


def test_defaults_follow_toxiproxy() -> None:
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 200}})
    assert toxic.to_json() == {
        "name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"latency": 200, "jitter": 0},
    }


def test_rtplay_types_carry_their_kind() -> None:
    toxic = parse_toxic({"type": "loss", "stream": "upstream", "attributes": {"percent": 20, "kind": "ws"}})
    assert toxic.applies("ws", "upstream") and not toxic.applies("sse", "upstream")
    assert toxic.to_json()["attributes"] == {"percent": 20, "kind": "ws"}


@pytest.mark.parametrize("body, says", [
    ({"type": "nope"}, "invalid toxic type"),
    ({"type": "latency", "stream": "sideways"}, "stream"),
    ({"type": "latency", "toxicity": 1.5}, "toxicity"),
    ({"type": "latency", "attributes": {"latency": -1}}, "latency"),
    ({"type": "latency", "attributes": {"latency": float("nan")}}, "finite"),
    ({"type": "latency", "attributes": {"color": 1}}, "unknown attribute"),
    ({"type": "loss", "attributes": {"percent": 101}}, "percent"),
    ({"type": "loss", "attributes": {"kind": "udp"}}, "kind"),
    ({"type": "error", "attributes": {"status": 200}}, "status"),
    ({"type": "latency", "name": "a/b"}, "name"),
    ([], "object"),
])
def test_bad_toxics_say_why(body: object, says: str) -> None:
    with pytest.raises(ToxicError, match=says):
        parse_toxic(body)


def test_update_keeps_what_it_does_not_name() -> None:
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 200, "jitter": 10}})
    changed = update_toxic(toxic, {"attributes": {"latency": 50}, "toxicity": 0.5})
    assert changed.attributes == {"latency": 50, "jitter": 10} and changed.toxicity == 0.5


def test_the_toxic_list_reports_changes_and_refuses_duplicates() -> None:
    seen: list[tuple[str, Change]] = []
    toxics = ProxyToxics(lambda t, c: seen.append((t.name, c)))
    toxics.add(parse_toxic({"type": "latency"}))
    with pytest.raises(ToxicExists):
        toxics.add(parse_toxic({"type": "latency"}))
    toxics.update("latency_downstream", {"attributes": {"latency": 5}})
    toxics.remove("latency_downstream")
    with pytest.raises(ToxicNotFound):
        toxics.remove("latency_downstream")
    assert seen == [("latency_downstream", c) for c in (Change.ADDED, Change.UPDATED, Change.REMOVED)]
