"""Evaluate the rule table for one study: modalities, first-line suggestions, scores, conflicts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..config import load_schema, load_yaml, validate_with
from ..errors import ConfigError
from .conditions import Trace, describe, evaluate, facts_used
from .facts import DERIVED_FACTS, FACT_THRESHOLDS, IMAGING_FACTS, build_facts, inputs_for
from .scores import all_scores

MODALITIES = ("systemic_therapy", "wbrt", "srs", "surgery", "no_intervention")
DISCLAIMER = (
    "Research use only. This output encodes one review's table of treatment indications to audit cohorts; "
    "it is not a treatment recommendation and must not be used for clinical decisions."
)


def _data(name: str) -> str:
    return (resources.files("brainmets") / "data" / "indications" / name).read_text(encoding="utf-8")


@cache
def histologies() -> dict[str, Any]:
    return load_yaml(_data("histology.yaml"))["histologies"]


@cache
def score_tables() -> dict[str, Any]:
    return load_yaml(_data("scores.yaml"))


def known_facts() -> set[str]:
    """Every fact name a rule may use."""
    clinical = set(load_schema("clinical.schema.yaml")["properties"]) - {"subject", "session"}
    return clinical | set(IMAGING_FACTS) | set(DERIVED_FACTS)


@dataclass(frozen=True)
class RuleSet:
    """A validated rule table and its thresholds (defaults overridden from the config)."""

    table: dict[str, Any]
    thresholds: dict[str, float]
    sha256: str
    origin: str

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, float] | None = None) -> RuleSet:
        """The built-in table, or an edited copy at ``path``; ``overrides`` replace threshold values."""
        if path is None:
            text, origin = _data("rules.yaml"), "built-in"
        else:
            try:
                text, origin = Path(path).read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read the rule table ({exc.strerror or exc})") from None
        try:
            table = validate_with("rules.schema.yaml", load_yaml(text), origin)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML ({exc})") from None
        ids = [r["id"] for r in table["rules"] + table["text_rules"]]
        if len(ids) != len(set(ids)):
            raise ConfigError(f"{origin}: duplicate rule ids")
        facts = known_facts()
        for entry in table["rules"] + table["text_rules"] + table["conflicts"]:
            for key in ("when", "supporting"):
                unknown = facts_used(entry[key]) - facts if key in entry else set()
                if unknown:
                    raise ConfigError(f"{origin}: {entry['id']} uses unknown fact(s) {sorted(unknown)}")
        thresholds = {name: spec["value"] for name, spec in table["thresholds"].items()}
        unknown = set(overrides or {}) - set(thresholds)
        if unknown:
            raise ConfigError(f"unknown indication threshold(s) {sorted(unknown)}; known: {sorted(thresholds)}")
        thresholds.update(overrides or {})
        return cls(table, thresholds, hashlib.sha256(text.encode()).hexdigest(), origin)


def _criterion(rule: dict[str, Any], facts: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    trace = Trace()
    met = evaluate(rule["when"], facts, thresholds, trace)
    for name in trace.evidence:  # thresholds behind derived facts count as used too
        for threshold in FACT_THRESHOLDS.get(name, ()):
            trace.thresholds[threshold] = thresholds[threshold]
    entry = {
        "id": rule["id"],
        "met": met,
        "text": rule["text"],
        "source": rule["source"],
        "condition": describe(rule["when"]),
        "evidence": trace.evidence,
        "missing": inputs_for(trace.missing),
        "thresholds": trace.thresholds,
    }
    if "supporting" in rule:
        support = Trace()
        entry["supporting"] = {
            "met": evaluate(rule["supporting"], facts, thresholds, support),
            "evidence": support.evidence,
            "missing": inputs_for(support.missing),
        }
    for key in ("notes", "guidelines"):
        if rule.get(key):
            entry[key] = rule[key]
    return entry


def _status(criteria: list[dict[str, Any]]) -> str:
    met = [c["met"] for c in criteria]
    if True in met:
        return "indicated"
    return "undetermined" if None in met else "not_indicated"


def evaluate_study(
    document: dict[str, Any],
    clinical: dict[str, Any] | None,
    rules: RuleSet,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The indication document of one study (``document``: a ``brainmets features`` output)."""
    table, thresholds = rules.table, rules.thresholds
    columns = list(load_schema("clinical.schema.yaml")["properties"])
    facts = build_facts(document, clinical, histologies(), thresholds, columns)
    values = facts.values

    modalities = {m: {"criteria": []} for m in MODALITIES}
    for rule in table["rules"]:
        modalities[rule["modality"]]["criteria"].append(_criterion(rule, values, thresholds))
    for entry in modalities.values():
        entry["status"] = _status(entry["criteria"])

    text = {rule["id"]: {**_criterion(rule, values, thresholds), "role": rule["role"]} for rule in table["text_rules"]}
    first_line = []
    for rule in sorted((r for r in table["text_rules"] if r["role"] == "suggestion"), key=lambda r: r.get("rank", 99)):
        if text[rule["id"]]["met"]:
            first_line.append(
                {
                    "rank": len(first_line) + 1,
                    "modality": rule["modality"],
                    "rule": text[rule["id"]],
                    "requirements": [text[r] for r in rule.get("requires", [])],
                    "supported_by": [text[r] for r in rule.get("supported_by", [])],
                    "table1_status": modalities[rule["modality"]]["status"],
                }
            )

    conflicts = []
    for conflict in table["conflicts"]:
        trace = Trace()
        if evaluate(conflict["when"], values, thresholds, trace):
            conflicts.append({k: v for k, v in conflict.items() if k != "when"} | {"evidence": trace.evidence})

    histology = histologies().get(values["primary_histology"]) if values["primary_histology"] else None
    scores = all_scores(score_tables(), values, histology)

    consulted = [c for m in modalities.values() for c in m["criteria"]] + list(text.values())
    missing = sorted({name for c in consulted for name in c["missing"]} | _score_missing(scores))
    used_thresholds = {name for c in consulted for name in c["thresholds"]}
    assumptions = [
        f"{name} = {thresholds[name]} {table['thresholds'][name].get('unit', '')}".rstrip()
        + f": {table['thresholds'][name]['source']}"
        for name in sorted(used_thresholds)
        if table["thresholds"][name].get("assumption")
    ]
    assumptions += [facts.derivations[name] for name in sorted(facts.derivations)]
    if clinical is None:
        assumptions.append("no clinical row for this study: every clinical input is unknown")

    study = document["study"]
    return {
        "research_use_only": True,
        "disclaimer": DISCLAIMER,
        "subject": study.get("subject"),
        "session": study.get("session"),
        "modalities": modalities,
        "first_line": first_line,
        "scores": scores,
        "conflicts": conflicts,
        "assumptions": assumptions,
        "missing_inputs": missing,
        "facts": values,
        "provenance": {
            "brainmets_version": __version__,
            "rules": {"origin": rules.origin, "sha256": rules.sha256, "version": table["version"]},
            "thresholds": thresholds,
            **(provenance or {}),
        },
    }


def _score_missing(scores: dict[str, Any]) -> set[str]:
    return set(inputs_for([name for score in scores.values() for name in score.get("missing", [])]))


#: Columns of the cohort indication table (one row per study), with their definitions.
SUMMARY_FIELDS = {
    "subject": "subject label",
    "session": "session label",
    **{
        f"{m}_status": f"{m.replace('_', ' ')}: indicated, not_indicated or undetermined by Table 1" for m in MODALITIES
    },
    "criteria_met": "Table 1 criteria that hold",
    "criteria_undetermined": "Table 1 criteria that could not be evaluated (inputs missing)",
    "first_line": "first-line suggestions of the review's text, in order (modality:rule)",
    "rpa_class": "RTOG RPA class",
    "gpa_original": "original GPA total",
    "gpa_ds_2012": "diagnosis-specific GPA (2012) total",
    "gpa_updated": "updated (molecular) GPA total",
    "conflicts": "review-versus-guideline conflicts that apply to the patient",
    "missing_inputs": "inputs that were unknown",
    "research_use_only": "always true: not a treatment recommendation",
}


def summary_row(result: dict[str, Any]) -> dict[str, Any]:
    """One cohort-table row from an indication document."""
    criteria = [c for m in result["modalities"].values() for c in m["criteria"]]
    scores = result["scores"]
    return {
        "subject": result["subject"],
        "session": result["session"],
        **{f"{m}_status": result["modalities"][m]["status"] for m in MODALITIES},
        "criteria_met": [c["id"] for c in criteria if c["met"]],
        "criteria_undetermined": [c["id"] for c in criteria if c["met"] is None],
        "first_line": [f"{f['modality']}:{f['rule']['id']}" for f in result["first_line"]],
        "rpa_class": scores["rpa"]["class"],
        "gpa_original": scores["gpa_original"].get("total"),
        "gpa_ds_2012": scores["gpa_ds_2012"].get("total"),
        "gpa_updated": scores["gpa_updated"].get("total"),
        "conflicts": [c["id"] for c in result["conflicts"]],
        "missing_inputs": result["missing_inputs"],
        "research_use_only": True,
    }
