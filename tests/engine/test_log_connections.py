"""``--log-messages`` tells the truth about time and connections: its times never go back,
and a reconnect's replay is on the new connection (so the fault record counts it as replayed)."""

from __future__ import annotations

from pathlib import Path

from rtplay.engine.message_log import read_log
from rtplay.engine.session import Session, SessionConfig
from rtplay.model.retry import ExponentialBackoff
from rtplay.protocol.faults import Kind
from rtplay.protocol.options import ServerOptions
from tests.conftest import FAST_HTTP, wait_until


async def test_log_times_are_monotonic_and_rtc_replay_is_on_the_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    fast = {"retry": ExponentialBackoff(initial=0.2, maximum=0.5), "ping_interval": 0.5, "ping_timeout": 1.0}
    config = SessionConfig(
        transports=["ws", "rtc"], server=ServerOptions(rate=100.0, http=dict(FAST_HTTP)), log_messages=path,
        client_options={"ws": dict(fast), "rtc": dict(fast)},
    )
    session = Session(config)
    try:
        await session.start()
        rtc = session.clients["rtc"]
        await wait_until(lambda: rtc.cursor >= 20, what="rtc's first messages")
        await session.faults.add(Kind.DROP, "rtc")
        dropped_at = session.published
        await wait_until(lambda: rtc.conn.connects >= 2 and rtc.cursor > dropped_at + 20, what="rtc back")
        assert await session.settle(5.0)
        report = session.report()
    finally:
        await session.stop()
    lines = read_log(path)
    # Each client's records are in its own order (the clients write in batches, so two clients'
    # lines may interleave), on one clock: nothing before the start is stamped after it.
    for transport in ("ws", "rtc"):
        times = [float(rec["at"]) for rec in lines if rec.get("tr") == transport]  # type: ignore[arg-type]
        assert times == sorted(times), f"{transport}'s log times went backwards"
    assert [rec["ev"] for rec in lines].count("start") == 1
    ups = [rec for rec in lines if rec.get("tr") == "rtc" and rec["ev"] == "up"]
    assert len(ups) >= 2
    since = int(ups[1]["since"])  # type: ignore[call-overload]
    later = [rec for rec in lines if rec.get("tr") == "rtc" and rec["ev"] == "msg" and rec["ch"] == "reliable"
             and int(rec["seq"]) > since]  # type: ignore[call-overload]
    assert later and all(rec["conn"] == ups[1]["conn"] for rec in later[:50]), "a replay tagged with the dead connection"
    record = next(f for f in report["faults"] if f["transport"] == "rtc")
    assert record["replayed"] > 0, record
