"""Target mode's options, from the command line or a scenario's ``[target]`` table.

    [target.sse]                      # one table per target transport
    url = "http://127.0.0.1:8081/events"
    seq = "sse-id"                    # the --seq grammar (SSE's default: sse-id; others: none)
    time = "json:sent_ms:ms"          # the --time grammar (default none)
    [target.ws]
    url = "ws://127.0.0.1:8082/live"
    seq = "json:seq"
    resume = "?since={seq}"           # the --resume grammar (default: none)

Command-line flags take precedence over the scenario's values.
"""

from __future__ import annotations

from typing import Any

from rtplay.model.identity import (
    NO_SEQ,
    Identity,
    IdentityError,
    SeqSource,
    parse_resume,
    parse_seq,
    parse_target,
    parse_time,
)

#: The keys of one ``[target.TRANSPORT]`` table.
TARGET_KEYS = {"url", "seq", "time", "resume"}


def default_seq(transport: str) -> SeqSource:
    """SSE's seq is its event id by default (what Last-Event-ID resumes from); no other
    transport has a standard place for one."""
    return SeqSource("sse-id") if transport == "sse" else NO_SEQ


def parse_target_table(table: Any) -> dict[str, dict[str, str]]:
    """A scenario's ``[target]`` table → transport → its keys (IdentityError naming the problem)."""
    if not isinstance(table, dict) or not table:
        raise IdentityError("[target] must hold one table per transport, e.g. [target.sse] url = \"http://…\"")
    out: dict[str, dict[str, str]] = {}
    for transport, keys in table.items():
        if not isinstance(keys, dict) or "url" not in keys or set(keys) - TARGET_KEYS:
            optional = ", ".join(sorted(TARGET_KEYS - {"url"}))
            raise IdentityError(f"[target.{transport}] needs url and may set {optional}")
        if not all(isinstance(v, str) for v in keys.values()):
            raise IdentityError(f"[target.{transport}]: every value is a string")
        parse_target(f"{transport}={keys['url']}")
        out[transport] = dict(keys)
    identities(out)  # every value parses
    return out


def merge(
    tables: dict[str, dict[str, str]],
    targets: list[tuple[str, str]],
    seqs: list[tuple[str, str]],
    times: list[tuple[str, str]],
    resumes: list[tuple[str, str]],
) -> dict[str, dict[str, str]]:
    """The scenario's tables with the command line's ``--target/--seq/--time/--resume`` on top."""
    out = {t: dict(keys) for t, keys in tables.items()}
    for key, pairs in (("url", targets), ("seq", seqs), ("time", times), ("resume", resumes)):
        for transport, value in pairs:
            if key != "url" and transport not in out and transport not in dict(targets):
                raise IdentityError(f"--{key} {transport}=…: there is no --target {transport}=URL")
            out.setdefault(transport, {})[key] = value
    return out


def identities(tables: dict[str, dict[str, str]]) -> dict[str, Identity]:
    """Each target's stated identity (defaults filled in)."""
    out = {}
    for transport, keys in tables.items():
        seq = parse_seq(keys["seq"]) if "seq" in keys else default_seq(transport)
        if seq.kind == "sse-id" and transport != "sse":
            raise IdentityError(f"--seq {transport}=sse-id: only an SSE stream has event ids")
        time = parse_time(keys.get("time", "none"))
        resume = parse_resume(keys["resume"]) if "resume" in keys else None
        out[transport] = Identity(seq, time, resume)
    return out
