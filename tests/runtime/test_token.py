"""A control token is something a user pastes after ``--token``."""

from __future__ import annotations

from rtplay.cli.args import build_parser
from rtplay.proxy.api import api_token
from rtplay.runtime.token import new_token


def test_every_token_passes_as_a_command_line_argument() -> None:
    # URL-safe tokens began with "-" one time in 64: `rtplay run --token -x…` then stopped with
    # "argument --token: expected one argument" (a two-host test failed on it, now and then).
    parser = build_parser()
    for _ in range(2000):  # the old tokens: all 2,000 free of a leading "-" one time in 10^13
        token = new_token()
        assert parser.parse_args(["run", "--token", token]).token == token
        assert len(token) == 64  # 256 bits


def test_the_proxy_apis_token_is_drawn_the_same_way() -> None:
    token = api_token("192.0.2.1")  # bound beyond loopback (nothing is bound here)
    assert token is not None and not token.startswith("-") and len(token) == 64
    assert api_token("127.0.0.1") is None
