"""The session's one path to the server: its control API (commands) and event stream.

:class:`ControlClient` speaks HTTP to ``/control/*`` — the same API a script or a second
terminal uses — and :class:`ServerMirror` (pure) keeps what the session must read without a
round trip (published count, rate, active faults, whether the listeners are up) from the
``GET /control/events`` stream.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from rtplay.clients import Endpoints
from rtplay.protocol.control_events import (
    BufferReset,
    ControlEvent,
    FaultChanged,
    Hello,
    ListenersChanged,
    PublisherFigures,
    RateChanged,
    decode,
)
from rtplay.protocol.faults import ONE_SHOT, Fault, FaultError, Kind
from rtplay.runtime.health import SideHealth
from rtplay.runtime.token import TOKEN_HEADER, find_token

log = logging.getLogger(__name__)

#: Timeout of one control request. The control listener is local and never faulted, so a
#: slower answer means the server process is stuck: say so rather than hang the UI.
REQUEST_TIMEOUT_S = 5.0

#: Ended fault ids (one-shot ones included: they end as they act) remembered against late
#: ``started`` words: far more than can be in flight between one command's answer and its event.
MAX_REMEMBERED_ENDS = 256

#: Longest event line accepted: a hello carries the status (a certificate, a few faults),
#: ~2 KiB; anything past 1 MiB is not our protocol.
MAX_EVENT_LINE = 1024 * 1024


def tls_for(url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a control API at ``url``: full verification for ``https``; for
    plain ``http`` an empty context, since httpx otherwise loads the system's CA store into a
    verifying one (~50 ms of blocked event loop on the way to the first message)."""
    if urlsplit(url).scheme == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class ControlError(RuntimeError):
    """The control API could not be reached or answered with an error."""


def endpoints_of(status: dict[str, Any]) -> Endpoints:
    """Where the clients connect, from ``GET /control/status`` (or a hello event)."""
    try:
        ep = status["endpoints"]
        return Endpoints(
            http_url=str(ep["http_url"]),
            quic_host=str(ep["quic_host"]),
            quic_port=int(ep["quic_port"]),
            cert_der=base64.b64decode(ep["cert_der_b64"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ControlError(f"the server's status names no endpoints we understand: {exc}") from None


@dataclass
class ServerMirror:
    """What the session knows of the server, kept from its events. Pure: times are passed in."""

    published: int = 0
    replay_from: int = 1
    """The oldest seq the server can still replay (what a resume can still get)."""
    rate: float = 0.0
    listening: bool = True
    faults: dict[int, Fault] = field(default_factory=dict)
    too_slow_cuts: int = 0
    """Subscriptions the server closed because their consumer was too slow."""
    crashes: int = 0
    health: SideHealth | None = None
    """The server's loop lag and publisher slip, as its last status or publisher event said."""
    _ended: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_REMEMBERED_ENDS))
    """Ids of faults known to have ended, so a late ``started`` event does not revive one."""

    def load(self, status: dict[str, Any], now: float) -> None:
        """Take the full status (``GET /control/status``, a hello event)."""
        self.published = int(status.get("published", 0))
        self.replay_from = int(status.get("replay_from", 1))
        self.rate = float(status.get("rate", 0.0))
        self.listening = bool(status.get("listening", True))
        self.faults = {f.id: f for f in (Fault.from_json(o, now) for o in status.get("faults", []))}
        self._health(status)

    def apply(self, event: ControlEvent, now: float) -> tuple[str, Fault] | None:
        """Take one event; return ``(what, fault)`` for a fault that started or ended."""
        match event:
            case PublisherFigures() | RateChanged():
                self.published = max(self.published, event.published)
                self.replay_from = event.replay_from
                self.rate = event.rate
                if isinstance(event, PublisherFigures) and event.health is not None:
                    self._health({"health": event.health})
            case ListenersChanged(up=up):
                self.listening = up
            case BufferReset(cause="crash"):
                self.crashes += 1
            case BufferReset(cut=cut):
                self.too_slow_cuts += cut or 1
            case Hello(status=status):
                self.load(status, now)
            case FaultChanged():
                self.published = max(self.published, event.published)
                fault = Fault.from_json(event.fault, now)
                if event.what == "started":
                    self.started(fault)  # a no-op when our own command's answer came first
                else:
                    self.ended(fault.id)
                return event.what, fault
        return None

    def _health(self, obj: dict[str, Any]) -> None:
        if "health" in obj:
            try:
                self.health = SideHealth.from_json(obj["health"])
            except ValueError:
                log.warning("the server sent malformed health figures: %.80r", obj["health"])

    def started(self, fault: Fault) -> bool:
        """``fault`` has started (the answer to our own command, or its event, whichever
        comes first); False, and nothing written, when the other one came first.

        The first word on a fault is its one write: the event that follows our command's
        answer (or the answer that follows its event) would only move its start onto a later
        clock reading. A one-shot fault is over the moment it acts, so it is remembered as
        ended, never active."""
        if self.knows(fault.id):
            return False
        if fault.kind in ONE_SHOT:
            self._ended.append(fault.id)
        else:
            self.faults[fault.id] = fault
        return True

    def knows(self, fault_id: int) -> bool:
        """Whether the fault ``fault_id`` has been heard of: active, or ended not long ago."""
        return fault_id in self.faults or fault_id in self._ended

    def ended(self, fault_id: int) -> None:
        """The fault ``fault_id`` is over (an event, or the answer to our own command)."""
        self.faults.pop(fault_id, None)
        if fault_id not in self._ended:
            self._ended.append(fault_id)

    def active(self) -> list[Fault]:
        return sorted(self.faults.values(), key=lambda f: f.id)

    def has(self, kind: Kind, transport: str) -> bool:
        if not self.faults:  # asked per message (the offline fault): the usual answer, at once
            return False
        return any(f.kind is kind and f.applies_to(transport) for f in self.faults.values())


class ControlClient:
    """HTTP client of one server's control API (``…/control``)."""

    def __init__(self, control_url: str, token: str | None = None) -> None:
        self.url = control_url.rstrip("/")
        token = find_token(self.url, token)
        headers = {TOKEN_HEADER: token} if token else {}
        # trust_env=False: a proxy configured for the web must not see loopback control calls.
        self._http = httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT_S, trust_env=False, headers=headers, verify=tls_for(self.url)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.request(method, self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise ControlError(f"control API {self.url} unreachable: {type(exc).__name__}: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code == 400:
            raise FaultError(str(payload.get("error", "bad request")))
        if response.status_code >= 300 and response.status_code != 404:
            raise ControlError(f"{method} {path}: HTTP {response.status_code} {payload.get('error', '')}".strip())
        return payload if isinstance(payload, dict) else {}

    async def status(self, load_s: float | None = None) -> dict[str, Any]:
        """``GET /control/status``; ``load_s`` asks for that many seconds of the load series."""
        return await self._call("GET", "/status" if load_s is None else f"/status?load_s={load_s:g}")

    async def add_fault(self, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        """Start a fault: it and the hub's last seq as it began (None from a server that does
        not say); :class:`FaultError` with the server's reason when it makes no sense."""
        answer = await self._call("POST", "/faults", body)
        published = answer.get("published")
        return dict(answer["fault"]), published if isinstance(published, int) else None

    async def clear_faults(self, fault_id: int | None = None) -> list[dict[str, Any]]:
        path = "/faults" if fault_id is None else f"/faults/{fault_id}"
        return list((await self._call("DELETE", path)).get("cleared", []))

    async def set_rate(self, rate: float) -> dict[str, Any]:
        return await self._call("POST", "/rate", {"rate": rate})

    async def drop(self, transport: str | None = None) -> int:
        body = {} if transport is None else {"transport": transport}
        return int((await self._call("POST", "/drop", body))["dropped"])

    async def events(self) -> AsyncIterator[ControlEvent]:
        """Follow ``GET /control/events`` until the server ends it (unknown event types, a
        newer server's, are skipped)."""
        try:
            async with self._http.stream("GET", self.url + "/events", timeout=httpx.Timeout(REQUEST_TIMEOUT_S, read=None)) as response:
                if response.status_code != 200:
                    raise ControlError(f"GET /control/events: HTTP {response.status_code}")
                async for line in response.aiter_lines():
                    if len(line) > MAX_EVENT_LINE:
                        raise ControlError("event line too long")
                    if line:
                        obj = json.loads(line)
                        event = decode(obj) if isinstance(obj, dict) else None
                        if event is not None:
                            yield event
        except (httpx.HTTPError, ValueError) as exc:  # ControlEventError is a ValueError
            raise ControlError(f"event stream of {self.url} ended: {type(exc).__name__}: {exc}") from None
