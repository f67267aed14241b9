"""Evaluate the rule table for one study: modalities, first-line suggestions, scores, conflicts."""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from brainmets._version import __version__
from brainmets.config import load_schema, load_yaml, read_text, validate_with
from brainmets.errors import ConfigError
from brainmets.fields import BOOLEAN, Field
from brainmets.indications.conditions import CountRange, Trace, describe, evaluate, facts_used, kleene_all, rules_used
from brainmets.indications.facts import DERIVED_FACTS, FACT_COMPANIONS, IMAGING_FACTS, Facts, build_facts
from brainmets.indications.from_followup import merge
from brainmets.indications.scores import all_scores

MODALITIES = ("systemic_therapy", "wbrt", "srs", "surgery", "no_intervention")
VERDICTS = {True: "met", False: "not_met", None: "undetermined"}  # a rule's verdict, as conflicts read it
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


@cache
def performance_tables() -> dict[str, Any]:
    """ECOG -> KPS range conversion tables (``ecog_to_kps``)."""
    return load_yaml(_data("performance.yaml"))


def clinical_columns() -> list[str]:
    return list(load_schema("clinical.schema.yaml")["properties"])


def known_facts() -> set[str]:
    """Every fact a rule may use."""
    return (set(clinical_columns()) - {"subject", "session"}) | set(IMAGING_FACTS) | set(DERIVED_FACTS)


def _check_value(origin: str, name: str, spec: dict[str, Any], value: Any) -> None:
    """A threshold's value: of its default's kind (number, yes/no or a choice), finite, one of its choices."""
    default = spec["value"]
    if isinstance(default, bool):
        ok, what = isinstance(value, bool), "true or false"
    elif isinstance(default, str):
        ok, what = isinstance(value, str), "a text"
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        what = "a finite number"
    if not ok:
        raise ConfigError(f"{origin}: threshold {name} must be {what}, not {value!r}")
    if "choices" in spec and value not in spec["choices"]:
        raise ConfigError(
            f"{origin}: threshold {name} must be one of {', '.join(map(str, spec['choices']))}, not {value!r}"
        )


@dataclass(frozen=True)
class RuleSet:
    """A validated rule table and its thresholds (defaults overridden from the config)."""

    table: dict[str, Any]
    thresholds: dict[str, Any]
    sha256: str
    origin: str

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RuleSet:
        """The built-in table, or an edited copy at ``path``; ``overrides`` replace threshold values."""
        if path is None:
            text, origin = _data("rules.yaml"), "built-in"
        else:
            text, origin = read_text(path), str(path)
        table = copy.deepcopy(_validated_table(text, origin))
        ids = [r["id"] for r in table["rules"] + table["text_rules"]]
        if len(ids) != len(set(ids)):
            raise ConfigError(f"{origin}: duplicate rule ids")
        facts = known_facts()
        for entry in table["rules"] + table["text_rules"] + table["conflicts"]:
            for key in ("when", "supporting"):
                unknown = facts_used(entry[key]) - facts if key in entry else set()
                if unknown:
                    raise ConfigError(f"{origin}: {entry['id']} uses unknown fact(s) {sorted(unknown)}")
            ranking = entry.get("rank_first", {})
            for key in ("when", "unless"):
                unknown = facts_used(ranking[key]) - facts if key in ranking else set()
                if unknown:
                    raise ConfigError(f"{origin}: {entry['id']}: rank_first uses unknown fact(s) {sorted(unknown)}")
            verdicts = rules_used(entry["when"])
            if verdicts and entry not in table["conflicts"]:  # rules are evaluated in one pass, conflicts after
                raise ConfigError(f"{origin}: {entry['id']}: only conflicts may read other rules' verdicts")
            unknown = (verdicts | set(entry.get("requires", [])) | set(entry.get("supported_by", []))) - set(ids)
            suggestions = {r["id"] for r in table["text_rules"] if r["role"] == "suggestion"}
            if ranking and ranking["otherwise_after"] not in suggestions:
                raise ConfigError(
                    f"{origin}: {entry['id']}: rank_first.otherwise_after must name a suggestion, not "
                    f"{ranking['otherwise_after']!r}"
                )
            if unknown:
                raise ConfigError(f"{origin}: {entry['id']} names unknown rule(s) {sorted(unknown)}")
        for name, spec in table["thresholds"].items():
            _check_value(origin, name, spec, spec["value"])
        thresholds = {name: spec["value"] for name, spec in table["thresholds"].items()}
        unknown = set(overrides or {}) - set(thresholds)
        if unknown:
            raise ConfigError(f"unknown indication threshold(s) {sorted(unknown)}; known: {sorted(thresholds)}")
        for name, value in (overrides or {}).items():
            _check_value("indications.thresholds", name, table["thresholds"][name], value)
        thresholds.update(overrides or {})
        return cls(table, thresholds, hashlib.sha256(text.encode()).hexdigest(), origin)


@lru_cache(maxsize=4)
def _validated_table(text: str, origin: str) -> dict[str, Any]:
    """The rule table parsed and checked against its schema, once per text in a process (45 ms: a batch of
    studies shares one table)."""
    try:
        return validate_with("rules.schema.yaml", load_yaml(text), origin)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML ({exc})") from None


def _status(criteria: list[dict[str, Any]]) -> str:
    met = [c["met"] for c in criteria]
    if True in met:
        return "indicated"
    return "undetermined" if None in met else "not_indicated"


@dataclass
class _Study:
    """What every rule of one study is evaluated against, and how its traces are explained."""

    facts: Facts
    evaluation: dict[str, Any]  # the fact values, with counts known only as ranges as CountRange
    thresholds: dict[str, Any]
    clinical: dict[str, Any]
    columns: list[str]
    uncertainty: dict[str, str]  # why a fact is a range

    def explain(self, trace: Trace, met: bool | None) -> dict[str, Any]:
        """Evidence (with the facts shown beside those consulted), the missing inputs that left the verdict
        undetermined, the thresholds it depended on, and counts whose range left it undecided."""
        evidence = dict(trace.evidence)
        thresholds = dict(trace.thresholds)
        for name in trace.evidence:
            for companion in FACT_COMPANIONS.get(name, ()):
                evidence.setdefault(companion, self.facts.values[companion])
            for threshold in self.facts.thresholds.get(name, ()):
                thresholds[threshold] = self.thresholds[threshold]
        out = {
            "evidence": evidence,
            "missing": [] if met is not None else self.facts.inputs_for(trace.missing, self.clinical, self.columns),
            "thresholds": thresholds,
        }
        if met is None and trace.uncertain:
            out["uncertain"] = {name: self.uncertainty[name] for name in trace.uncertain}
        return out

    def ranking(self, rule: dict[str, Any], ranks: dict[str, int]) -> tuple[float, dict[str, Any]]:
        """A suggestion's rank by its ``rank_first``: its own when ``when`` holds and ``unless`` does not (an
        unknown ``unless`` does not demote it), else right after ``otherwise_after``; and why, with evidence."""
        spec = rule["rank_first"]
        first, unless = Trace(), Trace()
        holds = evaluate(spec["when"], self.evaluation, self.thresholds, first)
        barred = evaluate(spec["unless"], self.evaluation, self.thresholds, unless) if "unless" in spec else False
        kept = holds is True and barred is not True
        reason = spec["reason"]
        for name, value in {**first.thresholds, **unless.thresholds}.items():
            reason = reason.replace(f"${name}", str(value))
        if kept:
            why = f"ranked first: {describe(spec['when'])} holds"
        elif barred:
            why = f"listed after {spec['otherwise_after']}: {describe(spec['unless'])}"
        else:
            known = "does not hold" if holds is False else "is not known to hold"
            why = f"listed after {spec['otherwise_after']}: {describe(spec['when'])} {known}"
        return (ranks[rule["id"]] if kept else ranks[spec["otherwise_after"]] + 0.5), {
            "first": kept,
            "why": f"{why} ({reason})",
            "evidence": {**first.evidence, **unless.evidence},
            "thresholds": {**first.thresholds, **unless.thresholds},
        }

    def criterion(self, rule: dict[str, Any]) -> dict[str, Any]:
        trace = Trace()
        met = evaluate(rule["when"], self.evaluation, self.thresholds, trace)
        entry = {
            "id": rule["id"],
            "met": met,
            "text": rule["text"],
            "source": rule["source"],
            "condition": describe(rule["when"]),
            **self.explain(trace, met),
        }
        if "supporting" in rule:
            support = Trace()
            supported = evaluate(rule["supporting"], self.evaluation, self.thresholds, support)
            entry["supporting"] = {
                "met": supported,
                "condition": describe(rule["supporting"]),
                **self.explain(support, supported),
            }
        for key in ("notes", "guidelines"):
            if rule.get(key):
                entry[key] = rule[key]
        return entry


def _ranges(facts: Facts, thresholds: dict[str, Any], document: dict[str, Any]) -> tuple[dict, dict, list]:
    """The fact values to evaluate: the lesion count as a range when discarded core components might be lesions,
    a KPS as a range when only an ECOG grade is given; why each is a range; and the warnings that say so."""
    evaluation, uncertainty, warnings = _counts(facts.values, thresholds, document)
    for name, value in facts.ranges.items():
        evaluation = {**evaluation, name: value}
        uncertainty[name] = f"between {value.low} and {value.high}: {value.why}"
    return evaluation, uncertainty, warnings


def _counts(values: dict[str, Any], thresholds: dict[str, Any], document: dict[str, Any]) -> tuple[dict, dict, list]:
    """The fact values to evaluate, with the lesion count as a range when discarded core components might be
    lesions; why; and the warning that says so."""
    discarded, counted = values["discarded_core_component_count"], values["lesion_count"]
    if not discarded:
        return values, {}, []
    minimum = document.get("provenance", {}).get("parameters", {}).get("min_lesion_volume_mm3")
    volume = document["study"].get("discarded_core_volume_ml")
    below = f"below min_lesion_volume_mm3 ({minimum} mm3)" if minimum is not None else "below min_lesion_volume_mm3"
    what = f"{discarded} core component(s) {below}" + (f", {volume:.3g} mL in all," if volume is not None else "")
    if thresholds["discarded_core_components"] == "ignore":
        return values, {}, [f"{what} were not counted as lesions and are ignored (discarded_core_components = ignore)"]
    why = f"between {counted} and {counted + discarded}: {what} might be lesions"
    warning = (
        f"{what} were not counted as lesions: the lesion count lies between {counted} and {counted + discarded}, "
        "so every count-based verdict they could change is undetermined (discarded_core_components = "
        "undetermined; lower features.min_lesion_volume_mm3, or set it to ignore)"
    )
    ranged = {"lesion_count": CountRange(counted, discarded)}
    if values["brain_metastasis_count"] is not None:
        ranged["brain_metastasis_count"] = CountRange(values["brain_metastasis_count"], discarded)
    return {**values, **ranged}, dict.fromkeys(ranged, why), [warning]


def evaluate_study(
    document: dict[str, Any],
    clinical: dict[str, Any] | None,
    rules: RuleSet,
    provenance: dict[str, Any] | None = None,
    followup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The indication document of one study (``document``: a ``brainmets features`` output; ``followup``: a
    ``brainmets followup`` document of the subject, whose facts fill the clinical columns left empty)."""
    table, thresholds = rules.table, rules.thresholds
    columns = clinical_columns()
    from_time = None
    if followup is not None:
        from_time = merge(clinical, followup, document["study"].get("subject"), columns)
    row = clinical if from_time is None else from_time.row
    doubt = bool(from_time and from_time.treatment_effect_doubt)
    facts = build_facts(document, row, histologies(), thresholds, columns, performance_tables(), doubt, clinical or {})
    evaluation, uncertainty, warnings = _ranges(facts, thresholds, document)
    study = _Study(facts, evaluation, thresholds, row or {}, columns, uncertainty)

    modalities = {m: {"criteria": []} for m in MODALITIES}
    for rule in table["rules"]:
        modalities[rule["modality"]]["criteria"].append(study.criterion(rule))
    for entry in modalities.values():
        entry["status"] = _status(entry["criteria"])

    text_rules = [
        {**study.criterion(rule), "role": rule["role"], "modality": rule["modality"]} for rule in table["text_rules"]
    ]
    by_id = {entry["id"]: entry for entry in text_rules}
    suggestions = [r for r in table["text_rules"] if r["role"] == "suggestion"]
    ranks = {r["id"]: r.get("rank", 99) for r in suggestions}
    ranking = {r["id"]: study.ranking(r, ranks) for r in suggestions if "rank_first" in r}
    first_line, excluded, undecided = [], [], []
    for rule in sorted(suggestions, key=lambda r: ranking.get(r["id"], (ranks[r["id"]],))[0]):
        if by_id[rule["id"]]["met"] is None:
            undecided.append({"modality": rule["modality"], "rule": by_id[rule["id"]]})
        if not by_id[rule["id"]]["met"]:
            continue
        requirements = [by_id[r] for r in rule.get("requires", [])]
        suggestion = {
            "modality": rule["modality"],
            "rule": by_id[rule["id"]],
            "requirements": requirements,
            "supported_by": [by_id[r] for r in rule.get("supported_by", [])],
            "table1_status": modalities[rule["modality"]]["status"],
        }
        if rule["id"] in ranking:
            suggestion["ranking"] = ranking[rule["id"]][1]
        failed = [r["id"] for r in requirements if r["met"] is False]
        if failed:
            excluded.append({**suggestion, "failed_requirements": failed})
        else:
            met = kleene_all([r["met"] for r in requirements])
            first_line.append({"rank": len(first_line) + 1, **suggestion, "requirements_met": met})

    undecided.sort(key=lambda f: ranks[f["rule"]["id"]])  # listed in the text's order
    criteria = [c for m in modalities.values() for c in m["criteria"]]
    verdicts = {f"rule:{c['id']}": VERDICTS[c["met"]] for c in criteria + text_rules}
    conflicts, conflict_thresholds = [], set()
    for conflict in table["conflicts"]:
        trace = Trace()
        if evaluate(conflict["when"], {**evaluation, **verdicts}, thresholds, trace):
            explained = study.explain(trace, True)
            conflicts.append({k: v for k, v in conflict.items() if k != "when"} | {"evidence": explained["evidence"]})
            conflict_thresholds |= set(explained["thresholds"])

    histology = histologies().get(facts.values["primary_histology"]) if facts.values["primary_histology"] else None
    scores = all_scores(score_tables(), evaluation, histology)

    warnings += facts.warnings + (from_time.warnings if from_time else [])
    if modalities["no_intervention"]["status"] == "indicated" and first_line:
        offered = ", ".join(f"{f['modality']} ({f['rule']['id']})" for f in first_line)
        warnings.append(
            f"Table 1 recommends no intervention for this patient (table1.none.1) while the review's text "
            f"suggests {offered} as first line: the table and the text disagree here"
        )

    # a "particularly ..." of a rule that does not hold cannot matter, nor can the inputs it lacks
    supporting = [c["supporting"] for c in criteria if "supporting" in c and c["met"] is not False]
    consulted = criteria + text_rules + supporting
    undetermined = [name for score in scores.values() if "reason" in score for name in score["missing"]]
    missing = {name for c in consulted for name in c["missing"]}
    missing |= set(facts.inputs_for(undetermined, clinical or {}, columns))
    used = {name for c in consulted for name in c["thresholds"]} | conflict_thresholds
    assumptions = [
        _assumption(name, thresholds[name], table["thresholds"][name])
        for name in sorted(used)
        if table["thresholds"][name].get("assumption")
    ]
    assumptions += [facts.derivations[name] for name in sorted(facts.derivations)]
    if clinical is None:
        assumptions.append("no clinical row for this study: every clinical input is unknown")
    if "table1.srs.3" in {c["id"] for c in criteria}:
        assumptions.append(
            "solitary (SRS (iv)): exactly one brain metastasis at the session of surgery (a follow-up's lesion count "
            "there, or the clinical solitary_metastasis_at_resection)"
        )
    assumptions += from_time.assumptions if from_time else []

    return {
        "research_use_only": True,
        "disclaimer": DISCLAIMER,
        "subject": document["study"].get("subject"),
        "session": document["study"].get("session"),
        "modalities": modalities,
        "text_rules": text_rules,
        "first_line": first_line,
        "first_line_excluded": excluded,
        "first_line_undetermined": undecided,
        "scores": scores,
        "conflicts": conflicts,
        "assumptions": assumptions,
        "warnings": warnings,
        "missing_inputs": sorted(missing),
        "facts": facts.values,
        **({"followup": from_time.used} if from_time else {}),
        "provenance": {
            "brainmets_version": __version__,
            "rules": {
                "origin": rules.origin,
                "sha256": rules.sha256,
                "version": table["version"],
                "title": table["title"],
                "source": table["source"],
            },
            "thresholds": thresholds,
            **(provenance or {}),
        },
    }


def _assumption(name: str, value: Any, spec: dict[str, Any]) -> str:
    """``name = value unit: source``, with the value in force."""
    shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
    unit = f" {spec['unit']}" if "unit" in spec else ""
    return f"{name} = {shown}{unit}: {spec['source']}"


STATUS_LEVELS = {
    "indicated": "a Table 1 criterion of the modality holds",
    "not_indicated": "every criterion of the modality was evaluated and none holds",
    "undetermined": "no criterion holds and at least one could not be evaluated (inputs missing)",
}

#: Columns of the cohort indication table (one row per study), with their definitions.
SUMMARY_FIELDS = [  # after participant_id and session_id (fields.KEY_FIELDS), as in every cohort table
    *[
        Field(f"{m}_status", None, f"{m.replace('_', ' ')}: what Table 1 supports", STATUS_LEVELS, f"{m} status")
        for m in MODALITIES
    ],
    Field("criteria_met", None, "Table 1 criteria that hold (comma-separated rule ids; none when there are none)"),
    Field(
        "criteria_undetermined",
        None,
        "Table 1 criteria that could not be evaluated (inputs missing, or a lesion count left uncertain by discarded core components)",
    ),
    Field("text_rules_met", None, "rules of the review's text (sections 2.3 and 3.1) that hold"),
    Field("text_rules_undetermined", None, "rules of the review's text that could not be evaluated"),
    Field("first_line", None, "first-line suggestions of the review's text, in order (modality:rule)"),
    Field(
        "first_line_excluded",
        None,
        "suggestions whose condition holds but whose requirement fails, e.g. surgery without systemic control (modality:rule)",
    ),
    Field(
        "first_line_undetermined",
        None,
        "suggestions that could not be evaluated (inputs missing, or an uncertain lesion count) (modality:rule)",
    ),
    Field(
        "rpa_class",
        None,
        "RTOG recursive partitioning analysis class; n/a when an input it needs is unknown",
        {"I": "RPA class I", "II": "RPA class II", "III": "RPA class III"},
        "RTOG RPA class",
    ),
    Field("gpa_original", None, "original GPA total (0-4); n/a when an input it needs is unknown"),
    Field(
        "gpa_ds_2012", None, "diagnosis-specific GPA (2012) total; n/a when unknown or not defined for the histology"
    ),
    Field("gpa_updated", None, "updated (molecular) GPA total; n/a when unknown or not defined for the histology"),
    Field("conflicts", None, "review-versus-guideline conflicts that apply to the patient"),
    Field(
        "facts_from_followup",
        None,
        "facts taken from the subject's follow-up, with their values (fact=yes/no); none when none",
    ),
    Field(
        "treatment_effect_doubt",
        None,
        "a treated lesion's growth may be treatment effect rather than tumour, with recurrence_confirmed empty "
        "(the fact recurrence_treatment_effect_possible)",
        BOOLEAN,
    ),
    Field("missing_inputs", None, "inputs that were unknown and left a verdict or score undetermined"),
    Field(
        "warning_count",
        None,
        "warnings in the indication document (e.g. discarded core components that leave the lesion count uncertain)",
    ),
    Field("research_use_only", None, "always true: not a treatment recommendation", BOOLEAN),
]


def summary_row(result: dict[str, Any]) -> dict[str, Any]:
    """One cohort-table row from an indication document."""
    criteria = [c for m in result["modalities"].values() for c in m["criteria"]]
    text_rules = result.get("text_rules", [])
    scores = result["scores"]
    return {
        "subject": result["subject"],
        "session": result["session"],
        **{f"{m}_status": result["modalities"][m]["status"] for m in MODALITIES},
        "criteria_met": [c["id"] for c in criteria if c["met"]],
        "criteria_undetermined": [c["id"] for c in criteria if c["met"] is None],
        "text_rules_met": [c["id"] for c in text_rules if c["met"]],
        "text_rules_undetermined": [c["id"] for c in text_rules if c["met"] is None],
        "first_line": [f"{f['modality']}:{f['rule']['id']}" for f in result["first_line"]],
        "first_line_excluded": [f"{f['modality']}:{f['rule']['id']}" for f in result.get("first_line_excluded", [])],
        "first_line_undetermined": [
            f"{f['modality']}:{f['rule']['id']}" for f in result.get("first_line_undetermined", [])
        ],
        "rpa_class": scores["rpa"]["class"],
        "gpa_original": scores["gpa_original"].get("total"),
        "gpa_ds_2012": scores["gpa_ds_2012"].get("total"),
        "gpa_updated": scores["gpa_updated"].get("total"),
        "conflicts": [c["id"] for c in result["conflicts"]],
        "facts_from_followup": [
            f"{name}={'yes' if fact['used'] else 'no'}"
            for name, fact in result.get("followup", {}).get("facts", {}).items()
            if fact["source"].startswith("follow-up")
        ],
        "treatment_effect_doubt": result["facts"].get("recurrence_treatment_effect_possible"),
        "missing_inputs": result["missing_inputs"],
        "warning_count": len(result.get("warnings", [])),
        "research_use_only": True,
    }
