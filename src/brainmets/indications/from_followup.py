"""The facts a follow-up document (``brainmets followup``) supplies to the indication module: each where the
clinical row leaves its column empty (a value given by hand wins, with a warning when the two disagree), and
each undetermined recurrence decided by the clinical ``recurrence_confirmed`` when given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FollowupFacts:
    """The clinical row completed from a follow-up, what was used for each fact, and what the reader must
    know: warnings, and the follow-up's assumptions behind the facts it supplied."""

    row: dict[str, Any]
    used: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    treatment_effect_doubt: bool = False


def _yes(value: Any) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def merge(
    row: dict[str, Any] | None, followup: dict[str, Any], subject: str | None, columns: list[str]
) -> FollowupFacts:
    """The clinical ``row`` (None: no row) completed with the follow-up's facts (those that are clinical
    ``columns``: every fact of ``brainmets.longitudinal.timefacts.FACTS``, or fewer in a document of an older version)."""
    completed = dict(row or {"subject": subject})
    confirmed = completed.get("recurrence_confirmed")
    out = FollowupFacts(completed, {"session": followup["sessions"][-1]["session"], "facts": {}})
    if "distant_intracranial_progression_after_srs" not in followup["facts"]:
        out.warnings.append(
            "the follow-up document was written by an earlier brainmets, whose facts from time ignore treatment "
            "and measurement noise: none of them is used (run brainmets followup again)"
        )
        return out
    supplied = False
    for name, derived in followup["facts"].items():
        if name not in columns:
            continue
        given, value = completed.get(name), derived["value"]
        resolution = derived.get("if_recurrence_confirmed")
        if value is None and resolution and confirmed is not None:
            value = resolution["yes" if confirmed else "no"]
            how = f"follow-up, decided by the clinical recurrence_confirmed ({_yes(confirmed)})"
        else:
            how = "follow-up"
        if given is not None:
            source = "clinical table (given by hand; the follow-up's value is shown, not used)"
            if value is not None and value != given:
                out.warnings.append(
                    f"the clinical {name} is {_yes(given)}, but the follow-up measured {_yes(value)} "
                    f"({derived['evidence']}): the clinical value is used; check the row"
                )
            elif value is None and derived.get("doubt"):
                out.warnings.append(
                    f"the clinical {name} is {_yes(given)}, which the follow-up leaves undetermined "
                    f"({derived['doubt']}): the clinical value is used"
                )
        elif value is not None:
            completed[name], source, supplied = value, how, True
        else:
            source = "unknown (neither the clinical table nor the follow-up decides it)"
            if derived.get("doubt"):
                out.treatment_effect_doubt = True
                out.warnings.append(derived["doubt"])
        out.used["facts"][name] = {"used": completed.get(name), "source": source, **derived}
    if supplied:
        out.assumptions = [f"follow-up: {a}" for a in followup.get("assumptions", [])]
    return out
