"""What the proxy saw on the wire, per connection, per route and per client. Pure.

The playground's retry-decision view for clients rtplay did not write: a client is known by its
remote address and the path it asks for, and each new attempt after a close is one decision —
how long it waited, which ``Last-Event-ID`` or cursor it resumed from, whether it was refused.
Times come in as arguments (``now``, monotonic seconds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

#: Query parameters that carry a resume cursor in common real-time APIs (rtplay's own ``since``,
#: EventSource polyfills' ``lastEventId``, and the usual cursor names).
CURSOR_PARAMS = ("since", "lastEventId", "last_event_id", "cursor", "offset", "after")

#: Connections remembered after they close (for the report and the panes); older ones are
#: forgotten, their figures already folded into their route and client.
MAX_CLOSED = 500

#: Clients remembered (remote address × path). A proxy facing a crowd forgets the oldest.
MAX_CLIENTS = 2000

#: Reconnect decisions kept per client, and arrival times / latency samples per route:
#: enough for the panes' last-10-s figures and a p99 at 1,000 msg/s.
MAX_DECISIONS = 50
MAX_SAMPLES = 10_000

#: The window of "arrivals/s".
RATE_WINDOW_S = 5.0


@dataclass
class Connection:
    """One proxied request, SSE stream or WebSocket."""

    id: int
    kind: str
    """``http``, ``sse`` or ``ws`` (a request becomes ``sse`` once its answer is an event stream)."""
    client: str
    path: str
    opened: float
    resume_from: str | None = None
    """The ``Last-Event-ID`` header, or a cursor query parameter, the client asked with."""
    status: int | None = None
    closed: float | None = None
    close_code: int | None = None
    close_reason: str = ""
    closed_by: str = ""
    """``client``, ``upstream``, ``proxy`` (a fault or a limit) or ``""`` while open."""
    bytes: dict[str, int] = field(default_factory=lambda: {"downstream": 0, "upstream": 0})
    messages: dict[str, int] = field(default_factory=lambda: {"downstream": 0, "upstream": 0})
    added_latency_s: float = 0.0
    """Latency the proxy added, summed over the units it carried."""
    retry_after: str | None = None
    """The upstream's (or an ``error`` fault's) ``Retry-After``."""
    sse_retry_ms: int | None = None
    """The ``retry:`` the event stream set."""
    last_event_id: str | None = None
    """The id of the last event the stream sent through."""

    def to_json(self, now: float) -> dict[str, Any]:
        end = self.closed if self.closed is not None else now
        return {
            "id": self.id, "kind": self.kind, "client": self.client, "path": self.path,
            "age_s": round(end - self.opened, 3), "open": self.closed is None, "status": self.status,
            "resume_from": self.resume_from, "close_code": self.close_code, "close_reason": self.close_reason,
            "closed_by": self.closed_by, "bytes": dict(self.bytes), "messages": dict(self.messages),
            "added_latency_ms": round(self.added_latency_s * 1000, 3), "retry_after": self.retry_after,
            "sse_retry_ms": self.sse_retry_ms, "last_event_id": self.last_event_id,
        }


@dataclass(frozen=True)
class Decision:
    """One new attempt by a client, as seen from outside."""

    at: float
    kind: str
    after_close_s: float | None
    """Time from the client's previous close to this attempt (None: its first attempt)."""
    resume_from: str | None
    refused: int | None = None
    """The status it was refused with (an ``error`` fault, or 502 when the upstream is down)."""

    def to_json(self) -> dict[str, Any]:
        gap = None if self.after_close_s is None else round(self.after_close_s, 3)
        return {"kind": self.kind, "after_close_s": gap, "resume_from": self.resume_from, "refused": self.refused}

    def describe(self) -> str:
        wait = "first attempt" if self.after_close_s is None else f"retried {self.after_close_s:.2f}s after close"
        resume = f", resumed from {self.resume_from!r}" if self.resume_from is not None else ""
        refused = f", refused {self.refused}" if self.refused else ""
        return f"{self.kind}: {wait}{resume}{refused}"


@dataclass
class Client:
    """A remote address asking for one path."""

    address: str
    path: str
    attempts: int = 0
    refused: int = 0
    last_close: float | None = None
    retry_hint_s: float | None = None
    """What the server told it to wait: its last ``retry:`` or ``Retry-After``."""
    open: int = 0
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=MAX_DECISIONS))

    def next_attempt(self, now: float) -> str:
        """What the client is expected to do next, for the panes."""
        if self.open:
            return "connected"
        if self.last_close is None:
            return "-"
        waited = now - self.last_close
        if self.retry_hint_s is None:
            return f"closed {waited:.1f}s ago"
        return f"due in {max(0.0, self.retry_hint_s - waited):.1f}s (server asked {self.retry_hint_s:g}s)"

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "address": self.address, "path": self.path, "attempts": self.attempts, "refused": self.refused,
            "open": self.open, "next_attempt": self.next_attempt(now),
            "decisions": [d.to_json() for d in self.decisions],
        }


@dataclass
class Route:
    """Traffic of one kind on one path: what a pane shows."""

    path: str
    kind: str
    open: int = 0
    connections: int = 0
    refused: int = 0
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    added_ms: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    last_error: str = ""

    def arrivals_per_s(self, now: float) -> float:
        recent = sum(1 for t in self.arrivals if t > now - RATE_WINDOW_S)
        return recent / RATE_WINDOW_S

    def added_latency_ms(self, quantile: float) -> float | None:
        if not self.added_ms:
            return None
        ordered = sorted(self.added_ms)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    def to_json(self, now: float) -> dict[str, Any]:
        p50, p99 = self.added_latency_ms(0.5), self.added_latency_ms(0.99)
        return {
            "path": self.path, "kind": self.kind, "open": self.open, "connections": self.connections,
            "refused": self.refused, "arrivals_per_s": round(self.arrivals_per_s(now), 2),
            "added_latency_p50_ms": None if p50 is None else round(p50, 3),
            "added_latency_p99_ms": None if p99 is None else round(p99, 3), "last_error": self.last_error,
        }


def resume_point(query: str, last_event_id: str | None) -> str | None:
    """The point a request asks to resume from: its ``Last-Event-ID``, else a cursor parameter."""
    if last_event_id is not None:
        return last_event_id
    params = dict(parse_qsl(query, keep_blank_values=True))
    for name in CURSOR_PARAMS:
        if name in params:
            return params[name]
    return None


class WireView:
    """Every connection of one proxy, folded into routes and clients."""

    def __init__(self) -> None:
        self.open: dict[int, Connection] = {}
        self.closed: deque[Connection] = deque(maxlen=MAX_CLOSED)
        self.routes: dict[tuple[str, str], Route] = {}
        self.clients: dict[tuple[str, str], Client] = {}
        self._next_id = 1

    def route(self, path: str, kind: str) -> Route:
        return self.routes.setdefault((path, kind), Route(path, kind))

    def client(self, address: str, path: str) -> Client:
        key = (address, path)
        found = self.clients.get(key)
        if found is None:
            if len(self.clients) >= MAX_CLIENTS:
                del self.clients[next(iter(self.clients))]
            found = self.clients[key] = Client(address, path)
        return found

    def opened(self, kind: str, address: str, path: str, query: str, last_event_id: str | None, now: float) -> Connection:
        """A new request or handshake arrived."""
        conn = Connection(self._next_id, kind, address, path, now, resume_point(query, last_event_id))
        self._next_id += 1
        self.open[conn.id] = conn
        route = self.route(path, kind)
        route.open += 1
        route.connections += 1
        client = self.client(address, path)
        client.attempts += 1
        client.open += 1
        gap = None if client.last_close is None else now - client.last_close
        client.decisions.append(Decision(now, kind, gap, conn.resume_from))
        return conn

    def became(self, conn: Connection, kind: str) -> None:
        """A request turned out to be an event stream (or an upgrade): move it to that route."""
        if conn.kind == kind:
            return
        old = self.route(conn.path, conn.kind)
        old.open -= 1
        old.connections -= 1
        conn.kind = kind
        new = self.route(conn.path, kind)
        new.open += 1
        new.connections += 1
        client = self.clients.get((conn.client, conn.path))
        if client and client.decisions:
            last = client.decisions[-1]
            client.decisions[-1] = Decision(last.at, kind, last.after_close_s, last.resume_from, last.refused)

    def refused(self, conn: Connection, status: int, reason: str) -> None:
        """The attempt was answered with an error status (a fault, or the upstream is down)."""
        conn.status = status
        route = self.route(conn.path, conn.kind)
        route.refused += 1
        route.last_error = reason
        client = self.clients.get((conn.client, conn.path))
        if client is not None:
            client.refused += 1
            if client.decisions:
                last = client.decisions[-1]
                client.decisions[-1] = Decision(last.at, last.kind, last.after_close_s, last.resume_from, status)

    def carried(self, conn: Connection, stream: str, size: int, added_s: float, now: float, message: bool) -> None:
        """A unit went through (``message``: an SSE event or WS message, counted as an arrival)."""
        conn.bytes[stream] += size
        conn.added_latency_s += added_s
        if message:
            conn.messages[stream] += 1
            route = self.route(conn.path, conn.kind)
            if stream == "downstream":
                route.arrivals.append(now)
            route.added_ms.append(added_s * 1000)

    def hinted(self, conn: Connection, retry_after: str | None = None, sse_retry_ms: int | None = None) -> None:
        """The server told the client when to come back."""
        client = self.clients.get((conn.client, conn.path))
        if retry_after is not None:
            conn.retry_after = retry_after
            if client is not None and retry_after.strip().isdigit():
                client.retry_hint_s = float(retry_after)
        if sse_retry_ms is not None:
            conn.sse_retry_ms = sse_retry_ms
            if client is not None:
                client.retry_hint_s = sse_retry_ms / 1000

    def closed_conn(self, conn: Connection, now: float, by: str, code: int | None = None, reason: str = "") -> None:
        """The connection ended; ``by`` says who ended it."""
        if conn.closed is not None:
            return
        conn.closed, conn.closed_by, conn.close_code, conn.close_reason = now, by, code, reason
        self.open.pop(conn.id, None)
        self.closed.append(conn)
        self.route(conn.path, conn.kind).open -= 1
        client = self.clients.get((conn.client, conn.path))
        if client is not None:
            client.open = max(0, client.open - 1)
            client.last_close = now

    def connections(self) -> list[Connection]:
        return [*self.closed, *self.open.values()]

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "routes": [r.to_json(now) for r in self.routes.values() if r.connections],
            "clients": [c.to_json(now) for c in self.clients.values()],
            "connections": [c.to_json(now) for c in self.connections()],
        }
