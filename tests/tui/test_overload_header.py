"""The header says which side is overloaded, and keeps saying it on a narrow terminal."""

from __future__ import annotations

from rtplay.protocol.faults import ALL
from rtplay.tui.bars import StatusData, status_line


def test_the_header_names_the_overloaded_side_even_when_narrow() -> None:
    data = StatusData(1000, 12345, 42, ALL, url="http://127.0.0.1:8080", ui_hz=4, lag_ms=300, overloaded=("client",))
    for width in (200, 80):
        text = status_line(data, width).plain
        assert "client overloaded: figures unreliable" in text, width
    calm = StatusData(1000, 12345, 42, ALL, url="http://127.0.0.1:8080")
    assert "overloaded" not in status_line(calm, 200).plain
