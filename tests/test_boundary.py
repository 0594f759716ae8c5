"""The house rules, checked on the source: packages by layer, who may import whom, no import
circles (not even under ``TYPE_CHECKING``), no private names imported across modules, and a
pure ``rtplay.protocol``."""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

from rtplay.compat import ON_DEMAND, IncompatibleLibrary, check_all, require, require_line

ROOT = Path(__file__).resolve().parent.parent

#: Each rtplay package and the rtplay packages it may import (besides itself). The layers run
#: cli → tui → engine (the proxy and the reports beside it) → clients → model / compat / runtime →
#: protocol.
MAY_IMPORT: dict[str, set[str]] = {
    "rtplay.protocol": set(),
    "rtplay.runtime": {"rtplay.protocol"},
    "rtplay.compat": {"rtplay.protocol", "rtplay.runtime"},
    "rtplay.model": {"rtplay.protocol", "rtplay.runtime"},
    "rtplay.clients": {"rtplay.protocol", "rtplay.runtime", "rtplay.compat", "rtplay.model"},
    "rtplay.proxy": {"rtplay.protocol", "rtplay.runtime", "rtplay.model"},
    "rtplay.report": {"rtplay.protocol", "rtplay.runtime", "rtplay.model"},
    "rtplay.engine": {"rtplay.protocol", "rtplay.runtime", "rtplay.compat", "rtplay.model", "rtplay.clients",
                      "rtplay.proxy"},
    "rtplay.tui": {"rtplay.protocol", "rtplay.runtime", "rtplay.compat", "rtplay.model", "rtplay.clients",
                   "rtplay.engine", "rtplay.proxy", "rtplay.report"},
    "rtplay.cli": {"rtplay.protocol", "rtplay.runtime", "rtplay.compat", "rtplay.model", "rtplay.clients",
                   "rtplay.engine", "rtplay.proxy", "rtplay.report", "rtplay.tui"},
}

#: What the server process may import of rtplay: the shared vocabulary and plumbing only.
SERVERS_MAY_IMPORT = {"rtplay.protocol", "rtplay.runtime", "rtplay.compat"}

#: What ``rtplay.protocol`` may import besides itself: the standard library's pure modules.
PURE_STDLIB_DENIED = {"asyncio", "socket", "os", "subprocess", "threading", "selectors", "ssl", "io", "shutil",
                      "tempfile", "signal", "multiprocessing", "pathlib"}


def modules(package_dir: str) -> dict[str, Path]:
    """Every module under ``package_dir`` by dotted name."""
    found = {}
    for path in sorted((ROOT / package_dir).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


@functools.cache  # the sources do not change during a run: each file is parsed once, not once per check
def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """Each import in ``path`` at any depth (function bodies and ``TYPE_CHECKING`` included):
    the module and the names taken from it."""
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            out.append((node.module, [alias.name for alias in node.names]))
    return out


ALL = {**modules("rtplay"), **modules("servers")}


def resolve(module: str, names: list[str]) -> set[str]:
    """The project modules an import reaches (``from pkg import mod`` reaches ``pkg.mod``)."""
    reached = {module} if module in ALL else set()
    reached.update(f"{module}.{n}" for n in names if f"{module}.{n}" in ALL)
    return reached


def graph() -> dict[str, set[str]]:
    return {name: set().union(*(resolve(m, ns) for m, ns in imports_of(path))) - {name} for name, path in ALL.items()}


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layering_violations() -> list[str]:
    bad = []
    for name, targets in graph().items():
        for target in targets:
            if name.startswith("servers"):
                if within(target, "rtplay") and package_of(target) not in SERVERS_MAY_IMPORT:
                    bad.append(f"{name} imports {target}")
            elif within(target, "servers"):
                bad.append(f"{name} imports {target} (the client side reaches the server over the network)")
            elif (src := package_of(name)) in MAY_IMPORT:
                dst = package_of(target)
                if dst != src and dst not in MAY_IMPORT[src] and dst != "rtplay":
                    bad.append(f"{name} imports {target}")
    return sorted(bad)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def private_imports() -> list[str]:
    bad = []
    for name, path in ALL.items():
        for module, names in imports_of(path):
            if (module in ALL or within(module, "rtplay") or within(module, "servers")) and module != name:
                bad.extend(f"{name} imports {n} from {module}" for n in names if n.startswith("_"))
    return sorted(bad)


def impure_protocol_imports() -> list[str]:
    bad = []
    for name, path in modules("rtplay/protocol").items():
        for module, _ in imports_of(path):
            top = module.split(".")[0]
            if within(module, "rtplay.protocol") or module == "__future__":
                continue
            if top in PURE_STDLIB_DENIED or top not in sys.stdlib_module_names:
                bad.append(f"{name} imports {module}")
    return sorted(bad)


def test_every_layer_imports_only_the_layers_below_it() -> None:
    assert layering_violations() == []


def test_there_is_no_import_circle() -> None:
    assert circles(graph()) == []


def test_no_private_name_is_imported_across_modules() -> None:
    assert private_imports() == []


def test_the_protocol_package_is_pure() -> None:
    assert impure_protocol_imports() == []


def test_each_package_says_what_belongs_there() -> None:
    packages = [p for p in ALL if (ROOT / Path(*p.split("."))).is_dir()]
    undocumented = [p for p in packages if not ast.get_docstring(ast.parse(ALL[p].read_text()))]
    assert undocumented == []


def test_the_checkers_see_violations() -> None:
    """The walks above find what they look for, at any depth."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    main = imports_of(ALL["rtplay.cli.main"])
    assert any(m == "rtplay.tui.app" for m, _ in main)  # imported inside run's function body
    assert "rtplay.tui.app" in graph()["rtplay.cli.main"]


def test_installed_libraries_have_the_internals_we_read() -> None:
    check_all()
    check_all(ON_DEMAND)


def test_a_missing_internal_names_library_and_version() -> None:
    with pytest.raises(IncompatibleLibrary, match=r"aioquic 9\.9 lacks X,.*aioquic 1\.2-1\.7"):
        require("aioquic", "9.9", "1.2-1.7", False, "X")


def test_a_fork_refuses_a_version_it_was_not_tested_against() -> None:
    require_line("aiortc", "1.16.3", "1.16", "the fork")
    with pytest.raises(IncompatibleLibrary, match=r"aiortc 1\.9\.0 is not a version the fork was tested against"):
        require_line("aiortc", "1.9.0", "1.16", "the fork")
