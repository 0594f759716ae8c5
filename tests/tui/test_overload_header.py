"""The header says which side is overloaded, and keeps saying it on a narrow terminal."""

from __future__ import annotations

from rtplay.protocol.faults import ALL
from rtplay.tui.bars import StatusData, status_line


def test_the_header_names_the_overloaded_side_even_when_narrow() -> None:
    data = StatusData(1000, 12345, 42, ALL, url="http://127.0.0.1:8080", ui_hz=4, lag_ms=300, overloaded=("client",))
    assert "client overloaded: figures unreliable" in status_line(data, 200).plain
    narrow = status_line(data, 80).plain  # the short form, so the selection stays too
    assert "client overloaded" in narrow and "sel all" in narrow and "127.0.0.1:8080" in narrow
    calm = StatusData(1000, 12345, 42, ALL, url="http://127.0.0.1:8080")
    assert "overloaded" not in status_line(calm, 200).plain


def test_at_80_columns_the_header_keeps_every_figure_in_its_compact_form() -> None:
    data = StatusData(10, 93, 9, ALL, url="http://127.0.0.1:40929/control", ui_hz=10, lag_ms=3)
    assert status_line(data, 80).plain == " rtplay  ▶ 10 msg/s  127.0.0.1:40929  sel all  pub 93  9 s  ui 10Hz lag 3ms"
    wide = status_line(data, 120).plain
    assert "http://127.0.0.1:40929/control" in wide and "published 93" in wide and "ui 10 Hz lag 3 ms" in wide
    overloaded = StatusData(10, 93, 9, ALL, url="http://127.0.0.1:40929/control", overloaded=("client",))
    assert "127.0.0.1:40929" in status_line(overloaded, 80).plain  # the URL is never cut


def test_the_charts_mark_the_period_rtplay_was_overloaded() -> None:
    from rtplay.clients.ws import WebSocketClient
    from rtplay.engine.session import Session
    from rtplay.tui.backend import SessionBackend
    from rtplay.tui.history import MARK_OVERLOAD
    from tests.tui.helpers import make_config

    session = Session(make_config(["ws"]))
    session.clients["ws"] = WebSocketClient("http://127.0.0.1:9")
    backend = SessionBackend(session)
    sides: list[str] = []
    session.overloaded_sides = lambda: sides  # type: ignore[method-assign]
    backend._sample(1.0)
    sides.append("client")
    backend._sample(2.0)
    backend._sample(3.0)
    sides.clear()
    backend._sample(4.0)
    assert list(backend.histories["ws"].marks) == ["", MARK_OVERLOAD, MARK_OVERLOAD, ""]


def test_at_80_columns_both_overloaded_sides_leave_the_url_whole() -> None:
    """Both sides overloaded at 1k msg/s: the notice took so many cells that the URL was
    cut (``127.0.0.1:…``); the notice takes a short form first."""
    data = StatusData(1000, 123456, 420, "longpoll", url="http://127.0.0.1:43191/control", ui_hz=4, lag_ms=300,
                      overloaded=("server", "client"))
    text = status_line(data, 80)
    assert text.cell_len <= 80 and "…" not in text.plain
    assert "127.0.0.1:43191" in text.plain and "server+client overloaded" in text.plain
    assert "server + client overloaded: figures unreliable" in status_line(data, 200).plain
