"""The command line as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtplay.cli.main import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--rate", "fast"], "expected messages per second, got 'fast'"),
        (["run", "--rate", "-5"], "rate must be 0-100000"),
        (["run", "--duration", "0"], "must be a number > 0"),
        (["run", "--duration", "inf"], "must be a number > 0"),
        (["run", "--transports", "poll,carrier-pigeon"], "unknown transport carrier-pigeon"),
        (["serve", "--http-port", "70000"], "expected a port 0-65535"),
        (["run", "--retry", "ws"], "expected TRANSPORT=POLICY (e.g. ws=exponential:full)"),
        (["run", "--retry", "ws=exponential:often"], "jitter must be one of none, full, equal, decorrelated"),
        (["run", "--retry", "poll=immediate"], "unknown transport 'poll'"),
        (["run", "--clients", "many"], "expected 0-10000 clients per transport"),
        (["--retry", "fax=immediate"], "unknown transport 'fax'"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_fault_after_the_end_of_the_run_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--duration", "5", "--fault", "drop@30s"]) == 2
    assert "starts at 30 s, after the run ends (5 s)" in capsys.readouterr().err


def test_a_scoped_outage_is_refused_before_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--duration", "5", "--fault", "outage=2s@1s:ws"]) == 2
    assert "outage takes every listener of the server down: its scope is all, not ws" in capsys.readouterr().err


def test_headless_run_prints_a_table_and_writes_the_json_report(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    result = subprocess.run(
        [sys.executable, "-m", "rtplay.cli.main", "run", "--duration", "1.5", "--rate", "50",
         "--transports", "longpoll,sse,ws", "--json", str(report_path), "--retry", "ws=exponential:full",
         "--fault", "delay=5ms@1s:sse", "--seed", "7"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "published" in result.stderr.splitlines()[0]  # live progress
    table = result.stdout.splitlines()
    assert table[1].split()[:3] == ["transport", "state", "delivered"]
    report = json.loads(report_path.read_text())
    assert set(report["transports"]) == {"longpoll", "sse", "ws"}
    for entry in report["transports"].values():
        assert entry["delivered"] == report["published"] > 0
        assert set(entry) >= {
            "delivered", "lost", "lost_to_reset", "duplicates", "out_of_order", "connects",
            "reconnects", "downtime_s", "latency_ms", "wire_bytes_per_msg",
        }
        assert set(entry["latency_ms"]) == {"p50", "p95", "p99", "max"}
    settings = report["settings"]  # the report says what the run was asked to do
    assert (settings["rate"], settings["duration_s"], settings["transports"]) == (50, 1.5, ["longpoll", "sse", "ws"])
    assert (settings["faults"], settings["seed"], settings["clients"]) == (["delay=5ms@1s:sse"], 7, 0)
    assert settings["retry"] == {"longpoll": "fixed:10", "sse": "eventsource", "ws": "exponential:jitter=full,base=1,cap=30,factor=2"}
    assert settings["versions"]["rtplay"] and settings["versions"]["aiortc"] and settings["versions"]["python"]


async def test_serve_prints_urls_and_the_certificate_hash_the_quic_listener_presents() -> None:
    import asyncio
    import hashlib
    import re
    import ssl

    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration
    from cryptography.hazmat.primitives.serialization import Encoding

    from rtplay.clients.wt_conn import open_connection

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtplay.cli.main", "serve", "--rate", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Ctrl-C"):
            line = await asyncio.wait_for(proc.stdout.readline(), 20)  # type: ignore[union-attr]
            assert line, "serve exited early"
            lines.append(line.decode().strip())
        text = "\n".join(lines)
        for path in ("/poll?since=0", "/sse", "/ws?since=0", "/wt?since=0", "/rtc/offer", "/control"):
            assert path in text
        assert re.search(r"page +http://127\.0\.0\.1:\d+/ ", text)  # the browser page's URL
        printed = re.search(r"certificate SHA-256 ([0-9a-f]{64})", text).group(1)  # type: ignore[union-attr]
        port = int(re.search(r"https://127\.0\.0\.1:(\d+)/wt", text).group(1))  # type: ignore[union-attr]
        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE)
        async with open_connection("127.0.0.1", port, config) as protocol:
            presented = protocol._quic.tls._peer_certificate.public_bytes(Encoding.DER)
        assert hashlib.sha256(presented).hexdigest() == printed
    finally:
        proc.terminate()
        await proc.wait()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("rtplay 0.")


def test_run_help_gives_the_fault_grammar_the_scenario_keys_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "SPEC   := KIND" in out and "SCOPE  := all" in out
    assert "[expect.sse]" in out and "transports = " in out
    assert "exit codes:" in out and "  1  an expectation failed" in out


def test_the_playground_takes_server_ports_and_web_strips_its_own_flags() -> None:
    from rtplay.cli.args import build_parser
    from rtplay.cli.main import web_command

    args = build_parser().parse_args(["--http-port", "8081", "--quic-port", "8444", "--web", "--web-port", "9000"])
    assert (args.http_port, args.quic_port, args.web, args.web_port) == (8081, 8444, True, 9000)
    command = web_command(["--rate", "5", "--web", "--web-port", "9000", "--transports", "ws"])
    assert command.endswith("-m rtplay.cli.main --rate 5 --transports ws")
