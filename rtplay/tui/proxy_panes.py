"""What the proxy playground draws: a pane per route and kind, the clients' decisions, the
active toxics. Pure text from the wire view's JSON, so it is tested without a terminal."""

from __future__ import annotations

from typing import Any


def route_text(route: dict[str, Any]) -> str:
    """One route's pane body."""
    p50, p99 = route["added_latency_p50_ms"], route["added_latency_p99_ms"]
    added = "-" if p50 is None else f"{p50:.0f} / {p99:.0f} ms"
    lines = [
        f"open {route['open']}   connections {route['connections']}   refused {route['refused']}",
        f"arrivals {route['arrivals_per_s']:.1f}/s   added latency p50/p99 {added}",
    ]
    if route["last_error"]:
        lines.append(f"[red]{route['last_error'][:100]}[/]")
    return "\n".join(lines)


def clients_text(clients: list[dict[str, Any]], limit: int = 8) -> str:
    """Each client's next attempt and its last reconnect decisions (the newest clients first)."""
    if not clients:
        return "no client yet: open your app through the proxy"
    lines: list[str] = []
    for client in clients[-limit:][::-1]:
        lines.append(f"[b]{client['address']} {client['path']}[/]  {client['attempts']} attempts, "
                     f"{client['refused']} refused — next: {client['next_attempt']}")
        for decision in client["decisions"][-3:]:
            gap = "first attempt" if decision["after_close_s"] is None else f"retried {decision['after_close_s']:.2f}s after close"
            resume = "" if decision["resume_from"] is None else f", resumed from {decision['resume_from']!r}"
            refused = "" if not decision["refused"] else f", [red]refused {decision['refused']}[/]"
            lines.append(f"  {decision['kind']}: {gap}{resume}{refused}")
    return "\n".join(lines)


def toxics_text(toxics: list[dict[str, Any]], kind: str, enabled: bool) -> str:
    """The fault bar: the selected kind, the proxy's state and every active toxic."""
    state = "" if enabled else "[red]LISTENER DOWN[/]  "
    active = ", ".join(
        f"{t['name']}" for t in toxics
    ) or "no faults"
    return f"{state}faults act on: [b]{kind}[/]   active: {active}"
