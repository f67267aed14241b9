"""A subject's follow-up: its sessions' lesions tracked (:mod:`.tracking`), each track's growth, the RANO-BM
and volumetric responses (:mod:`.response`), and the Table 1 facts that need time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import __version__
from .fields import BOOLEAN, Field
from .response import ResponseParameters, Scan, rano_bm, volumetric
from .timeline import Session, iso
from .tracking import SessionLesions, TrackingParameters, follow

DAYS_PER_MONTH = 365.25 / 12
DISCLAIMER = "Research use only: not a medical device; responses and facts are not clinical assessments."


@dataclass(frozen=True)
class FollowupParameters:
    """The config's ``followup`` section."""

    tracking: TrackingParameters
    response: ResponseParameters
    rapid_growth_percent_per_month: float = 25.0
    recurrence_growth_percent: float = 20.0

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> FollowupParameters:
        return cls(
            tracking=TrackingParameters.from_config(section),
            response=ResponseParameters.from_config(section.get("rano_bm", {}), section.get("volumetric", {})),
            rapid_growth_percent_per_month=float(section.get("rapid_growth_percent_per_month", 25.0)),
            recurrence_growth_percent=float(section.get("recurrence_growth_percent", 20.0)),
        )

    def assumptions(self) -> list[str]:
        r = self.response
        return [
            f"rapid_growth_percent_per_month = {self.rapid_growth_percent_per_month:g} %: the review's 'rapidly "
            "enlarging' has no number; growth is compound, volume per 30.44 days",
            f"recurrence_growth_percent = {self.recurrence_growth_percent:g} %: a treated lesion growing this much "
            "over its smallest volume since the treatment is a recurrence (the review gives no number)",
            f"new_lesion_min_diameter_mm = {r.new_lesion_min_diameter_mm:g} mm: a new lesion this long (axial) is "
            "unequivocal (RANO-BM gives no size)",
            f"volumetric PR / PD = -{r.volumetric_pr_decrease_percent:g} % / +{r.volumetric_pd_increase_percent:g} % "
            "of the targets' summed volume: the volumes of spheres whose diameters change by -30 % / +20 %",
            "the 5 mm rule compares each target with its own longest diameter at the nadir scan",
            f"lesions link when their cores come within {self.tracking.link_tolerance_mm:g} mm (plus half of each "
            f"grid's largest voxel size); unlinked ones match within max({self.tracking.match_gate_mm:g} mm, "
            f"{self.tracking.match_gate_diameter_factor:g} x equivalent diameter) of their centroids",
        ]


def axial_slice_thickness_mm(affine: np.ndarray) -> float:
    """The spacing along the voxel axis closest to the patient's superior-inferior axis."""
    columns = affine[:3, :3]
    sizes = np.linalg.norm(columns, axis=0)
    axis = int(np.argmax(np.abs(columns[2]) / sizes))
    return float(sizes[axis])


def _days(interval) -> float | int:
    """An interval in days: whole days stay integers, times of day give fractions."""
    days = interval.total_seconds() / 86400
    return int(days) if days.is_integer() else round(days, 4)


def _growth(v1: float, v2: float, days: float) -> dict[str, float | None]:
    """Percent change, compound growth per month and volume doubling time (negative: halving) between two
    volumes; null where undefined (from zero, no time, no change)."""
    ratio = v2 / v1 if v1 > 0 else None
    return {
        "percent_change": None if ratio is None else 100.0 * (ratio - 1),
        "growth_percent_per_month": None
        if ratio is None or days <= 0
        else 100.0 * (ratio ** (DAYS_PER_MONTH / days) - 1),
        "volume_doubling_time_days": None
        if ratio is None or ratio in (0.0, 1.0) or days <= 0
        else days * math.log(2) / math.log(ratio),
    }


def follow_up(
    sessions: list[Session],
    documents: list[dict[str, Any]],
    data: list[SessionLesions],
    affines: list[np.ndarray],
    params: FollowupParameters,
    registrations: list[dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The follow-up document of one subject from its sessions' features documents, their lesions in the
    baseline's world (:meth:`SessionLesions.from_measurement`) and their grids' affines."""
    entries, tracks = follow(data, params.tracking)
    days = [_days(s.date - sessions[0].date) for s in sessions]
    rows_by_id = [{row["lesion_id"]: row for row in doc["lesions"]} for doc in documents]
    scans = [
        Scan(
            date_days=days[k],
            slice_thickness_mm=axial_slice_thickness_mm(affines[k]),
            lesions=rows_by_id[k],
            entries=entries[k],
            steroids=s.steroids,
            clinical_status=s.clinical_status,
            immunotherapy_before=any("immunotherapy" in p.treatment for p in sessions[:k]),
        )
        for k, s in enumerate(sessions)
    ]
    responses = rano_bm(scans, tracks, params.response)
    targets = responses[0]["target_track_ids"]
    volumes = volumetric(scans, tracks, params.response, responses)

    lesion_rows, volume_by_track = [], {t: {} for t in tracks}
    for k, (session, found) in enumerate(zip(sessions, entries)):
        for e in found:
            row = rows_by_id[k].get(e["lesion_id"]) if e["lesion_id"] is not None else None
            volume = row["volume_ml"] if row else (0.0 if e["event"] == "resolved" else None)
            centroid = data[k].centroids[e["lesion_id"]] if row else (None, None, None)
            volume_by_track[e["track_id"]][k] = volume
            lesion_rows.append(
                {
                    "session": session.session,
                    "date": iso(session.date),
                    "days_from_baseline": days[k],
                    **e,
                    "volume_ml": volume,
                    "axial_longest_diameter_mm": row["axial_longest_diameter_mm"] if row else None,
                    "centroid_x_mm": centroid[0],
                    "centroid_y_mm": centroid[1],
                    "centroid_z_mm": centroid[2],
                    "rano_bm_target": e["track_id"] in targets,
                    "touches_image_border": row["touches_image_border"] if row else None,
                }
            )
    track_rows = []
    for t, track in tracks.items():
        series = sorted(volume_by_track[t].items())
        changes = [
            {
                "from_session": sessions[a].session,
                "to_session": sessions[b].session,
                "days": days[b] - days[a],
                **_growth(va, vb, days[b] - days[a]),
            }  # fmt: skip
            for (a, va), (b, vb) in zip(series, series[1:])
            if va is not None and vb is not None
        ]
        track_rows.append(
            {
                "track_id": t,
                "first_session": sessions[track.first_session].session,
                "split_from": track.split_from,
                "merged_into": track.merged_into,
                "rano_bm_target": t in targets,
                "volumes_ml": [{"session": sessions[k].session, "volume_ml": v} for k, v in series],
                "changes": changes,
            }
        )
    for k, (entry, vol) in enumerate(zip(responses, volumes)):
        entry.update(session=sessions[k].session, date=iso(sessions[k].date), days_from_baseline=days[k])
        vol.update(session=sessions[k].session)
    return {
        "research_use_only": True,
        "disclaimer": DISCLAIMER,
        "subject": sessions[0].subject,
        "sessions": [
            {
                "session": s.session,
                "date": iso(s.date),
                "days_from_baseline": days[k],
                "treatment": list(s.treatment),
                "steroids": s.steroids,
                "clinical_status": s.clinical_status,
                "lesion_count": len(documents[k]["lesions"]),
                "axial_slice_thickness_mm": scans[k].slice_thickness_mm,
                "transform_given": s.transform is not None
                and not (registrations and registrations[k] and registrations[k].get("estimated")),
                "transform": None if s.transform is None else s.transform.tolist(),
                "registration": registrations[k] if registrations else None,
            }
            for k, s in enumerate(sessions)
        ],
        "lesions": lesion_rows,
        "tracks": track_rows,
        "rano_bm": responses,
        "volumetric_response": volumes,
        "facts": derived_facts(sessions, documents, entries, track_rows, responses, params),
        "assumptions": params.assumptions(),
        "provenance": {
            "brainmets_version": __version__,
            "segmentation_sha256": [doc["provenance"].get("input_sha256") for doc in documents],
            "parameters": {
                "tracking": vars(params.tracking),
                "response": vars(params.response),
                "rapid_growth_percent_per_month": params.rapid_growth_percent_per_month,
                "recurrence_growth_percent": params.recurrence_growth_percent,
            },
        },
    }


def _fact(value: bool | None, evidence: str) -> dict[str, Any]:
    return {"value": value, "evidence": evidence}


def derived_facts(sessions, documents, entries, tracks, responses, params: FollowupParameters) -> dict[str, Any]:
    """The Table 1 facts that need time, as of the last session, each with its evidence."""
    last = len(sessions) - 1
    name = sessions[last].session
    facts: dict[str, Any] = {}
    if last == 0:
        one = "one session: no change over time to judge"
        return {f: _fact(None, one) for f in FACTS}

    recent = [
        (c["growth_percent_per_month"], t["track_id"])
        for t in tracks
        for c in t["changes"]
        if c["to_session"] == name and c["growth_percent_per_month"] is not None
    ]
    limit = params.rapid_growth_percent_per_month
    if recent:
        rate, track = max(recent)
        facts["rapid_growth"] = _fact(
            rate >= limit,
            f"fastest growth to session {name}: track {track}, {rate:.0f} % per month "
            f"(rapid from {limit:g} % per month, an assumption)",
        )
    else:
        facts["rapid_growth"] = _fact(None, f"no lesion of session {name} was measured before it")

    latest = responses[last]
    new = latest["new_lesion_count"]
    earlier = [r for r in responses[1:last] if r["response"] != "NE"]
    if latest["response"] == "PD" or new:
        facts["cns_progression"] = _fact(True, f"session {name}: RANO-BM {latest['response']}, {new} new lesion(s)")
    elif earlier and earlier[-1]["response"] == "PD" and earlier[-1]["confirmed"]:
        facts["cns_progression"] = _fact(
            True,
            f"the PD of session {earlier[-1]['session']} is confirmed by session {name} (RANO-BM {latest['response']})",
        )
    elif latest["response"] in ("CR", "PR", "SD"):
        facts["cns_progression"] = _fact(False, f"session {name}: RANO-BM {latest['response']}, no new lesion")
    else:
        facts["cns_progression"] = _fact(None, f"session {name}: RANO-BM {latest['response']}, no new lesion")

    volumes = {t["track_id"]: {v["session"]: v["volume_ml"] for v in t["volumes_ml"]} for t in tracks}

    def regrowth(after: int) -> list[str]:
        """Tracks seen at session ``after`` that later grew past their smallest volume since, and new ones."""
        found, grown = [], set()
        for t, series in volumes.items():
            since = [series.get(s.session) for s in sessions[after:]]
            if since[0] is None:
                continue
            smallest = since[0]
            for k, v in enumerate(since[1:], start=after + 1):
                if v is None:
                    break
                if v > 0 and v >= smallest * (1 + params.recurrence_growth_percent / 100) and v > smallest:
                    found.append(f"track {t} grew to {v:.3g} mL at session {sessions[k].session}")
                    grown.add(t)
                    break
                smallest = min(smallest, v)
        for k in range(after + 1, last + 1):
            found += [
                f"{e['event']} lesion (track {e['track_id']}) at session {sessions[k].session}"
                for e in entries[k]
                if e["event"] in ("new", "reappeared") and e["track_id"] not in grown
            ]
        return found

    for fact, treatment in (("recurrence_after_srs", "srs"), ("recurrence_after_wbrt", "wbrt")):
        given = [k for k, s in enumerate(sessions[:last]) if treatment in s.treatment]
        if not given:
            facts[fact] = _fact(None, f"no {treatment.upper()} recorded in the timeline before session {name}")
            continue
        found = regrowth(given[0])
        note = "; tumour or radiation necrosis undetermined from imaging" if treatment == "srs" and found else ""
        facts[fact] = _fact(
            bool(found),
            f"after {treatment.upper()} following session {sessions[given[0]].session}: "
            + ("; ".join(found) if found else "no treated lesion grew, no new lesion")
            + note,
        )

    surgery = [k for k, s in enumerate(sessions[:last]) if "surgery" in s.treatment]
    if not surgery:
        facts["local_recurrence_after_resection"] = _fact(None, f"no surgery recorded before session {name}")
    else:
        after = surgery[0]
        at_margin, cavity_known = [], False
        for k in range(after + 1, last + 1):
            cavities = documents[k]["resection_cavities"]
            cavity_known |= documents[k]["study"].get("resection_cavity_count") is not None
            rim = {lid for c in cavities for lid in (c.get("rim_lesion_ids") or [])}
            by_lesion = {e["lesion_id"]: e for e in entries[k] if e["lesion_id"] is not None}
            for lid in sorted(rim):
                e = by_lesion[lid]
                before = volumes[e["track_id"]].get(sessions[k - 1].session)
                now = volumes[e["track_id"]][sessions[k].session]
                grew = (
                    before is not None and before > 0 and now >= before * (1 + params.recurrence_growth_percent / 100)
                )
                if e["event"] in ("new", "reappeared") or grew:
                    at_margin.append(
                        f"lesion {lid} (track {e['track_id']}) at the cavity margin, session {sessions[k].session}"
                    )
        if at_margin:
            facts["local_recurrence_after_resection"] = _fact(True, "; ".join(at_margin))
        elif cavity_known:
            facts["local_recurrence_after_resection"] = _fact(False, "no new or growing lesion at a cavity margin")
        else:
            facts["local_recurrence_after_resection"] = _fact(None, "the label scheme has no resection-cavity label")
    return {f: facts[f] for f in FACTS}


#: The facts a follow-up derives (clinical-table columns of the same name; a value given by hand wins).
FACTS = (
    "rapid_growth",
    "cns_progression",
    "local_recurrence_after_resection",
    "recurrence_after_srs",
    "recurrence_after_wbrt",
)


EVENTS = {
    "baseline": "the lesion at the first session",
    "persisting": "the same lesion as at the previous session (1:1)",
    "new": "a lesion with no counterpart at the previous session, and no earlier track near it (0:1)",
    "resolved": "the track's lesion is gone (1:0); volume 0",
    "merged": "several lesions of the previous session became one (n:1): the largest parent's track goes on, "
    "the others end merged_into it (their rows have no lesion)",
    "split": "one lesion became several (1:n): the largest child keeps the track, the others start tracks "
    "split_from it",
    "reappeared": "a lesion where a track resolved at an earlier session: it keeps that track",
}
RESPONSES = {
    "baseline": "the first session",
    "CR": "complete response: every lesion gone, no new lesion",
    "PR": "partial response: the target sum >= 30 % below baseline",
    "SD": "stable disease: neither PR nor PD",
    "PD": "progressive disease: the sum >= 20 % above the nadir and a target >= 5 mm larger, a new lesion, or worse "
    "clinical status",
    "NE": "not evaluable (no measurable disease at baseline, or slices over 5 mm thick)",
}
_KEYS = [
    Field("session", None, "session label"),
    Field("date", None, "the session's date (ISO 8601)"),
    Field("days_from_baseline", None, "days since the first session"),
]
#: Columns of the lesion-track table (one row per track and session).
LESION_TRACK_FIELDS = _KEYS + [
    Field("track_id", None, "the lesion's track, stable over the timeline (1, 2, ... in order of appearance)"),
    Field("lesion_id", None, "the lesion's id in the session's features; n/a when resolved or merged away"),
    Field("event", None, "what happened to the track at this session", EVENTS),
    Field("split_from", None, "the track this one split from; n/a when none"),
    Field("merged_into", None, "the track this one merged into; n/a when none"),
    Field("volume_ml", "mL", "core volume (0 when resolved, n/a when merged away)"),
    Field("axial_longest_diameter_mm", "mm", "RANO-BM longest axial diameter; n/a when absent"),
    Field("centroid_x_mm", "mm", "core centroid x in the baseline's world (RAS, after the session's transform)"),
    Field("centroid_y_mm", "mm", "core centroid y in the baseline's world"),
    Field("centroid_z_mm", "mm", "core centroid z in the baseline's world"),
    Field("rano_bm_target", None, "the track is a RANO-BM target lesion (chosen at baseline)", BOOLEAN),
    Field(
        "touches_image_border", None, "the core reaches the image's edge (it may be cut off); n/a when absent", BOOLEAN
    ),
]
#: Columns of the response table (one row per session).
RESPONSE_FIELDS = _KEYS + [
    Field("response", None, "RANO-BM response", RESPONSES),
    Field("sum_longest_diameters_mm", "mm", "sum of the target lesions' longest axial diameters"),
    Field("nadir_sum_mm", "mm", "the smallest sum before this session; n/a at baseline"),
    Field("percent_change_from_baseline", None, "change of the sum from baseline, percent"),
    Field("percent_change_from_nadir", None, "change of the sum from the nadir, percent"),
    Field(
        "new_lesion_count",
        None,
        "lesions that became unequivocal new lesions at this scan: appeared after baseline "
        "(new or reappeared) and reached 5 mm axial (counted once)",
    ),  # fmt: skip
    Field(
        "confirmed",
        None,
        "CR / PR lasting until a scan >= 4 weeks later (or a new-lesion PD after immunotherapy confirmed by "
        "progression then); n/a until then, and for responses that need no confirmation",
        BOOLEAN,
    ),  # fmt: skip
    Field("radiographic_only", None, "steroids and clinical status were not given", BOOLEAN),
    Field("volumetric_response", None, "the same from the targets' summed volume", RESPONSES),
    Field(
        "volumetric_percent_change_from_baseline", None, "change of the targets' summed volume from baseline, percent"
    ),
    Field("reasons", None, "each rule that decided the response"),
]


def table_rows(document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The follow-up's lesion-track rows and response rows (one per session, volumetric beside RANO-BM)."""
    responses = [
        {
            **entry,
            "volumetric_response": vol["response"],
            "volumetric_percent_change_from_baseline": vol["percent_change_from_baseline"],
            "reasons": "; ".join(entry["reasons"]),
        }
        for entry, vol in zip(document["rano_bm"], document["volumetric_response"])
    ]
    return document["lesions"], responses
