"""Items 1, 7 and 12: DNS rebinding names, where the token goes, and how its file is made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from rtplay.runtime.token import (
    TOKEN_ENV,
    TokenFileError,
    find_token,
    token_path,
    write_token,
)
from servers.runner import Server
from tests.hostile.conftest import HOST


async def _post_fault(server: Server, host_header: str) -> httpx.Response:
    origin = f"http://{host_header}"
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(
            server.control_url + "/faults", json={"kind": "outage", "value": 3600},
            headers={"Host": host_header, "Origin": origin},
        )


@pytest.mark.parametrize("name", ["127.evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "127.1"])
async def test_a_rebinding_name_that_looks_like_loopback_is_refused(server: Server, name: str) -> None:
    response = await _post_fault(server, f"{name}:{server.control.port}")
    assert response.status_code == 403, response.text
    assert not server.faults.active(server.ctx.clock())


async def test_a_loopback_name_with_another_port_is_refused(server: Server) -> None:
    """A rebinding page on port P sends Host 127.0.0.1:P, not the control port."""
    response = await _post_fault(server, f"127.0.0.1:{server.control.port + 1}")
    assert response.status_code == 403
    assert not server.faults.active(server.ctx.clock())


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "127.0.0.2", "LOCALHOST"])
async def test_exact_loopback_names_with_the_control_port_pass(server: Server, name: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(server.control_url + "/rate", headers={"Host": f"{name}:{server.control.port}"})
    assert response.status_code == 200


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    return tmp_path


def test_the_token_goes_only_to_the_address_it_was_written_for(runtime_dir: Path) -> None:
    write_token(token_path(8001), "secret", "127.0.0.1", 8001)
    assert find_token("http://127.0.0.1:8001/control") == "secret"
    assert find_token("http://localhost:8001/control") == "secret"
    assert find_token("http://other.example:8001/control") is None
    assert find_token("http://10.0.0.9:8001/control") is None
    assert find_token("http://127.0.0.1:8002/control") is None


def test_a_server_bound_to_one_address_gets_its_token_there_only(runtime_dir: Path) -> None:
    write_token(token_path(8001), "secret", "192.0.2.7", 8001)
    assert find_token("http://192.0.2.7:8001/control") == "secret"
    assert find_token("http://127.0.0.1:8001/control") is None
    write_token(token_path(8001), "wild", "0.0.0.0", 8001)
    assert find_token("http://[::1]:8001/control") == "wild"
    assert find_token("http://evil.example:8001/control") is None


def test_an_old_token_file_without_its_address_is_not_sent(runtime_dir: Path) -> None:
    path = token_path(8001)
    path.parent.mkdir(parents=True)
    path.write_text("secret\n")
    assert find_token("http://127.0.0.1:8001/control") is None


def test_the_token_file_is_created_fresh_0600(runtime_dir: Path) -> None:
    path = token_path(8001)
    path.parent.mkdir(parents=True)
    path.write_text("old\n")
    path.chmod(0o644)
    write_token(path, "secret", HOST, 8001)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines()[0] == "secret"


def test_a_symlink_at_the_token_path_is_refused_not_followed(runtime_dir: Path, tmp_path: Path) -> None:
    path = token_path(8001)
    path.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    path.symlink_to(target)
    with pytest.raises(TokenFileError, match="symlink"):
        write_token(path, "secret", HOST, 8001)
    assert target.read_text() == "untouched\n"


def test_another_owners_token_file_is_refused(runtime_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = token_path(8001)
    path.parent.mkdir(parents=True)
    path.write_text("theirs\n")
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)  # as if another user owned it
    with pytest.raises(TokenFileError, match="belongs to"):
        write_token(path, "secret", HOST, 8001)
    assert path.read_text() == "theirs\n"
