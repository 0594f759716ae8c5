"""The end-of-run table: fits 100 columns, explains itself, and says what the README says."""

from __future__ import annotations

from pathlib import Path

from rtplay.cli.headless import render_legend, render_table

README = Path(__file__).resolve().parents[2] / "README.md"


def sample_report() -> dict:
    lat = {"p50": 1.2, "p95": 3.4, "p99": 5.6, "max": 1234.5}
    recent = {"p50": 1.0, "p99": 2.0, "window_s": 10}
    main = {"delivered": 123456, "pending": 12, "lost": 3, "lost_to_reset": 250, "duplicates": 1,
            "out_of_order": 2, "latency_ms": lat, "recent_latency_ms": recent, "wire_bytes_per_msg": 180.0}
    datagram = main | {"lost_while_connected": 40, "lost_while_down": 10, "loss_rate": 0.1234}
    shared = {"state": "retrying", "connects": 12, "reconnects": 11, "downtime_s": 123.4}
    return {
        "published": 123456, "duration_s": 600.0, "settled": False, "faults": [],
        "transports": {
            "longpoll": main | shared,
            "rtc": main | shared | {"channels": {"reliable": main, "unreliable": datagram}},
        },
    }


def test_the_default_table_fits_100_columns_and_has_its_legend() -> None:
    text = render_table(sample_report())
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "rtc/unreliable" in text and "not settled" in text
    assert "pend  published while subscribed" in text


def test_wide_shows_every_column() -> None:
    text = render_table(sample_report(), wide=True)
    header = text.splitlines()[1]
    for title in ("up", "down", "loss%", "p95", "max", "p50@10s", "p99@10s", "conn"):
        assert title in header.split()
    assert "12.3" in text  # rtc/unreliable's loss%


def test_the_readme_gives_the_legend_word_for_word() -> None:
    readme = README.read_text()
    for line in render_legend(wide=True):
        assert "    " + line in readme, line


async def test_a_run_keeps_its_start_up_heap_out_of_full_collections() -> None:
    """Every collection during ``rtplay run`` finds what start-up built frozen (so a full pass
    does not walk it: ~100 ms holding the loop as the clients reconnected after a drop), and
    the heap is thawed once the run is over."""
    import dataclasses
    import gc
    import io

    from rtplay.cli.headless import HeadlessOptions, run_headless
    from rtplay.engine.session import SessionConfig
    from tests.conftest import fast_client_options, fast_server_options

    frozen_at_collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            frozen_at_collections.append(gc.get_freeze_count())

    config = SessionConfig(
        transports=["sse"], server=dataclasses.replace(fast_server_options(), rate=50), client_options=fast_client_options()
    )
    options = HeadlessOptions(duration=0.5, progress=False, settle_s=2.0, out=io.StringIO())
    thresholds = gc.get_threshold()
    gc.set_threshold(100, 10, 10)  # collect often, so the run's own collections are seen
    gc.callbacks.append(seen)
    try:
        report = await run_headless(config, options)
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*thresholds)
    assert report["settled"] is True
    assert max(frozen_at_collections, default=0) > 10_000  # the imports, the session, its client
    assert gc.get_freeze_count() == 0
