"""A small interpreter for rule conditions, over named facts, with three-valued logic.

A condition is a mapping:
- ``{all: [c, ...]}``, ``{any: [c, ...]}``, ``{not: c}``;
- ``{fact: NAME, <op>: VALUE}`` with op one of ``is`` (equality), ``ne``, ``gt``, ``ge``, ``lt``, ``le``,
  ``in`` (a list), ``between`` (``[low, high]``, both inclusive);
- ``{rule: ID, is: VERDICT}`` or ``{rule: ID, in: [VERDICT, ...]}``: another rule's verdict, ``met``,
  ``not_met`` or ``undetermined`` (a verdict is always known, so an undetermined rule can be tested for;
  conflicts only, evaluated after the rules).
A VALUE written ``"$name"`` is the threshold ``name``. A fact whose value is unknown (None) makes its
comparison unknown, and so does a :class:`CountRange` (a count known only to lie in a range) or a
:class:`ScoreRange` (a score known only as a range, e.g. a KPS from an ECOG grade) on which the comparison does
not give one answer for the whole range; ``all`` is false if any part is false, else unknown
if any part is unknown; ``any`` is true if any part is true, else unknown if any part is unknown (Kleene
logic). Nothing is ever ``eval``-ed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brainmets.errors import ConfigError

OPERATORS = ("is", "ne", "gt", "ge", "lt", "le", "in", "between")


@dataclass(frozen=True)
class CountRange:
    """A count known only to lie between ``counted`` and ``counted + uncounted`` (both inclusive): the lesions
    found, and components too small to be counted that might be lesions too."""

    counted: int
    uncounted: int

    def values(self) -> range:
        return range(self.counted, self.counted + self.uncounted + 1)

    @property
    def shown(self) -> int:
        return self.counted


@dataclass(frozen=True)
class ScoreRange:
    """A whole-number score known only to lie between ``low`` and ``high`` (both inclusive), and why."""

    low: int
    high: int
    why: str

    def values(self) -> range:
        return range(self.low, self.high + 1)

    @property
    def shown(self) -> str:
        return f"{self.low}-{self.high}"


RANGES = (CountRange, ScoreRange)


def compare_range(op: str, value: CountRange | ScoreRange | int | float | None, expected: Any) -> bool | None:
    """A comparison that holds for every value of a range (True), for none (False), or is undecided (None)."""
    if value is None:
        return None
    if not isinstance(value, RANGES):
        return _compare(op, value, expected)
    answers = {_compare(op, v, expected) for v in value.values()}
    return answers.pop() if len(answers) == 1 else None


@dataclass
class Trace:
    """What an evaluation looked at: every fact consulted with its value, the unknown ones, the ones whose
    range left a comparison undecided, and the thresholds used."""

    evidence: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str, value: Any) -> None:
        self.evidence[name] = value.shown if isinstance(value, RANGES) else value
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


def kleene_all(values: list[bool | None]) -> bool | None:
    """Kleene and: false if one is false, else unknown if one is unknown."""
    return False if False in values else (None if None in values else True)


def kleene_any(values: list[bool | None]) -> bool | None:
    """Kleene or: true if one is true, else unknown if one is unknown."""
    return True if True in values else (None if None in values else False)


def evaluate(condition: Mapping[str, Any], facts: Mapping[str, Any], thresholds: Mapping[str, Any], trace: Trace):
    """True, False or None (unknown) for ``condition`` over ``facts``; ``trace`` collects the evidence."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        results = [evaluate(c, facts, thresholds, trace) for c in condition[key]]
        return kleene_all(results) if key == "all" else kleene_any(results)
    if "not" in condition:
        result = evaluate(condition["not"], facts, thresholds, trace)
        return None if result is None else not result
    name = _leaf_name(condition)
    if name not in facts:
        raise ConfigError(f"rule condition uses unknown {name.replace(':', ' ')!r}")
    ops = [op for op in OPERATORS if op in condition]
    if len(ops) != 1:
        raise ConfigError(f"condition on {name!r} needs exactly one of {', '.join(OPERATORS)}")
    value = facts[name]
    trace.record(name, value)
    expected = _resolve(condition[ops[0]], thresholds, trace)
    result = compare_range(ops[0], value, expected)
    if result is None and value is not None and name not in trace.uncertain:
        trace.uncertain.append(name)
    return result


def _leaf_name(condition: Mapping[str, Any]) -> str:
    """The fact a comparison reads; a rule's verdict is read as the fact ``rule:<id>``."""
    return condition["fact"] if "fact" in condition else f"rule:{condition['rule']}"


def _leaves(condition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "all" in condition or "any" in condition:
        return [leaf for c in condition.get("all", condition.get("any", [])) for leaf in _leaves(c)]
    if "not" in condition:
        return _leaves(condition["not"])
    return [condition]


def facts_used(condition: Mapping[str, Any]) -> set[str]:
    """Every fact a condition names (to check a rule table against the facts that exist)."""
    return {leaf["fact"] for leaf in _leaves(condition) if "fact" in leaf}


def rules_used(condition: Mapping[str, Any]) -> set[str]:
    """Every rule whose verdict a condition reads."""
    return {leaf["rule"] for leaf in _leaves(condition) if "rule" in leaf}


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
    subject = condition["fact"] if "fact" in condition else f"rule {condition['rule']}"
    return f"{subject} {_WORDS[op]} {shown}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
