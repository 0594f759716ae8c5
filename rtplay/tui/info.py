"""What each transport is, so the playground teaches while it runs (the info view, key i)."""

from __future__ import annotations

TITLES = {
    "poll": "short polling",
    "longpoll": "long-polling",
    "sse": "Server-Sent Events",
    "ws": "WebSocket",
    "wt": "WebTransport",
    "rtc": "WebRTC data channels",
}
"""The long name of each transport (pane subtitles, info tabs)."""

POLL = """\
# Short polling — `GET /poll?since=N` every interval

**What it is.** The client asks "anything after N?" on a fixed schedule (here every 1 s) and
the server answers at once with whatever it has, possibly nothing. Each poll is an ordinary,
independent HTTP request.

**Direction.** Client pulls. Server → client data rides on responses; client → server is
just another request.

**Strengths**
- Works through everything: any HTTP stack, proxy, CDN, firewall or serverless platform.
- Stateless on the server; trivial to cache, load-balance, debug with curl.
- Robust by construction: a failed poll is simply followed by the next one, and the
  `since` cursor makes it lossless while the server still buffers the messages.

**Weaknesses**
- Latency is about half the interval on average, up to a whole interval; lowering it
  multiplies requests.
- Most polls are wasted when little happens, and every one pays full HTTP headers.
- Many clients on the same schedule arrive in bursts (thundering herd).

**Fits.** Dashboards refreshed every few seconds, job and build status, low-rate feeds,
and places where nothing else gets through.

**Try here.** `delay` 2000 ms: latency jumps by 2 s and arrivals come in bursts. `error`:
the pane keeps polling on schedule and catches up from its cursor when the fault ends.
"""

LONGPOLL = """\
# Long-polling — `GET /longpoll?since=N&timeout=S`

**What it is.** The client asks for messages after N, and the server *holds* the request
until there is something (or the hold times out with 204). The client re-polls at once
after every answer, so data flows with little delay over plain request/response HTTP.

**Direction.** Server → client as responses to held requests; client → server needs
separate requests.

**Strengths**
- Near-push latency for sparse events on any HTTP/1.1 infrastructure.
- The cursor makes resumption explicit and lossless across errors.
- Was the universal fallback of Comet-era libraries (Bayeux/CometD, SockJS, Socket.IO).

**Weaknesses**
- One held request per client ties up server and proxy resources.
- Every batch costs a full request/response; at high rates messages pile up during each
  round trip and arrive in batches.
- Proxies and load balancers cut requests held too long; the client must re-poll.
- After an error the client must choose how long to wait: too short hammers a failing
  server, too long leaves users stale. Here the policy is visible in the retry log.

**Fits.** Notifications and chat on legacy infrastructure, fallback when streaming is
blocked.

**Try here.** `error 503` then watch the fixed wait after each failure; `outage 5 s`:
long-poll resumes from its cursor and loses nothing.
"""

SSE = """\
# Server-Sent Events — `GET /sse` (text/event-stream)

**What it is.** One long HTTP response carrying a stream of `id:` / `data:` events; the
browser's `EventSource` API parses it. The WHATWG spec builds in reconnection: after a
network error or the end of the stream the client waits the reconnection time (the
server's `retry:` field) and reconnects with a `Last-Event-ID` header, so the server can
resume where it left off.

**Direction.** Server → client only. Client → server needs separate requests.

**Strengths**
- Plain HTTP: works with HTTP/2 multiplexing, cookies and ordinary infrastructure.
- Reconnect and resume are part of the standard, with the server choosing the delay.
- A few bytes of framing per message; trivial to produce from any server.

**Weaknesses**
- One way only, and text only (UTF-8).
- `EventSource` cannot set custom headers (auth goes in cookies or the URL).
- Over HTTP/1.1 each stream uses one of the browser's ~6 connections per origin.
- It does not notice a stalled connection: a half-open stream just goes quiet.
- A non-200 status or a wrong Content-Type *fails* the EventSource for good: no
  reconnect. A 204 is how a server tells a client to stop.
- Buffering proxies can hold events back.

**Fits.** Notifications, live feeds and dashboards, streaming LLM output.

**Try here.** `drop`: reconnect after the `retry:` time with `Last-Event-ID`, nothing lost.
`error 503` then `drop`: the pane shows *failed*, as a browser would. `stall`: no
detection at all.
"""

WS = """\
# WebSocket — `GET /ws?since=N` (RFC 6455)

**What it is.** An HTTP/1.1 Upgrade handshake turns one TCP connection into a full-duplex
channel of framed text or binary messages.

**Direction.** Both ways, at any time.

**Strengths**
- Bidirectional with 2–14 bytes of framing per message: low latency and overhead.
- Supported by every browser and server stack.
- Ping/pong control frames let either side detect a dead peer.

**Weaknesses**
- No reconnect, resume or delivery guarantee across connections: the application adds
  backoff with jitter (here Socket.IO's 1 s → 5 s, ±50 %), a resume cursor (`since`) and
  heartbeats — or loses data.
- One TCP stream: a lost packet delays everything behind it (head-of-line blocking).
- Long-lived stateful connections complicate load balancing and deploys; some proxies
  and corporate networks interfere with Upgrade.
- The browser API has no backpressure.

**Fits.** Chat, collaboration, trading and game UIs, anything interactive both ways.

**Try here.** `stall`: the heartbeat notices within ping interval + timeout and
reconnects. `drop` repeatedly: watch the backoff grow and reset.
"""

WT = """\
# WebTransport — HTTP/3 `CONNECT /wt` over QUIC

**What it is.** A session inside an HTTP/3 connection (QUIC over UDP) offering many
independent streams (reliable, ordered per stream) and unreliable datagrams. Here the
server sends every message on a resumable stream *and* as a datagram.

**Direction.** Both ways; streams can be uni- or bidirectional.

**Strengths**
- Datagrams suit data where a retransmit is useless (the latest state wins).
- Independent streams: a loss on one does not block the others.
- QUIC brings TLS 1.3 built in, fast handshakes, congestion control and connection
  migration.

**Weaknesses**
- UDP is blocked or throttled on some networks: a TCP fallback is still needed.
- Not in every browser yet; a younger server ecosystem.
- Datagrams must fit one packet (~1200 bytes is safe) and may be lost, so the
  application must tolerate gaps.
- Local development with `serverCertificateHashes` needs an ECDSA certificate valid for
  at most 14 days (rtplay generates one at start).

**Fits.** Games, live telemetry, media and state sync that mix reliable and unreliable
data.

**Try here.** `loss 20%`: the datagram channel loses about a fifth, the stream channel
loses nothing (QUIC retransmits). `drop`: the session reconnects and the stream resumes.
"""

RTC = """\
# WebRTC data channels — `POST /rtc/offer`, then SCTP over DTLS over UDP

**What it is.** A peer connection set up by exchanging SDP offer/answer (signaling, here
one HTTP request) and ICE candidates, then SCTP streams inside DTLS over UDP. Each data
channel picks its reliability: here `reliable` (ordered, retransmitted) and `unreliable`
(unordered, `maxRetransmits=0`).

**Direction.** Both ways; designed for peer-to-peer.

**Strengths**
- Per-channel reliability and ordering, including partial reliability.
- Peer-to-peer through NATs (STUN/TURN), always encrypted.
- Signaling only sets the connection up: an HTTP outage does not break an open channel.

**Weaknesses**
- Heavy machinery (signaling, ICE, DTLS, SCTP) and a slow multi-round-trip setup.
- Strict firewalls need a TURN relay.
- No resume: after a failure the application re-signals and handles the gap itself.
- Message size limits (16 KiB is the safe interoperable size).

**Fits.** Peer-to-peer games and file transfer, data next to audio/video calls,
low-latency unreliable telemetry.

**Try here.** `loss 20%`: the reliable channel retransmits, the unreliable one loses.
`outage`: the data channels keep flowing — only new signaling fails.
"""

INFO = {"poll": POLL, "longpoll": LONGPOLL, "sse": SSE, "ws": WS, "wt": WT, "rtc": RTC}
"""Markdown per transport for the info view."""
