"""Every example in README.md runs green as written.

The examples are found, not listed: every ```toml block and every ``rtplay …`` line of a code
block (4-space indented or fenced), so a new section's examples are picked up by itself.
Each TOML block is run as a scenario (``rtplay run BLOCK.toml``); when the paragraph just
above it names a file (``save this one as `NAME.toml```) it is also written under that
name, for the commands that run it. Commands run in a scratch directory, several at a time
(most of a run is waiting for its fault timeline), each expecting exit 0.

What is not run, and why, is decided by the command itself:
- the playground (``rtplay`` with no subcommand): it needs a terminal (tests/tui drives it);
- ``rtplay serve`` and ``rtplay --web`` run until stopped: they are started, must say they
  are ready, and are stopped with Ctrl-C (SIGINT), which must end them with status 0;
- :data:`LOAD_EXAMPLES` and :data:`RUN_ELSEWHERE`, named below with their reason.

A block that starts processes of its own (the example servers, a Dask scheduler and worker)
is one shell script: it is run whole with bash from the checkout, one script at a time (they
use fixed ports), and every process it started is ended after it. A scenario with a
``[target]`` table runs against the example servers, started for it the same way. The
commands of one block run one after another in one directory (``rtplay report`` reads what
the ``rtplay run`` above it wrote); blocks run side by side.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtplay.cli.scenario import builtin_names, load_scenario

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: Examples that load a whole machine for minutes: the test suite cannot afford them.
LOAD_EXAMPLES = {
    "rtplay run thundering-herd": "1,000 clients, two 30 s variants; benchmarks/crowd.py measures it",
}

#: Examples another test already runs as written: the suite runs each shipped scenario once.
RUN_ELSEWHERE = {
    "rtplay run drop-all": "tests/cli/test_scenario.py runs every shipped scenario as `rtplay run NAME`",
}

#: Longest a headless example may take (its duration, start-up and settle, on a loaded machine).
RUN_TIMEOUT_S = 120.0

#: Examples run at once: each is mostly waiting on its timeline, two cores are enough for three.
PARALLEL = 3

#: How long a long-running command may take to say it is ready.
READY_TIMEOUT_S = 30.0

#: What each long-running command prints once it is ready.
READY_LINES = {"serve": "Ctrl-C stops it.", "--web": "rtplay playground in a browser"}


@dataclass(frozen=True)
class Example:
    text: str
    """The command line or TOML block, as the README has it."""
    kind: str
    """``toml``, ``run`` (to completion), ``server`` (until stopped), ``playground`` or ``script``."""
    files: tuple[tuple[str, str], ...] = ()
    """(name, TOML) files the example needs in its directory."""
    block: int = 0
    """Which code block of the README it comes from (a block's commands share a directory)."""

    @property
    def id(self) -> str:
        return self.text.splitlines()[0][:60]


def code_blocks(text: str) -> Iterator[tuple[str, str, str]]:
    """(language, body, the paragraph before it) of every fenced or 4-space indented block."""
    lines = text.splitlines()
    i, paragraph = 0, []
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang, body = line[3:].strip(), []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            yield lang, "\n".join(body) + "\n", " ".join(paragraph)
            paragraph = []
        elif line.startswith("    ") and (not paragraph or not lines[i - 1].strip()) and not line.lstrip().startswith(("|", "-")):
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            yield "", "\n".join(body), " ".join(paragraph)
            paragraph = []
            continue
        elif line.strip():
            paragraph.append(line)
        else:
            paragraph = [] if not paragraph else paragraph
        i += 1


def readme_examples(text: str) -> list[Example]:
    """Every example of the README, in order (see the module docstring)."""
    examples: list[Example] = []
    named: list[tuple[str, str]] = []
    for block, (lang, body, before) in enumerate(code_blocks(text)):
        body = body.replace("\\\n", " ")  # a shell line continued on the next
        if lang != "toml" and any(line.startswith(SCRIPT_STARTS) for line in body.splitlines()):
            examples.append(Example(body, "script", block=block))
            continue
        if lang == "toml":
            if "[target" in body:
                examples.append(Example(with_example_servers(body), "script", block=block))
                continue
            name = re.search(r"`([\w.-]+\.toml)`", before)
            if name:
                named.append((name.group(1), body))
            examples.append(Example(body, "toml", block=block))
            continue
        for line in body.splitlines():
            if line.split(maxsplit=1)[:1] != ["rtplay"]:
                continue
            argv = shlex.split(line, comments=True)
            if argv[-1:] == ["&"]:  # started in the background, as a server is
                argv = argv[:-1]
            if argv[:1] == ["rtplay"]:
                examples.append(Example(shlex.join(argv), kind_of(argv[1:]), block=block))
    commands = " ".join(e.text for e in examples if e.kind != "toml")
    run_by_name = {body for name, body in named if name in commands}  # run once, by its command
    return [Example(e.text, e.kind, tuple(named), e.block) for e in examples if e.text not in run_by_name]


#: How a block that is a shell script of its own begins one of its lines.
SCRIPT_STARTS = ("python examples/", "dask ")

#: The example servers a ``[target]`` scenario of the README runs against (as its walk-through
#: starts them), and the wait until both listen.
EXAMPLE_SERVERS = """python examples/sse_server.py --port 8081 --log /tmp/sse-published.jsonl &
python examples/ws_server.py --port 8082 --resume --log /tmp/ws-published.jsonl &
for port in 8081 8082; do until (: > /dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.2; done; done
"""


def with_example_servers(scenario: str) -> str:
    """A script that runs ``scenario`` with the example servers up."""
    return EXAMPLE_SERVERS + f"""scenario=$(mktemp --suffix=.toml)
cat > "$scenario" <<'TOML'
{scenario}TOML
rtplay run --quiet "$scenario"
"""


def kind_of(args: list[str]) -> str:
    if args[:1] == ["serve"] or "--web" in args:
        return "server"
    if args[:1] in (["run"], ["report"]) or "--headless" in args or "--version" in args or "--help" in args:
        return "run"
    return "playground"  # the playground, a replay, a proxy's panes: they need a terminal


EXAMPLES = readme_examples(README.read_text())


def command(example: Example, workdir: Path) -> list[str]:
    for name, body in example.files:
        (workdir / name).write_text(body)
    if example.kind == "toml":
        scenario = workdir / "example.toml"
        scenario.write_text(example.text)
        return [sys.executable, "-m", "rtplay.cli.main", "run", "--quiet", str(scenario)]
    return [sys.executable, "-m", "rtplay.cli.main", *shlex.split(example.text)[1:]]


def environment() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


#: Examples that listen on the README's fixed ports (8080, 8081, 3000, …) take turns, across
#: the suite's worker processes too: a file lock.
PORTS_LOCK = Path(tempfile.gettempdir()) / "rtplay-readme-ports.lock"


@contextlib.contextmanager
def fixed_ports() -> Iterator[None]:
    with PORTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def uses_fixed_ports(example: Example) -> bool:
    return example.kind in ("script", "server") or bool(re.search(r"127\.0\.0\.1:\d|-port \d", example.text))


def run_script(example: Example) -> subprocess.CompletedProcess[str]:
    """A README shell block, run whole from the checkout; whatever it left running is ended."""
    return _run_script(example)


def _run_script(example: Example) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        # On any exit, end the jobs the script left running (their pipes would hold ours open).
        ["bash", "-e", "-c", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + example.text], cwd=ROOT,
        env=environment() | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # its background servers
        except ProcessLookupError:
            pass
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_to_completion(example: Example, workdir: Path) -> subprocess.CompletedProcess[str]:
    if example.kind == "script":
        return run_script(example)
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        command(example, workdir), cwd=workdir, env=environment(), capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
    )


def to_run() -> list[Example]:
    """The examples that run to completion, but :data:`LOAD_EXAMPLES` and :data:`RUN_ELSEWHERE`
    (and ``--browser`` ones without Playwright: ``pip install -e '.[browser]'``)."""
    wanted = [e for e in EXAMPLES if e.kind in ("run", "toml", "script") and e.text not in LOAD_EXAMPLES | RUN_ELSEWHERE]
    if "playwright" not in sys.modules and _missing("playwright"):
        wanted = [e for e in wanted if "--browser" not in e.text]
    return wanted


def run_all(wanted: list[Example], base: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every example of ``wanted``, a block at a time per lane (:data:`PARALLEL` lanes), the
    blocks that state the longest durations first."""
    blocks: dict[int, list[Example]] = {}
    for example in wanted:
        blocks.setdefault(example.block, []).append(example)

    def run_block(examples: list[Example], workdir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
        with fixed_ports() if any(uses_fixed_ports(e) for e in examples) else contextlib.nullcontext():
            return {e.text: run_to_completion(e, workdir / f"ex{i}" if e.kind == "toml" else workdir)
                    for i, e in enumerate(examples)}

    longest_first = sorted(blocks.items(), key=lambda block: -sum(map(expected_s, block[1])))
    with ThreadPoolExecutor(PARALLEL) as pool:
        done = [pool.submit(run_block, examples, base / f"block{n}") for n, examples in longest_first]
    return {text: result for future in done for text, result in future.result().items()}


def problem(example: Example, result: subprocess.CompletedProcess[str]) -> str | None:
    """What is wrong with ``example``'s run: a non-zero exit, or a traceback of rtplay's (a
    script's other programs, a Dask worker it stops, log their own); None when it ran green."""
    if result.returncode != 0:
        return f"{example.text}\n--- exit {result.returncode}; stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    ours = re.search(r'File "[^"]*/(rtplay|servers)/', result.stderr)
    if ours is not None or ("Traceback" in result.stderr and example.kind != "script"):
        return f"{example.text}\n--- traceback in stderr\n{result.stderr[-3000:]}"
    return None


#: What an example without a stated duration is taken to run for (start-up and settle).
UNSTATED_S = 5.0


def expected_s(example: Example) -> float:
    """Roughly how long ``example`` runs: the duration it states (``--duration N``, a TOML
    block's or a shipped scenario's ``duration``), else :data:`UNSTATED_S`."""
    if (m := re.search(r"--duration[ =](\d+(?:\.\d+)?)", example.text)) or (
        m := re.search(r"^duration\s*=\s*(\d+(?:\.\d+)?)", example.text, re.MULTILINE)
    ):
        return float(m.group(1))
    argv = shlex.split(example.text) if example.kind != "toml" else []
    if argv[1:2] == ["run"] and len(argv) > 2 and argv[2] in builtin_names():
        return load_scenario(argv[2]).duration
    return UNSTATED_S


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def test_the_readme_has_examples_of_each_kind() -> None:
    kinds = {e.kind for e in EXAMPLES}
    assert kinds == {"toml", "run", "server", "playground", "script"}
    assert any(e.files for e in EXAMPLES), "the scenario the README saves as a file"


@pytest.mark.long
@pytest.mark.timeout(600)
def test_the_readme_examples_run_green(tmp_path: Path) -> None:
    """Every example that runs to completion exits 0 with no traceback of rtplay's; a failure
    names its example and does not hide another's. One test for them all: they run side by
    side (:func:`run_all`), and a module fixture shared by one test per example ran them all
    again on each xdist worker that took one of those tests."""
    assert set(LOAD_EXAMPLES) | set(RUN_ELSEWHERE) <= {e.text for e in EXAMPLES}, "a reason for an example no more"
    wanted = to_run()
    results = run_all(wanted, tmp_path)
    failures = [why for e in wanted if (why := problem(e, results[e.text])) is not None]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind == "server"], ids=lambda e: e.id)
def test_a_readme_server_starts_and_stops_cleanly(example: Example, tmp_path: Path) -> None:
    with fixed_ports():
        start_and_stop(example, tmp_path)


def start_and_stop(example: Example, tmp_path: Path) -> None:
    word = "serve" if shlex.split(example.text)[1:2] == ["serve"] else "--web"
    process = subprocess.Popen(
        command(example, tmp_path), cwd=tmp_path, env=environment(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    timer = threading.Timer(READY_TIMEOUT_S, process.kill)  # a server that never gets ready
    timer.start()
    try:
        assert process.stdout is not None
        seen: list[str] = []
        for line in process.stdout:  # bounded by the timeout in finally
            seen.append(line)
            if READY_LINES[word] in line:
                break
        assert any(READY_LINES[word] in line for line in seen), "".join(seen) + (process.stderr.read() if process.stderr else "")
        assert not any(line.startswith("RTPLAY-READY") for line in seen), "the hand-off line is for a parent process"
        process.send_signal(signal.SIGINT)
        assert process.wait(READY_TIMEOUT_S) == 0
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind == "playground"], ids=lambda e: e.id)
def test_a_readme_playground_command_is_one_the_playground_accepts(example: Example) -> None:
    """Not run: the playground needs a terminal (tests/tui drives it). Its flags must parse."""
    from rtplay.cli.args import build_parser

    args = build_parser().parse_args(shlex.split(example.text)[1:])
    assert args.command in (None, "replay", "proxy")


def test_the_scenario_sample_of_run_help_keeps_top_level_keys_at_the_top() -> None:
    """`rtplay run --help` shows a sample scenario: a top-level key after a [table] would
    silently become part of that table (``crowd`` an expectation of sse)."""
    from rtplay.cli import scenario

    doc = (scenario.__doc__ or "").split("\n", 1)[1]
    sample = tomllib.loads("\n".join(line[4:] for line in doc.splitlines()))
    assert sample["crowd"] == 1000
    assert "crowd" not in sample["expect"]["sse"]
