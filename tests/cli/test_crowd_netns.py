"""A crowd from another host: two network namespaces joined by a veth pair.

The "server host" runs ``rtplay serve`` and a Dask scheduler, the "client host" a Dask worker;
``rtplay run --server … --cluster …`` (on the server host) puts :data:`CLIENTS` ws clients on
the client host's worker, through a 3 s outage. The addresses are a /30 that exists only between the two
namespaces; the test removes both namespaces, also when it fails. Needs root and ``ip netns``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2's `ip netns`"
)

#: How long each process may take to say it is ready (they import rtplay or distributed).
READY_S = 30.0

#: How long each process may take to stop once told to (they stop in well under a second).
STOP_S = 10.0

#: The crowd issue 22 asks to see come back from another host: a thousand clients reconnect
#: as a wave through the outage, and a share of them missing would show.
CLIENTS = 1000

#: The run: the outage from 1 s to 4 s, then at most the retry cap (2 s) until every client is
#: back. The spare for a thousand handshakes on a busy machine is the settle after it: it ends
#: as soon as every client has everything (up to 5 s), where a longer run waited its seconds out.
DURATION_S = 6


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def two_hosts() -> Iterator[tuple[str, str, str, str]]:
    """(server ns, client ns, server address, client address), removed on exit."""
    tag = f"{os.getpid() % 100000}"
    server, client = f"rtps{tag}", f"rtpc{tag}"
    subnet = f"10.213.{os.getpid() % 250}"
    made: list[str] = []
    try:
        for ns in (server, client):
            ip("netns", "add", ns)
            made.append(ns)
        ip("link", "add", f"vs{tag}", "netns", server, "type", "veth", "peer", "name", f"vc{tag}", "netns", client)
        for ns, dev, addr in ((server, f"vs{tag}", f"{subnet}.1"), (client, f"vc{tag}", f"{subnet}.2")):
            ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot build network namespaces here: {exc.stderr.strip()}")
    try:
        yield server, client, f"{subnet}.1", f"{subnet}.2"
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # the veth pair goes with them


#: The worktree, so that every process in the namespaces imports this rtplay.
ENV = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def start(ns: str, *argv: str, log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-u", *argv], stdout=subprocess.PIPE, stderr=log, text=True,
        env=ENV,
    )


def wait_for_file(path: Path, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + READY_S
    while not (path.exists() and path.stat().st_size > 0):
        assert proc.poll() is None, f"process ended with {proc.returncode}"
        assert time.monotonic() < deadline, f"{path} not written in {READY_S} s"
        time.sleep(0.05)
    return path.read_text()


@pytest.mark.long
def test_a_crowd_on_a_worker_of_another_host_rides_out_an_outage(tmp_path: Path) -> None:
    procs: list[subprocess.Popen[str]] = []
    log = (tmp_path / "procs.log").open("w")
    with two_hosts() as (server_ns, client_ns, server_addr, client_addr):
        try:
            serve = start(server_ns, "-m", "rtplay.cli.main", "serve", "--host", server_addr, "--rate", "10", log=log)
            procs.append(serve)
            sched_file = tmp_path / "scheduler.json"
            procs.append(start(
                server_ns, "-m", "distributed.cli.dask_scheduler", "--host", server_addr, "--port", "0",
                "--no-dashboard", "--scheduler-file", str(sched_file), log=log,
            ))
            scheduler = json.loads(wait_for_file(sched_file, procs[-1]))["address"]
            assert scheduler.startswith(f"tcp://{server_addr}:")
            procs.append(start(
                client_ns, "-m", "distributed.cli.dask_worker", scheduler, "--host", client_addr, "--nthreads", "1",
                "--no-nanny", "--no-dashboard", "--local-directory", str(tmp_path), log=log,
            ))
            assert serve.stdout is not None
            # What `rtplay serve` tells its user: the control line, then the token line.
            control_url = token = None
            for line in serve.stdout:
                if (m := re.search(r"control\s+(http://\S+)/control/status", line)):
                    control_url = m.group(1) + "/control"
                if (m := re.search(r"\btoken\s+(\S+)", line)):
                    token = m.group(1)
                    break
            assert control_url is not None and token is not None, "rtplay serve named no control API"
            # The worker is registered once the scheduler lists it (the run refuses an empty cluster).
            deadline = time.monotonic() + READY_S
            while client_addr not in (tmp_path / "procs.log").read_text():
                assert time.monotonic() < deadline, "the worker never registered"
                time.sleep(0.05)
            report_path = tmp_path / "report.json"
            run = subprocess.run(
                ["ip", "netns", "exec", server_ns, sys.executable, "-m", "rtplay.cli.main", "run",
                 "--server", control_url, "--token", token, "--cluster", scheduler,
                 "--transports", "ws", "--clients", str(CLIENTS), "--retry", "ws=exponential:full,base=0.5,cap=2",
                 "--fault", "outage=3s@1s", "--duration", str(DURATION_S), "--quiet", "--json", str(report_path)],
                capture_output=True, text=True, timeout=120, env=ENV,
            )
            assert run.returncode == 0, run.stderr
        finally:
            # The last started first: a Dask worker whose scheduler had already gone spent its
            # whole stop timeout trying to reach it (10 s of the test, killed at the end).
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(STOP_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
    report = json.loads(report_path.read_text())
    crowd = report["transports"]["ws"]["crowd"]
    assert crowd["clients"] == CLIENTS and crowd["lost_clients"] == 0
    assert crowd["states"]["open"] == CLIENTS  # all reconnected
    assert crowd["lost_total"] == 0 and crowd["pending_total"] == 0
    assert crowd["time_to_all_reconnected_s"] is not None
    assert [(w["host"], w["clients"], w["state"]) for w in crowd["workers"]] == [(client_addr, CLIENTS, "stopped")]
