"""Large /poll and /longpoll answers, written in bounded pieces to bounded many readers at once.

A resume from an old cursor at a high rate is a big answer (779 KB for 10,000 envelopes).
Built as one string and handed to the transport whole, it stays in memory for as long as the
client does not read it: 1,000 such clients held 650 MB, and the heap kept most of it after
they left. Here an answer over :data:`ANSWER_CHUNK_BYTES` is written piece by piece from the
hub's cached envelope encodings, each piece only once the previous one drained, so a reader
holds at most one piece plus the transport's high-water mark; at most
:data:`MAX_LARGE_ANSWERS` such answers are in flight at once (the rest wait their turn), and a
reader that takes no piece within the write timeout is disconnected, which frees what it held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterator

from aiohttp import web

from servers.core.hub import Backlog

log = logging.getLogger(__name__)

#: Bytes of one piece of a large answer, and the size up to which an answer goes out whole:
#: aiohttp drains the transport every 64 KiB written, so a piece is one drain's worth.
ANSWER_CHUNK_BYTES = 64 * 1024

#: Kernel send buffer of a connection getting a large answer: one piece. Linux autotunes it up
#: to 4 MiB, where a whole answer would wait for a reader that is not there.
ANSWER_SNDBUF_BYTES = ANSWER_CHUNK_BYTES

#: Large answers in flight at once. Each holds about two pieces (its own and the transport's
#: buffer), so 64 answers hold ~8 MiB however many slow readers ask; a burst of catching-up
#: clients takes turns, each turn as short as its client reads.
MAX_LARGE_ANSWERS = 64


class AnswerBudget:
    """How many large answers may be in flight at once (one per server, across app restarts)."""

    def __init__(self, limit: int = MAX_LARGE_ANSWERS, done: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self._done = done
        """Told of every large answer that ends (the server gives memory back after a burst)."""
        self._slots = asyncio.Semaphore(limit)
        self.cut = 0
        """Readers disconnected for taking no piece within the write timeout."""

    async def __aenter__(self) -> None:
        await self._slots.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()
        if self._done is not None:
            self._done()


ANSWERS: web.AppKey[AnswerBudget] = web.AppKey("rtplay-answers", AnswerBudget)


def batch_json(backlog: Backlog, last: int) -> str:
    """The /poll and /longpoll body, built from the envelopes' cached encodings."""
    body = '{"messages":[' + ",".join(e.json for e in backlog.messages) + f'],"last":{last}'
    if backlog.reset is not None:
        body += ',"reset":' + json.dumps(backlog.reset.to_json())
    return body + "}"


def batch_pieces(backlog: Backlog, last: int, size: int = ANSWER_CHUNK_BYTES) -> Iterator[str]:
    """The /poll and /longpoll body (as :func:`batch_json` makes it), in pieces
    of about ``size`` characters, from the envelopes' cached encodings."""
    piece: list[str] = ['{"messages":[']
    length = len(piece[0])
    for i, env in enumerate(backlog.messages):
        text = env.json if i == 0 else "," + env.json
        piece.append(text)
        length += len(text)
        if length >= size:
            yield "".join(piece)
            piece, length = [], 0
    tail = f'],"last":{last}'
    if backlog.reset is not None:
        tail += ',"reset":' + json.dumps(backlog.reset.to_json())
    piece.append(tail + "}")
    yield "".join(piece)


def answer_length(backlog: Backlog, last: int) -> int:
    """The byte length of the body :func:`batch_pieces` writes (envelopes are ASCII JSON)."""
    return sum(len(p) for p in _shape(backlog, last)) + sum(len(e.json) for e in backlog.messages)


def _shape(backlog: Backlog, last: int) -> list[str]:
    tail = f'],"last":{last}' + (',"reset":' + json.dumps(backlog.reset.to_json()) if backlog.reset else "")
    return ['{"messages":[', "," * max(0, len(backlog.messages) - 1), tail + "}"]


def is_large(backlog: Backlog) -> bool:
    """Whether the answer for ``backlog`` goes out in pieces (cheap: stops at the threshold)."""
    total = 0
    for env in backlog.messages:
        total += len(env.json) + 1
        if total > ANSWER_CHUNK_BYTES:
            return True
    return False


async def send_pieces(request: web.Request, backlog: Backlog, last: int, write_timeout_s: float) -> web.StreamResponse:
    """Write a large answer piece by piece within its reader's pace (see the module docstring)."""
    budget = request.app[ANSWERS]
    response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    response.content_length = answer_length(backlog, last)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ANSWER_SNDBUF_BYTES)
    async with budget:
        try:
            await response.prepare(request)
            for piece in batch_pieces(backlog, last):
                async with asyncio.timeout(write_timeout_s):
                    await response.write(piece.encode())
            await response.write_eof()
        except TimeoutError:
            budget.cut += 1
            log.info("%s: reader took no data for %g s; disconnecting", request.path, write_timeout_s)
            _abort(request)  # frees what the transport still holds for it
        except ConnectionError as exc:  # the reader left (aiohttp's ClientConnectionResetError included)
            log.debug("%s: reader gone: %s", request.path, exc)
            # aiohttp keeps this exception in its drain future, whose waiting frame the
            # traceback holds: a cycle through this frame and its backlog. Drop the traceback.
            exc.with_traceback(None)
            _abort(request)
    # Returned, not raised: an exception leaving the handler would tie this frame (and the
    # backlog it holds, 10,000 envelopes) into a cycle with its traceback, which only a full
    # garbage collection frees (rtplay.runtime.memory); aiohttp finishes a spent response quietly.
    return response


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def hook(budget: AnswerBudget) -> Callable[[web.Application], None]:
    """An app hook storing ``budget`` (shared by every app the server builds)."""

    def store(app: web.Application) -> None:
        app[ANSWERS] = budget

    return store
