"""Scenario variants: the same run under different retry policies, and comparisons across them.

    [[variants]]
    name = "no-jitter"
    retry = { ws = "exponential:none" }

    [compare]
    "ws.crowd.peak_attempts_per_s" = "full-jitter <= 0.2 * no-jitter"

Each variant runs the whole scenario (same faults, same duration) with its policies on top
of the scenario's; a comparison holds when ``left OP factor * right`` holds for the values
at the dotted path (``TRANSPORT.PATH``) of the two variants' reports.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtplay.model.retry_spec import PolicySpec, RetrySpecError, parse_policy

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
_COMPARE = re.compile(r"^\s*([\w-]+)\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)\s*\*\s*([\w-]+)\s*$")

#: Variants one scenario may run: each is a full run, so a handful is already minutes.
MAX_VARIANTS = 8


class VariantError(ValueError):
    """A ``[[variants]]`` or ``[compare]`` entry that cannot be used; says which and why."""


@dataclass(frozen=True)
class Variant:
    name: str
    retry: dict[str, PolicySpec] = field(default_factory=dict)
    """Per transport, the policy this variant runs (over the scenario's own)."""


@dataclass(frozen=True)
class Comparison:
    path: str
    """``TRANSPORT.dotted.path`` in each variant's report."""
    left: str
    op: str
    factor: float
    right: str

    def __str__(self) -> str:
        return f"{self.path}: {self.left} {self.op} {self.factor:g} * {self.right}"

    def check(self, reports: dict[str, dict[str, Any]]) -> str | None:
        """None when it holds, else a message with both values."""
        a, b = (value_at(reports[name], self.path) for name in (self.left, self.right))
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return f"{self}: no value ({self.left}: {a}, {self.right}: {b})"
        return None if OPS[self.op](a, self.factor * b) else f"{self}: got {a} vs {self.factor:g} * {b}"


def value_at(report: dict[str, Any], path: str) -> Any:
    node: Any = report.get("transports", {})
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return f"<missing {path}>"
        node = node[part]
    return node


def parse_variants(where: str, table: Any, transports: list[str]) -> list[Variant]:
    if not isinstance(table, list) or len(table) > MAX_VARIANTS:
        raise VariantError(f"{where}: [[variants]] must be a list of at most {MAX_VARIANTS} tables")
    out: list[Variant] = []
    for item in table:
        if not isinstance(item, dict) or set(item) - {"name", "retry"} or not isinstance(item.get("name"), str):
            raise VariantError(f"{where}: each [[variants]] needs a name and may set retry = {{TRANSPORT = POLICY}}")
        retry = item.get("retry", {})
        if not isinstance(retry, dict) or set(retry) - set(transports):
            raise VariantError(f"{where}: variant {item['name']}: retry must map transports the scenario runs to policies")
        try:
            out.append(Variant(item["name"], {t: parse_policy(str(p)) for t, p in retry.items()}))
        except RetrySpecError as exc:
            raise VariantError(f"{where}: variant {item['name']}: {exc}") from None
    if len({v.name for v in out}) != len(out):
        raise VariantError(f"{where}: variant names must differ")
    return out


def parse_comparisons(where: str, table: Any, names: list[str]) -> list[Comparison]:
    if not isinstance(table, dict):
        raise VariantError(f"{where}: [compare] must be a table of PATH = 'VARIANT OP FACTOR * VARIANT'")
    out = []
    for path, text in table.items():
        m = _COMPARE.match(text) if isinstance(text, str) else None
        if m is None:
            raise VariantError(f"{where}: compare.{path}: expected 'VARIANT OP FACTOR * VARIANT', got {text!r}")
        left, op, factor, right = m.groups()
        unknown = [n for n in (left, right) if n not in names]
        if unknown:
            raise VariantError(f"{where}: compare.{path}: no variant named {', '.join(unknown)}")
        out.append(Comparison(path, left, op, float(factor), right))
    return out
