"""The process boundary is the package boundary: who may import whom, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rtplay.compat import IncompatibleLibrary, check_all, require

ROOT = Path(__file__).resolve().parent.parent


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module each ``.py`` file under ``package`` imports (absolute names)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: relative import"
                assert node.module is not None
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_servers_import_only_the_protocol_from_rtplay() -> None:
    bad = {
        path: sorted(n for n in names if within(n, "rtplay") and not within(n, "rtplay.protocol"))
        for path, names in imports_of("servers").items()
    }
    assert {p: n for p, n in bad.items() if n} == {}


def test_protocol_imports_nothing_from_servers_or_the_rest_of_rtplay() -> None:
    bad = {
        path: sorted(
            n for n in names if within(n, "servers") or (within(n, "rtplay") and not within(n, "rtplay.protocol"))
        )
        for path, names in imports_of("rtplay/protocol").items()
    }
    assert {p: n for p, n in bad.items() if n} == {}


def test_the_client_side_imports_nothing_from_servers() -> None:
    """The clients, session, CLI and TUI reach the server only over the network."""
    bad = {
        path: sorted(n for n in names if within(n, "servers"))
        for path, names in imports_of("rtplay").items()
    }
    assert {p: n for p, n in bad.items() if n} == {}


def test_the_checker_sees_a_violation() -> None:
    """The walk above finds imports at any depth (a function-level import counts too)."""
    found = imports_of("rtplay")
    assert "rtplay.tui.app" in found["rtplay/cli/main.py"]  # imported inside run's function body


def test_installed_libraries_have_the_internals_we_read() -> None:
    check_all()


def test_a_missing_internal_names_library_and_version() -> None:
    with pytest.raises(IncompatibleLibrary, match=r"aioquic 9\.9 lacks X,.*aioquic 1\.2-1\.7"):
        require("aioquic", "9.9", "1.2-1.7", False, "X")
