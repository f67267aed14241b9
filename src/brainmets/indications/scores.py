"""Prognostic scores (RTOG RPA, GPA, diagnosis-specific and updated GPA) from the point tables in
``data/indications/scores.yaml``, evaluated with the rule interpreter."""

from __future__ import annotations

from typing import Any

from brainmets.indications.conditions import ScoreRange, Trace, evaluate


def rpa(table: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """RPA class: the classes are tried in order; an undecidable one leaves the class undetermined."""
    trace = Trace()
    result: dict[str, Any] = {"name": table["name"], "source": table["source"], "class": None}
    for entry in table["classes"]:
        met = evaluate(entry["when"], facts, {}, trace)
        if met is None:
            break
        if met:
            result.update({"class": entry["class"], "median_survival_months": entry["median_survival_months"]})
            break
    decided = result["class"] is not None
    result.update({"inputs": trace.evidence, "missing": [] if decided else trace.missing})
    if not decided:
        result.update({"median_survival_months": None, "reason": _reason(trace, facts)})
    return result


def _reason(trace: Trace, facts: dict[str, Any], unscored: list[str] = ()) -> str:
    """Why a score could not be computed: unknown inputs, counts or scores known only as a range, and factors
    whose value no row of the table covers (no brain metastasis at all, for instance)."""
    parts = [f"{', '.join(trace.missing)} unknown"] if trace.missing else []
    for name in trace.uncertain:
        value = facts.get(name)
        why = value.why if isinstance(value, ScoreRange) else "core components too small to count: see warnings"
        parts.append(f"{name} uncertain ({why})")
    parts += [f"no row of the table for {name}" for name in unscored]
    return "cannot be computed: " + "; ".join(parts)


def gpa(table: dict[str, Any], factors: list[dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    """A GPA: the points of each factor's first matching bin, summed; undetermined if an input is unknown
    (unless the table scores 'unknown' itself: ``if_missing``)."""
    trace, points, notes, unscored = Trace(), {}, [], []
    for factor in factors:
        factor_trace = Trace()
        value = None
        for bin_ in factor["bins"]:
            met = evaluate(bin_["when"], facts, {}, factor_trace)
            if met:
                value = bin_["points"]
                break
            if met is None:
                break
        if value is None and factor_trace.missing and "if_missing" in factor:
            value = factor["if_missing"]
            notes.append(f"{factor['name']}: unknown, scored {value} as the table does for unknown")
        elif value is None:
            for name in factor_trace.missing:
                trace.record(name, None)
            trace.uncertain += [n for n in factor_trace.uncertain if n not in trace.uncertain]
            if not factor_trace.missing and not factor_trace.uncertain:
                unscored.append(", ".join(f"{k} = {v}" for k, v in factor_trace.evidence.items()))
        trace.evidence.update(factor_trace.evidence)
        points[factor["name"]] = value
    total = None if any(v is None for v in points.values()) else float(sum(points.values()))
    months, survival_note = None, None
    if total is not None:
        for row in table["survival"]:
            if total <= row["max_total"] + 1e-9:
                months, survival_note = row["months"], row.get("note")
                break
    result = {
        "name": table["name"],
        "points": points,
        "total": total,
        "median_survival_months": months,
        "inputs": trace.evidence,
        "missing": trace.missing,
        "notes": [n for n in (*notes, survival_note, table.get("note")) if n],
    }
    if total is None:
        result["reason"] = _reason(trace, facts, unscored)
    return result


def all_scores(tables: dict[str, Any], facts: dict[str, Any], histology: dict[str, Any] | None) -> dict[str, Any]:
    """RPA, the original GPA, and the diagnosis-specific (2012) and updated GPA of the patient's histology."""
    original = tables["gpa"]["original"]
    scores: dict[str, Any] = {
        "rpa": rpa(tables["rpa"], facts),
        "gpa_original": {**gpa(original, original["factors"], facts), "source": original["source"]},
    }
    for key, group in (("gpa_ds_2012", "ds_2012"), ("gpa_updated", "updated")):
        diagnosis = histology.get("gpa_2012" if group == "ds_2012" else "gpa_updated") if histology else None
        if not diagnosis:
            why = "primary histology unknown" if histology is None else "no such score for this histology"
            scores[key] = {"not_applicable": why}
            continue
        table = tables["gpa"][group][diagnosis]
        factors = original["factors"] if table["factors"] == "original" else table["factors"]
        scores[key] = {
            **gpa(table, list(factors) + list(table.get("extra_factors", [])), facts),
            "diagnosis": diagnosis,
            "source": tables["gpa"][group]["source"],
        }
    return scores
