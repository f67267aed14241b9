"""A small interpreter for rule conditions, over named facts, with three-valued logic.

A condition is a mapping:
- ``{all: [c, ...]}``, ``{any: [c, ...]}``, ``{not: c}``;
- ``{fact: NAME, <op>: VALUE}`` with op one of ``is`` (equality), ``ne``, ``gt``, ``ge``, ``lt``, ``le``,
  ``in`` (a list), ``between`` (``[low, high]``, both inclusive).
A VALUE written ``"$name"`` is the threshold ``name``. A fact whose value is unknown (None) makes its
comparison unknown; ``all`` is false if any part is false, else unknown if any part is unknown; ``any`` is
true if any part is true, else unknown if any part is unknown (Kleene logic). Nothing is ever ``eval``-ed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

OPERATORS = ("is", "ne", "gt", "ge", "lt", "le", "in", "between")


@dataclass
class Trace:
    """What an evaluation looked at: every fact consulted with its value, the unknown ones, thresholds used."""

    evidence: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str, value: Any) -> None:
        self.evidence[name] = value
        if value is None and name not in self.missing:
            self.missing.append(name)


def _resolve(value: Any, thresholds: Mapping[str, Any], trace: Trace) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:]
        if name not in thresholds:
            raise ConfigError(f"rule condition uses unknown threshold {name!r}")
        trace.thresholds[name] = thresholds[name]
        return thresholds[name]
    if isinstance(value, list):
        return [_resolve(v, thresholds, trace) for v in value]
    return value


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "is":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "between":
        return expected[0] <= actual <= expected[1]
    return {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected, "le": actual <= expected}[op]


def evaluate(condition: Mapping[str, Any], facts: Mapping[str, Any], thresholds: Mapping[str, Any], trace: Trace):
    """True, False or None (unknown) for ``condition`` over ``facts``; ``trace`` collects the evidence."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        results = [evaluate(c, facts, thresholds, trace) for c in condition[key]]
        decisive = False if key == "all" else True
        if decisive in results:
            return decisive
        return None if None in results else not decisive
    if "not" in condition:
        result = evaluate(condition["not"], facts, thresholds, trace)
        return None if result is None else not result
    name = condition["fact"]
    if name not in facts:
        raise ConfigError(f"rule condition uses unknown fact {name!r}")
    ops = [op for op in OPERATORS if op in condition]
    if len(ops) != 1:
        raise ConfigError(f"condition on {name!r} needs exactly one of {', '.join(OPERATORS)}")
    value = facts[name]
    trace.record(name, value)
    expected = _resolve(condition[ops[0]], thresholds, trace)
    return None if value is None else _compare(ops[0], value, expected)


def facts_used(condition: Mapping[str, Any]) -> set[str]:
    """Every fact a condition names (to check a rule table against the facts that exist)."""
    if "all" in condition or "any" in condition:
        return set().union(*(facts_used(c) for c in condition.get("all", condition.get("any", []))))
    if "not" in condition:
        return facts_used(condition["not"])
    return {condition["fact"]}


_WORDS = {
    "is": "is",
    "ne": "is not",
    "gt": ">",
    "ge": ">=",
    "lt": "<",
    "le": "<=",
    "in": "is one of",
    "between": "is between",
}


def describe(condition: Mapping[str, Any]) -> str:
    """The condition in words, e.g. ``lesion_count >= $multiple_min_lesions``, for readers of the output."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        parts = [describe(c) for c in condition[key]]
        if not parts:
            return "always"
        joined = (" and " if key == "all" else " or ").join(
            f"({p})" if " and " in p or " or " in p else p for p in parts
        )
        return joined
    if "not" in condition:
        return f"not ({describe(condition['not'])})"
    op = next(op for op in OPERATORS if op in condition)
    value = condition[op]
    if op == "between":
        shown = f"{_show(value[0])} and {_show(value[1])}"
    elif op == "in":
        shown = ", ".join(_show(v) for v in value)
    else:
        shown = _show(value)
    return f"{condition['fact']} {_WORDS[op]} {shown}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
