"""Fixed, deterministic frames for snapshot tests: six transports in telling states."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from rtplay.model.events import State
from rtplay.tui.history import (
    MARK_DOWN,
    MARK_FAILED,
    MARK_FAULT,
    MARK_FAULT_END,
    MARK_UP,
)
from rtplay.tui.model import ChannelModel, Dashboard, FaultRow, LogLine, PaneModel

SAMPLES = 240


def wave(
    base: float, swing: float, period: float, phase: float = 0.0, gaps: tuple[range, ...] = ()
) -> tuple[float | None, ...]:
    """A deterministic latency series with optional gaps (nothing arrived)."""
    return tuple(
        None if any(i in g for g in gaps) else round(base + swing * math.sin(i / period + phase), 3)
        for i in range(SAMPLES)
    )


def rates(
    level: float, gaps: tuple[range, ...] = (), burst: range | None = None, share: float = 1.0
) -> tuple[float, ...]:
    """Arrivals per second per sample: ``level``, zero in gaps, doubled in a catch-up burst."""
    out = []
    for i in range(SAMPLES):
        value = level * share * (1 + 0.05 * math.cos(i / 3))
        if any(i in g for g in gaps):
            value = 0.0
        elif burst is not None and i in burst:
            value = level * 2.5
        out.append(round(value, 2))
    return tuple(out)


def marks(at: dict[int, str]) -> tuple[str, ...]:
    return tuple(at.get(i, "") for i in range(SAMPLES))


def channel(
    name: str, delivered: int, latency: tuple[float | None, ...], arrivals: tuple[float, ...], **kw: Any
) -> ChannelModel:
    return ChannelModel(name, delivered, latency=latency, arrivals=arrivals, rate=arrivals[-1], **kw)


OUTAGE = (range(200, 212),)


def demo_dashboard() -> Dashboard:
    """Six panes mid-experiment: an outage just ended, sse failed on a 503, wt loses datagrams."""
    fault_marks = {200: MARK_FAULT, 212: MARK_FAULT_END}
    poll = PaneModel(
        "poll",
        1,
        State.OPEN,
        "open",
        "since=11804",
        (
            channel(
                "main",
                11_804,
                wave(480, 300, 2.0, gaps=OUTAGE),
                rates(100, OUTAGE, range(212, 216)),
                p50_ms=502.0,
                p99_ms=991.0,
                behind=96,
            ),
        ),
        connects=2,
        reconnects=1,
        downtime_s=6.1,
        marks=marks(fault_marks | {201: MARK_DOWN, 213: MARK_UP}),
        log=(
            LogLine(100.2, "fault: outage 5s on all", "fault"),
            LogLine(100.6, "connection refused → next poll in 1s (fixed interval)", "retry", 5),
            LogLine(106.1, "reconnected (since=11310)", "open"),
        ),
    )
    longpoll = PaneModel(
        "longpoll",
        2,
        State.RETRYING,
        "retrying in 2.4 s",
        "fixed 10s",
        (
            channel(
                "main",
                11_310,
                wave(3, 1, 3.0, gaps=(range(200, 240),)),
                rates(100, (range(200, 240),)),
                p50_ms=2.7,
                p99_ms=16.3,
                behind=590,
            ),
        ),
        connects=1,
        reconnects=0,
        downtime_s=7.6,
        marks=marks(fault_marks | {201: MARK_DOWN}),
        log=(
            LogLine(100.2, "fault: outage 5s on all", "fault"),
            LogLine(
                100.3, "connection refused → retry in 10 s (fixed 10s)", "retry",
                # the shorter forms, as the pane's EventLog words them
                brief=("connection refused → retry in 10 s", "connection refused → retry", "→ retry in 10 s"),
            ),
        ),
    )
    sse = PaneModel(
        "sse",
        3,
        State.FAILED,
        "failed: HTTP 503: EventSource does not reconnect",
        "",
        (
            channel(
                "main",
                9_877,
                wave(2.3, 0.8, 2.5, gaps=(range(150, 240),)),
                rates(100, (range(150, 240),)),
                p50_ms=2.3,
                p99_ms=12.8,
                behind=2_023,
            ),
        ),
        connects=1,
        reconnects=0,
        downtime_s=45.0,
        marks=marks({148: MARK_FAULT, 149: MARK_DOWN, 150: MARK_FAILED}),
        log=(
            LogLine(74.0, "fault: error 503 on sse", "fault"),
            LogLine(74.5, "server closed the connection → retry in 0.1 s (retry: field)", "retry"),
            LogLine(74.6, "failed: HTTP 503: EventSource does not reconnect — no retry", "failed"),
        ),
    )
    ws = PaneModel(
        "ws",
        4,
        State.OPEN,
        "open",
        "since=11810",
        (
            channel(
                "main",
                11_900,
                wave(2.2, 0.7, 2.2, gaps=OUTAGE),
                rates(100, OUTAGE, range(212, 215)),
                p50_ms=2.2,
                p99_ms=12.8,
            ),
        ),
        connects=3,
        reconnects=2,
        downtime_s=6.4,
        marks=marks(fault_marks | {120: MARK_DOWN, 122: MARK_UP, 201: MARK_DOWN, 214: MARK_UP}),
        log=(
            LogLine(60.1, "connection lost (no close frame) → retry in 1.3 s (exp 1s×2≤5s ±50%)", "retry"),
            LogLine(61.4, "reconnected (since=6012)", "open"),
            LogLine(100.3, "connection refused → retry in 2.1 s (exp 1s×2≤5s ±50%)", "retry", 3),
            LogLine(106.6, "reconnected (since=11310)", "open"),
        ),
    )
    wt = PaneModel(
        "wt",
        5,
        State.OPEN,
        "open",
        "since=11900",
        (
            channel("stream", 11_900, wave(4, 1.5, 2.8), rates(100), p50_ms=3.9, p99_ms=21.0),
            channel(
                "datagram", 9_540, wave(3.5, 1.2, 2.8, 0.5), rates(100, share=0.8), lost=2_360, p50_ms=3.4, p99_ms=15.2
            ),
        ),
        connects=1,
        reconnects=0,
        downtime_s=0.0,
        marks=marks({60: MARK_FAULT}),
        log=(LogLine(30.0, "connected (since=0)", "open"), LogLine(30.1, "fault: loss 20% on wt", "fault")),
    )
    rtc = PaneModel(
        "rtc",
        6,
        State.OPEN,
        "open",
        "reliable + unreliable",
        (
            channel("reliable", 11_900, wave(6, 2, 3.1), rates(100), p50_ms=5.8, p99_ms=30.4),
            channel(
                "unreliable",
                11_890,
                wave(5, 1.5, 3.1, 1.0),
                rates(100),
                lost=10,
                out_of_order=31,
                p50_ms=5.1,
                p99_ms=22.7,
            ),
        ),
        connects=1,
        reconnects=0,
        downtime_s=0.0,
        marks=marks({}),
        log=(LogLine(0.8, "connected (offer/answer)", "open"),),
    )
    return Dashboard(
        panes=(poll, longpoll, sse, ws, wt, rtc),
        fault_rows=(FaultRow(3, "error", "sse", "503", None), FaultRow(4, "loss", "wt", "20%", 42.0)),
        rate=100.0,
        published=11_900,
        elapsed_s=119.0,
        url="http://127.0.0.1:8765",
    )


def _entry(delivered: int, lost: int, p50: float, p99: float, bpm: float, **kw: Any) -> dict[str, Any]:
    return {
        "delivered": delivered,
        "lost": lost,
        "lost_to_reset": kw.pop("lost_to_reset", 0),
        "duplicates": kw.pop("duplicates", 0),
        "out_of_order": kw.pop("out_of_order", 0),
        "latency_ms": {"p50": p50, "p95": round(p99 * 0.7, 1), "p99": p99, "max": round(p99 * 1.5, 1)},
        "wire_bytes_per_msg": bpm,
        **kw,
    }


def demo_report() -> dict[str, Any]:
    """A JSON report as ``Session.report()`` writes it, matching :func:`demo_dashboard`."""
    def conn(state, c, r, d):
        return {"state": state, "connects": c, "reconnects": r, "downtime_s": d}
    wt_stream = _entry(11_900, 0, 3.9, 21.0, 96.0)
    rtc_reliable = _entry(11_900, 0, 5.8, 30.4, 104.0)
    return {
        "published": 11_900,
        "duration_s": 119.0,
        "transports": {
            "poll": _entry(11_804, 96, 502.0, 991.0, 77.0) | conn("open", 2, 1, 6.1),
            "longpoll": _entry(11_310, 590, 2.7, 16.3, 118.0) | conn("retrying", 1, 0, 7.6),
            "sse": _entry(9_877, 2_023, 2.3, 12.8, 93.0) | conn("failed", 1, 0, 45.0),
            "ws": _entry(11_900, 0, 2.2, 12.8, 80.0, duplicates=0) | conn("open", 3, 2, 6.4),
            "wt": wt_stream
            | conn("open", 1, 0, 0.0)
            | {
                "channels": {"stream": wt_stream, "datagram": _entry(9_540, 2_360, 3.4, 15.2, 71.0)},
            },
            "rtc": rtc_reliable
            | conn("open", 1, 0, 0.0)
            | {
                "channels": {
                    "reliable": rtc_reliable,
                    "unreliable": _entry(11_890, 10, 5.1, 22.7, 88.0, out_of_order=31),
                },
            },
        },
        "faults": [
            {
                "fault": "error 503 on sse",
                "transport": "sse",
                "start_s": 74.0,
                "end_s": None,
                "time_to_detect_s": 0.5,
                "time_to_recover_s": None,
                "lost": 0,
                "lost_to_reset": 0,
                "duplicates": 0,
                "replayed": 0,
                "failed": "HTTP 503: EventSource does not reconnect",
            },
            *(
                {
                    "fault": "outage 5s on all",
                    "transport": name,
                    "start_s": 100.2,
                    "end_s": 105.2,
                    "time_to_detect_s": detect,
                    "time_to_recover_s": recover,
                    "lost": 0,
                    "lost_to_reset": 0,
                    "duplicates": 0,
                    "replayed": replayed,
                }
                for name, detect, recover, replayed in (
                    ("poll", 0.4, 0.9, 0),
                    ("longpoll", 0.1, None, 0),
                    ("sse", None, None, 0),
                    ("ws", 0.1, 1.4, 496),
                    ("wt", 0.3, 0.6, 480),
                    ("rtc", None, 0.0, 0),
                )
            ),
        ],
    }


def later(frame: Dashboard, samples: int, messages: int) -> Dashboard:
    """``frame`` as a live session shows it ``samples`` chart samples and ``messages``
    messages per transport later: every chart scrolled, every count and figure moved on."""
    panes = []
    for pane in frame.panes:
        channels = tuple(
            replace(
                c,
                delivered=c.delivered + messages,
                latency=c.latency[samples:] + c.latency[:samples],
                arrivals=c.arrivals[samples:] + c.arrivals[:samples],
                rate=c.rate + messages % 7,
                p50_ms=None if c.p50_ms is None else c.p50_ms + messages / 1000,
            )
            for c in pane.channels
        )
        marks = pane.marks[samples:] + pane.marks[:samples]
        panes.append(replace(pane, channels=channels, marks=marks, downtime_s=pane.downtime_s + messages / 1000))
    return replace(frame, panes=tuple(panes), published=frame.published + messages, elapsed_s=frame.elapsed_s + 0.1)
