"""A subject's follow-up: its sessions' lesions tracked (:mod:`.tracking`), each track's growth judged against
measurement noise (:mod:`.growth`), the RANO-BM and volumetric responses (:mod:`.response`), and the Table 1
facts that need time (:mod:`.timefacts`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainmets._version import __version__
from brainmets.errors import InputDataError
from brainmets.fields import BOOLEAN, Field
from brainmets.longitudinal.growth import Grid, GrowthParameters
from brainmets.longitudinal.response import ResponseParameters, Scan, rano_bm
from brainmets.longitudinal.timefacts import Timeline
from brainmets.longitudinal.timeline import Session, iso
from brainmets.longitudinal.tracking import SessionLesions, TrackingParameters, follow, represented
from brainmets.longitudinal.volumetric import volumetric

DISCLAIMER = "Research use only: not a medical device; responses and facts are not clinical assessments."


@dataclass(frozen=True)
class FollowupParameters:
    """The config's ``followup`` section."""

    tracking: TrackingParameters
    response: ResponseParameters
    growth: GrowthParameters = GrowthParameters()
    rapid_growth_percent_per_month: float = 25.0
    recurrence_growth_percent: float = 20.0
    treatment_effect_early_months: float = 6.0

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> FollowupParameters:
        return cls(
            tracking=TrackingParameters.from_config(section),
            response=ResponseParameters.from_config(section.get("rano_bm", {}), section.get("volumetric", {})),
            growth=GrowthParameters.from_config(section),
            **{k: float(section[k]) for k in SCALARS if k in section},
        )

    def assumptions(self) -> list[str]:
        """Every threshold the follow-up uses, as ``name = value unit: source``."""
        r, g, t = self.response, self.growth, self.tracking
        lin = "RANO-BM (Lin NU et al., Lancet Oncol 2015;16:e270-8)"
        return [
            f"rano_bm.pr_decrease_percent = {r.pr_decrease_percent:g} %: PR, the target sum below baseline ({lin})",
            f"rano_bm.pd_increase_percent = {r.pd_increase_percent:g} % and rano_bm.pd_min_target_increase_mm = "
            f"{r.pd_min_target_increase_mm:g} mm: PD, the target sum above the nadir with one target this much longer "
            f"({lin}); the 5 mm rule compares each target with its own longest diameter at the nadir scan "
            "(an assumption: RANO-BM does not say which scan)",
            f"rano_bm.confirmation_min_days = {r.confirmation_min_days:g} days: CR and PR sustained for at least 4 "
            f"weeks ({lin})",
            f"rano_bm.max_slice_thickness_mm = {r.max_slice_thickness_mm:g} mm: slices preferably 5 mm or thinner "
            f"({lin}); thicker ones leave the measurements not evaluable (an assumption)",
            f"rano_bm.new_lesion_min_diameter_mm = {r.new_lesion_min_diameter_mm:g} mm: a new lesion this long (axial) "
            f"is unequivocal (an assumption: RANO-BM asks for a new lesion 'not equivocal', with no size)",
            f"rano_bm.non_target_pd_increase_mm = {r.non_target_pd_increase_mm:g} mm and "
            f"rano_bm.non_target_pd_increase_percent = {r.non_target_pd_increase_percent:g} %: unequivocal progression "
            f"of a non-target lesion, from its own nadir (an assumption: {lin} gives no number)",
            f"rano_bm.rebaseline_after = {', '.join(r.rebaseline_after) or 'none'}: the scan after these treatments "
            "is a new baseline, so a resection is never scored as a response (an assumption)",
            f"steroids: CR needs none or a physiological dose, PR and SD stable or decreased steroids ({lin}; the "
            "physiological dose as in RANO, Wen PY et al., J Clin Oncol 2010;28:1963-72); no entry leaves CR "
            "radiographic only",
            f"volumetric.pr_decrease_percent = {r.volumetric_pr_decrease_percent:g} % and "
            f"volumetric.pd_increase_percent = {r.volumetric_pd_increase_percent:g} % of the targets' summed volume: "
            "the volumes of spheres whose diameters change by -30 % / +20 % (an assumption)",
            f"growth_min_diameter_mm = {g.min_diameter_mm:g} mm: growth is judged on lesions measurable at the later "
            f"scan (the measurable size of {lin})",
            f"growth_diameter_uncertainty_voxels = {g.diameter_uncertainty_voxels:g}: the axial longest diameter is "
            "uncertain by this many in-plane voxels, one at each end (an assumption)",
            f"growth_volume_uncertainty_layers = {g.volume_uncertainty_layers:g}: a volume change must exceed this many "
            "voxel layers over the lesion's surface (an assumption)",
            f"growth_min_interval_days = {g.min_interval_days:g} days: growth is judged over at least this interval "
            "(an assumption)",
            f"rapid_growth_percent_per_month = {self.rapid_growth_percent_per_month:g} %: the review's 'rapidly "
            "enlarging' has no number (an assumption); compound growth of the volume per 30.44 days",
            f"recurrence_growth_percent = {self.recurrence_growth_percent:g} %: a treated lesion growing beyond noise "
            "and this much over its smallest volume since the treatment may be a recurrence (an assumption)",
            f"treatment_effect_early_months = {self.treatment_effect_early_months:g} months: growth this soon after "
            "SRS is worded as likely transient enlargement (an assumption; transient enlargement follows SRS in "
            "about a third of lesions, from 6 weeks and beyond 15 months: Patel TR et al., AJNR 2011;32:1885-92; yet "
            "52.5 % of enlarging lesions biopsied within 9 months of SRS were tumour: Narloch JL et al., "
            "Neuro-Oncol 2017;19:1391-7)",
            f"link_tolerance_mm = {t.link_tolerance_mm:g} mm: lesions link when their cores come this close (plus half "
            "of each grid's largest voxel size) (an assumption)",
            f"match_gate_mm = {t.match_gate_mm:g} mm and match_gate_diameter_factor = "
            f"{t.match_gate_diameter_factor:g}: unlinked lesions match within max(gate, factor x equivalent "
            "diameter) of their centroids (an assumption)",
        ]


#: The scalar settings of the ``followup`` section (beside tracking, growth, rano_bm and volumetric).
SCALARS = ("rapid_growth_percent_per_month", "recurrence_growth_percent", "treatment_effect_early_months")


def axial_slice_thickness_mm(affine: np.ndarray) -> float:
    """The spacing along the voxel axis closest to the patient's superior-inferior axis."""
    return Grid.from_affine(affine).slice_thickness_mm


def _days(interval) -> float | int:
    """An interval in days: whole days stay integers, times of day give fractions."""
    days = interval.total_seconds() / 86400
    return int(days) if days.is_integer() else round(days, 4)


def _treated_lesions(sessions: list[Session], documents: list[dict[str, Any]]) -> None:
    """Every treated_lesions id must name a lesion of its session."""
    for session, document in zip(sessions, documents):
        ids = {row["lesion_id"] for row in document["lesions"]}
        unknown = sorted({i for listed in (session.treated_lesions or {}).values() for i in listed} - ids)
        if unknown:
            raise InputDataError(
                session.segmentation,
                f"session {session.session}, column treated_lesions: lesion(s) {', '.join(map(str, unknown))} are not "
                f"in the session's lesion table (lesion ids {', '.join(map(str, sorted(ids))) or 'none'})",
            )


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
    _treated_lesions(sessions, documents)
    entries, tracks = follow(data, params.tracking)
    days = [_days(s.date - sessions[0].date) for s in sessions]
    grids = [Grid.from_affine(a) for a in affines]
    rows_by_id = [{row["lesion_id"]: row for row in doc["lesions"]} for doc in documents]
    timeline = Timeline.build(sessions, documents, entries, tracks, days, grids, params)
    scans = [
        Scan(
            date_days=days[k],
            slice_thickness_mm=grids[k].slice_thickness_mm,
            lesions=rows_by_id[k],
            entries=entries[k],
            steroids=s.steroids,
            clinical_status=s.clinical_status,
            immunotherapy_before=any("immunotherapy" in p.treatment for p in sessions[:k]),
            treatment=s.treatment,
            session=s.session,
            irradiated=timeline.irradiated(k),
        )
        for k, s in enumerate(sessions)
    ]
    responses = rano_bm(scans, tracks, params.response)
    volumes = volumetric(scans, tracks, params.response, responses)

    lesion_rows, track_changes = [], {t: [] for t in tracks}
    for k, (session, found) in enumerate(zip(sessions, entries)):
        segment = responses[k]
        for e in found:
            row = rows_by_id[k].get(e["lesion_id"]) if e["lesion_id"] is not None else None
            centroid = data[k].centroids[e["lesion_id"]] if row else (None, None, None)
            change = timeline.change_to(e["track_id"], k)
            if change is not None:
                track_changes[e["track_id"]].append(change)
            lesion_rows.append(
                {
                    "session": session.session,
                    "date": iso(session.date),
                    "days_from_baseline": days[k],
                    **e,
                    "volume_ml": row["volume_ml"] if row else (0.0 if e["event"] == "resolved" else None),
                    "axial_longest_diameter_mm": row["axial_longest_diameter_mm"] if row else None,
                    "centroid_x_mm": centroid[0],
                    "centroid_y_mm": centroid[1],
                    "centroid_z_mm": centroid[2],
                    "rano_bm_target": e["track_id"] in segment["target_track_ids"],
                    "rano_bm_role": _role(represented(tracks, e["track_id"], k), row, segment),
                    "treated_with": timeline.treated_with(e["track_id"], k),
                    "growth_percent_per_month": None if change is None else change["growth_percent_per_month"],
                    "growth_percent_per_month_uncertainty": None
                    if change is None
                    else change["growth_percent_per_month_uncertainty"],
                    "growth_beyond_noise": None if change is None else change["growth_beyond_noise"],
                    "touches_image_border": row["touches_image_border"] if row else None,
                }
            )
    targets = {t for r in responses for t in r["target_track_ids"]}
    track_rows = [
        {
            "track_id": t,
            "first_session": sessions[track.first_session].session,
            "split_from": track.split_from,
            "merged_into": track.merged_into,
            "rano_bm_target": t in targets,
            "treatments": timeline.treatments_of(t),
            "volumes_ml": [
                {"session": sessions[k].session, "volume_ml": size.volume_ml} for k, size in timeline.series(t)
            ],  # fmt: skip
            "changes": track_changes[t],
        }
        for t, track in tracks.items()
    ]
    for k, (entry, vol) in enumerate(zip(responses, volumes)):
        entry.update(session=sessions[k].session, date=iso(sessions[k].date), days_from_baseline=days[k])
        vol.update(session=sessions[k].session)
    facts, warnings = timeline.facts(responses)
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
                "treated_lesions": None
                if s.treated_lesions is None
                else {kind: list(ids) for kind, ids in s.treated_lesions.items()},
                "treated_track_ids": timeline.treated_tracks(k),
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
        "facts": facts,
        "warnings": warnings,
        "assumptions": params.assumptions(),
        "provenance": {
            "brainmets_version": __version__,
            "segmentation_sha256": [doc["provenance"].get("input_sha256") for doc in documents],
            "parameters": {
                "tracking": vars(params.tracking),
                "response": vars(params.response),
                "growth": vars(params.growth),
                **{k: getattr(params, k) for k in SCALARS},
            },
        },
    }


def _role(stands_for: set[int], row: dict[str, Any] | None, response: dict[str, Any]) -> str | None:
    """The lesion's RANO-BM role at its session: target or non-target (what it holds of its baseline's lesions:
    a fragment of a target is a target), new (since), or None when absent."""
    if row is None:
        return None
    if stands_for & set(response["target_track_ids"]):
        return "target"
    if stands_for & set(response["non_target_track_ids"]):
        return "non_target"
    return "new"


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
    "PD": "progressive disease: the sum >= 20 % above the nadir and a target >= 5 mm larger, unequivocal progression "
    "of a non-target lesion, a new lesion, worse clinical status, or any lesion after a CR",
    "NE": "not evaluable (slices over 5 mm thick, or no measurable disease at baseline, and no progression or CR "
    "to see)",
}
PROGRESSION = {
    "target_sum": "the target sum >= 20 % above the nadir with a target >= 5 mm longer",
    "non_target": "unequivocal progression of a non-target lesion",
    "new_lesion": "an unequivocal new lesion",
    "irano_confirmation": "new lesions after immunotherapy grew: the earlier PD is confirmed (iRANO)",
    "clinical": "worse clinical status",
    "after_cr": "a lesion after a complete response",
}
ROLES = {
    "target": "a RANO-BM target lesion of its baseline",
    "non_target": "present at its baseline, not a target",
    "new": "appeared after its baseline",
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
    Field("rano_bm_target", None, "the track is a RANO-BM target lesion of this session's baseline", BOOLEAN),
    Field("rano_bm_role", None, "the lesion's RANO-BM role at this session; n/a when absent", ROLES),
    Field(
        "treated_with",
        None,
        "local treatments given to this lesion after this scan (srs, surgery: the row's treated_lesions or every "
        "lesion present; wbrt: every lesion present); none when none",
    ),
    Field(
        "growth_percent_per_month",
        None,
        "compound volume growth per month since the track's previous measurement; n/a when undefined",
    ),
    Field(
        "growth_percent_per_month_uncertainty",
        None,
        "uncertainty of that rate: each scan's volume uncertain by half a voxel layer of its surface, propagated",
    ),
    Field(
        "growth_beyond_noise",
        None,
        "growth since the previous measurement beyond measurement noise (measurable lesion, diameter and volume "
        "changes above their uncertainties, interval long enough); n/a when there is no previous measurement",
        BOOLEAN,
    ),
    Field(
        "touches_image_border", None, "the core reaches the image's edge (it may be cut off); n/a when absent", BOOLEAN
    ),
]
#: Columns of the response table (one row per session).
RESPONSE_FIELDS = _KEYS + [
    Field("response", None, "RANO-BM response", RESPONSES),
    Field("baseline_session", None, "the session this response is measured against (a new one after a resection)"),
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
        "CR / PR lasting until a scan >= 4 weeks later, and that later scan itself; a new-lesion PD after "
        "immunotherapy confirmed by progression then (iRANO); a PD resting on irradiated lesions confirmed by their "
        "further growth then; n/a until then, and for responses that need no confirmation",
        BOOLEAN,
    ),  # fmt: skip
    Field(
        "non_target_progression_track_ids",
        None,
        "non-target lesions that progressed unequivocally at this scan (at a new baseline: lesions that grew across "
        "the treatment); none when none",
    ),
    Field(
        "progression_by",
        None,
        "what made the response PD (at a new baseline: the progression since the scan before the treatment); none "
        "when none",
        PROGRESSION,
    ),
    Field(
        "treatment_effect_possible",
        None,
        "the progression rests only on irradiated lesions: it may be treatment effect (equivocal until confirmed)",
        BOOLEAN,
    ),
    Field("steroids", None, "corticosteroids at the scan, as the timeline gives them; n/a when not given"),
    Field(
        "radiographic_only",
        None,
        "steroids and clinical status were not given (for a CR: steroids were not given)",
        BOOLEAN,
    ),
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


def session_tracks(document: dict[str, Any], session: str, source: str) -> tuple[dict[int, int], int]:
    """Of one session of a follow-up document: each lesion id's track id, and the session's index. A session
    the document does not hold is an error naming ``source`` (the document's file)."""
    sessions = [s["session"] for s in document.get("sessions", [])]
    if session not in sessions:
        raise InputDataError(
            source, f"holds no session {session!r} (sessions: {', '.join(map(str, sessions)) or 'none'})"
        )
    rows = [r for r in document["lesions"] if r["session"] == session and r["lesion_id"] is not None]
    return {int(r["lesion_id"]): int(r["track_id"]) for r in rows}, sessions.index(session)


def followup_key(document: dict[str, Any]) -> str:
    """The follow-up's own identity, from which stable per-track UIDs are derived: its baseline segmentation's
    SHA-256 (no patient identifier), else the baseline's lesion rows (ids, volumes, centroids)."""
    import hashlib
    import json

    digests = (document.get("provenance") or {}).get("segmentation_sha256") or []
    if digests and digests[0]:
        return f"sha256:{digests[0]}"
    baseline = document["sessions"][0]["session"] if document.get("sessions") else None
    rows = [
        [r["track_id"], r["lesion_id"], r["volume_ml"], r["centroid_x_mm"], r["centroid_y_mm"], r["centroid_z_mm"]]
        for r in document.get("lesions", [])
        if r["session"] == baseline
    ]
    return "lesions:" + hashlib.sha256(json.dumps(rows).encode()).hexdigest()
