"""A run that cannot end well does not start: a clear message and exit 2, before any work."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtplay.cli import main as cli_main
from rtplay.cli.main import main
from rtplay.engine.browser import BrowserUnavailable, chromium_path


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command starts a server (the work a refused command must not do)."""

    def launch(*args: object, **kwargs: object) -> None:
        raise AssertionError("a server was launched for a command that should have been refused")

    monkeypatch.setattr(cli_main.ServerProcess, "launch", launch)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that another program (this socket) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("flag", ["--json", "--log-messages"])
def test_a_report_path_in_a_missing_directory_is_refused_before_the_run(
    flag: str, tmp_path: Path, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nonexistent" / "dir" / "r.json"
    assert main(["run", "--duration", "1", flag, str(path)]) == 2
    err = capsys.readouterr().err
    assert f"rtplay run: {flag} {path}: the directory {path.parent} does not exist" in err
    assert "Traceback" not in err


def test_a_report_path_that_is_a_directory_is_refused(tmp_path: Path, no_work: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_taken_http_port_is_named_on_the_terminal(taken_port: int, no_work: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--http-port", str(taken_port)]) == 2  # the playground: said before it needs a terminal
    assert f"--http-port {taken_port}: the port is in use" in capsys.readouterr().err
    assert main(["run", "--http-port", str(taken_port)]) == 2
    assert f"--http-port {taken_port}: the port is in use" in capsys.readouterr().err


def test_a_taken_web_port_is_a_message_not_a_traceback(
    taken_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "cmd_web", lambda args: pytest.fail("the page was served on a taken port"))
    assert main(["--web", "--web-port", str(taken_port)]) == 2
    assert f"rtplay: --web-port {taken_port}: the port is in use" in capsys.readouterr().err


def test_a_bad_rtplay_chromium_is_refused_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RTPLAY_CHROMIUM", "/bad/path")
    with pytest.raises(BrowserUnavailable, match="RTPLAY_CHROMIUM=/bad/path"):
        chromium_path()
    assert main(["run", "--browser"]) == 2
    assert "rtplay run: RTPLAY_CHROMIUM=/bad/path: no such file" in capsys.readouterr().err
    not_executable = tmp_path / "chromium"
    not_executable.write_text("")
    not_executable.chmod(stat.S_IRUSR)
    monkeypatch.setenv("RTPLAY_CHROMIUM", str(not_executable))
    assert main(["--browser"]) == 2
    assert "not executable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[server]\nsse_retry = 500\n", "[server]: unknown key(s) sse_retry; expected some of"),
        ("[clients.ws]\nping_intervall = 5\n", "[clients.ws]: unknown key(s) ping_intervall; expected some of"),
        ("[clients.ws]\nretry = 'socketio'\ncrowd = 0\n", "unknown key(s) crowd (a top-level key: move it above every [table])"),
        ("[clients.poll]\nretry = 'socketio'\n", "[clients.poll]: unknown key(s) retry; expected some of interval"),
    ],
)
def test_unknown_scenario_keys_are_named(
    table: str, message: str, tmp_path: Path, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text("duration = 1\n" + table)
    assert main(["run", str(path)]) == 2
    assert message in capsys.readouterr().err
