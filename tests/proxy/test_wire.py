"""The reconnect view: each new attempt after a close, with its wait and resume point."""

from __future__ import annotations

from rtplay.proxy.wire import MAX_ROUTES, OTHER_PATHS, WireView, resume_point


def test_a_reconnect_records_the_wait_and_the_id_it_resumed_from() -> None:
    wire = WireView()
    first = wire.opened("sse", "10.0.0.1", "/events", "", None, now=100.0)
    wire.hinted(first, sse_retry_ms=3000)
    wire.closed_conn(first, 101.0, "proxy", reason="drop")
    client = wire.clients[("10.0.0.1", "/events")]
    assert client.next_attempt(102.0) == "due in 2.0s (server asked 3s)"
    wire.opened("sse", "10.0.0.1", "/events", "", "41", now=104.25)
    decisions = [d.to_json() for d in client.decisions]
    assert decisions == [
        {"kind": "sse", "after_close_s": None, "resume_from": None, "refused": None},
        {"kind": "sse", "after_close_s": 3.25, "resume_from": "41", "refused": None},
    ]


def test_refused_attempts_are_counted_per_client_and_route() -> None:
    wire = WireView()
    conn = wire.opened("http", "10.0.0.1", "/poll", "since=5", None, now=0.0)
    wire.refused(conn, 503, "error fault 503")
    wire.closed_conn(conn, 0.1, "proxy")
    report = wire.to_json(1.0)
    assert report["clients"][0]["refused"] == 1
    assert report["clients"][0]["decisions"][0] == {"kind": "http", "after_close_s": None, "resume_from": "5", "refused": 503}
    assert report["routes"][0]["refused"] == 1 and report["routes"][0]["open"] == 0


def test_a_request_that_turns_out_to_be_a_stream_moves_route() -> None:
    wire = WireView()
    conn = wire.opened("http", "a", "/s", "", None, 0.0)
    wire.became(conn, "sse")
    assert [(r.kind, r.open) for r in wire.routes.values() if r.connections] == [("sse", 1)]


def test_resume_point_prefers_the_header_then_known_cursors() -> None:
    assert resume_point("since=3", "9") == "9"
    assert resume_point("a=1&cursor=abc", None) == "abc"
    assert resume_point("a=1", None) is None


def test_routes_are_bounded_against_random_paths() -> None:
    wire = WireView()
    for n in range(MAX_ROUTES + 50):
        conn = wire.opened("http", "a", f"/probe/{n}", "", None, 0.0)
        wire.closed_conn(conn, 0.0, "client")
    assert len(wire.routes) <= MAX_ROUTES + 1
    assert wire.routes[(OTHER_PATHS, "http")].connections == 50
