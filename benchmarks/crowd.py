"""Crowd figures per retry policy: what N clients reconnecting after one outage do.

    unshare -n -- bash -c 'ip link set lo up && ulimit -n 20000 && \\
        python benchmarks/crowd.py --transport ws --clients 1000 exponential:none exponential:full'

    # the issue's 10,000: the thundering-herd scenario's policies (4 s doubling to 10 s), a longer run
    python benchmarks/crowd.py --clients 10000 --duration 90 exponential:none,base=4,cap=10 exponential:full,base=4,cap=10

    python benchmarks/crowd.py --steady --clients 1000 ws sse longpoll   # clients per core, memory
    python benchmarks/crowd.py --clients 10000 --cluster tcp://HOST:8786 exponential:none   # a user's cluster

Runs a scenario like ``rtplay run --clients N --fault outage=5s@3s --retry T=POLICY`` (with
the thundering-herd scenario's keep-alive settings) once per policy (each in
its own process, one after the other) and prints a Markdown table of the report's ``crowd``
entry plus the server's peak accepts/s and loop lag. The crowd runs on Dask: a LocalCluster of
one worker process per core, or the scheduler given by ``--cluster``. Run it inside ``unshare -n`` with a
raised ``ulimit -n``; on a shared machine the figures move with the load (say so with them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HEADER = (
    "| policy | peak attempts/s | peak connects/s | all back (s) | attempts | delay p50/p99 (ms) "
    "| attempt lag p99/max (ms) | lost | pending | lost_clients | workers | server accepts/s peak | loop lag max (ms) | load avg |"
)


STEADY_HEADER = (
    "| transport | clients | msg/s each | worker CPU (% of a core) | clients per core | steady CPU (% of a core) "
    "| steady clients per core | worker KB per client | server KB per connection | server loop lag max (ms) |"
)

#: Steady CPU is sampled from this many seconds into the run (the crowd connected, the first
#: messages through) to one second before its end: the workers' start-up is left out.
STEADY_FROM_S = 3.0

#: The crowd's worker processes: Dask's spawned workers (or the home-made pool's, for a before/after).
WORKER_CMDLINE = re.compile(r"spawn_main|crowd_worker")


#: Keep-alive as in the thundering-herd scenario: a thousand sockets pinging every 2 s (the
#: playground's setting) would measure the heartbeat, not the retry policy.
HEARTBEAT_KNOBS = {"ws": "ping_interval = 20\nping_timeout = 10\n", "wt": "ping_interval = 20\nping_timeout = 10\n"}


def scenario_text(transport: str, clients: int, policy: str | None, duration: float, rate: float) -> str:
    faults = '["outage=5s@3s"]' if policy is not None else "[]"
    knobs = HEARTBEAT_KNOBS.get(transport, "") + (f'retry = "{policy}"\n' if policy is not None else "")
    text = (
        f'duration = {duration}\nrate = {rate}\ntransports = ["{transport}"]\nfaults = {faults}\n'
        f"crowd = {clients}\n[server]\nws_heartbeat_s = 30\n"
    )
    return text + (f"[clients.{transport}]\n{knobs}" if knobs else "")


def run(
    transport: str, clients: int, policy: str | None, duration: float, rate: float, cluster: str | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        scenario = Path(tmp) / "crowd.toml"
        scenario.write_text(scenario_text(transport, clients, policy, duration, rate))
        cmd = [sys.executable, "-m", "rtplay.cli.main", "run", str(scenario), "--quiet", "--json", str(out)]
        cmd += ["--cluster", cluster] if cluster else []
        if policy is not None:
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return json.loads(out.read_text())
        steady = steady_cpu_s([c for c in cmd if c != "--quiet"], duration)
        return json.loads(out.read_text()) | {"steady_cpu": steady}


def worker_cpu_s(root: Any) -> float:
    """CPU seconds so far of the crowd's worker processes under ``root`` (a psutil.Process)."""
    total = 0.0
    for proc in root.children(recursive=True):
        try:
            if WORKER_CMDLINE.search(" ".join(proc.cmdline())):
                times = proc.cpu_times()
                total += times.user + times.system
        except Exception:  # the process ended between listing and reading
            continue
    return total


def steady_cpu_s(cmd: list[str], duration: float) -> tuple[float, float]:
    """Run ``cmd`` and read its progress lines; the workers' (CPU seconds, seconds) from
    STEADY_FROM_S into the run to a second before its end."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, marks = psutil.Process(proc.pid), []
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.match(r"\[\s*([\d.]+)s\]", line)
        if match and not marks and float(match.group(1)) >= STEADY_FROM_S:
            marks.append((float(match.group(1)), worker_cpu_s(root)))
        elif match and len(marks) == 1 and float(match.group(1)) >= duration - 1:
            marks.append((float(match.group(1)), worker_cpu_s(root)))
    proc.wait()
    (t0, c0), (t1, c1) = marks
    return c1 - c0, t1 - t0


def row(policy: str, report: dict[str, Any], transport: str) -> str:
    c = report["transports"][transport]["crowd"]
    load = report["server_load"]
    d = {k: "-" if v is None else f"{v:.0f}" for k, v in c["reconnect_delay_ms"].items()}
    back = "never" if c["time_to_all_reconnected_s"] is None else f"{c['time_to_all_reconnected_s']:.1f}"
    lag = {k: "-" if v is None else f"{v:.0f}" for k, v in c["attempt_lag_ms"].items()}
    return (
        f"| `{policy}` | {c['peak_attempts_per_s']:.0f} | {c['peak_connects_per_s']:.0f} | {back} | "
        f"{c['total_attempts']} | {d['p50']}/{d['p99']} | {lag['p99']}/{lag['max']} | {c['lost_total']} | {c['pending_total']} | "
        f"{c['lost_clients']} | {len(c['workers'])} | "
        f"{load['peak_accepts_per_s']:.0f} | {load['max_loop_lag_ms']:.0f} | {os.getloadavg()[0]:.1f} |"
    )


def steady_row(transport: str, clients: int, rate: float, report: dict[str, Any]) -> str:
    """Clients per core: the workers' CPU over the run (start-up included) against its length."""
    c = report["transports"][transport]["crowd"]
    load = report["server_load"]
    share = c["worker_cpu_s"] / report["duration_s"]
    per_core = clients / share if share else float("inf")
    cpu, seconds = report["steady_cpu"]
    steady = cpu / seconds
    return (
        f"| {transport} | {clients} | {rate:g} | {share * 100:.0f} | {per_core:.0f} | {steady * 100:.0f} | "
        f"{clients / steady if steady else float('inf'):.0f} | "
        f"{c['worker_rss_kb_per_client']:.0f} | {load['rss_kb_per_connection']} | {load['max_loop_lag_ms']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policies", nargs="+", help="retry policies (with --steady: transports)")
    parser.add_argument("--transport", default="ws")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=25.0)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--steady", action="store_true", help="no fault: the positional args are transports")
    parser.add_argument("--cluster", default=None, help="a Dask scheduler (tcp://HOST:8786); default a LocalCluster")
    parser.add_argument("--keep", type=Path, default=None, help="also write each run's report (JSON) into this directory")
    args = parser.parse_args()
    if args.steady:
        print(STEADY_HEADER)
        print("|" + "---|" * (STEADY_HEADER.count("|") - 1))
        for transport in args.policies:
            report = run(transport, args.clients, None, args.duration, args.rate, args.cluster)
            print(steady_row(transport, args.clients, args.rate, report), flush=True)
        return
    print(f"{args.transport}, {args.clients} clients, outage 5 s at 3 s, {args.rate:g} msg/s, {args.duration:g} s")
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for policy in args.policies:
        report = run(args.transport, args.clients, policy, args.duration, args.rate, args.cluster)
        print(row(policy, report, args.transport), flush=True)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / f"{args.transport}-{policy.replace(':', '-').replace(',', '_')}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
