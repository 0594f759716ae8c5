"""The one loopback rule both APIs (the server's control API, the proxy's) apply to ``Host``."""

from __future__ import annotations

import pytest

from rtplay.runtime.loopback import host_refusal, is_loopback_host


@pytest.mark.parametrize("host", ["localhost", "LocalHost", "127.0.0.1", "127.9.8.7", "::1", "[::1]"])
def test_loopback_names_and_literals(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["127.evil.example", "localhost.evil.example", "127.1", "10.0.0.1", "::2", "", "0.0.0.0"])
def test_names_that_only_look_like_loopback_are_not(host: str) -> None:
    assert not is_loopback_host(host)


def test_the_host_must_name_the_listener_and_its_port() -> None:
    assert host_refusal("127.0.0.1:8001", 8001) is None
    assert host_refusal("[::1]:8001", 8001) is None
    assert host_refusal("localhost", 80) is None  # no port: the http default
    assert "port" in (host_refusal("localhost", 8001) or "")
    assert "port" in (host_refusal("127.0.0.1:8002", 8001) or "")
    assert "not a loopback name" in (host_refusal("127.evil.example:8001", 8001) or "")
    assert "malformed" in (host_refusal("127.0.0.1:99999", 99999) or "")
    assert "malformed" in (host_refusal("[::1:8001", 8001) or "")
