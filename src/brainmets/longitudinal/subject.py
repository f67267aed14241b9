"""One subject followed up from its timeline: every session measured, registered if asked, and the follow-up
document built (what ``brainmets.follow_up`` and ``brainmets followup`` share)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainmets.config import load_config, with_features
from brainmets.display import Document, count, html_tables, one_line, who
from brainmets.errors import ConfigError
from brainmets.io.writers import rounded_frame
from brainmets.location.parameters import RegistrationParameters
from brainmets.location.registration import session_to_baseline
from brainmets.longitudinal.followup import LESION_TRACK_FIELDS, RESPONSE_FIELDS, FollowupParameters, table_rows
from brainmets.longitudinal.followup import follow_up as build
from brainmets.longitudinal.timeline import check_one_subject, read_timeline, sessions_from_rows
from brainmets.longitudinal.tracking import SessionLesions
from brainmets.measurement.parameters import FeatureParameters
from brainmets.schemes import scheme_setting
from brainmets.study.measure import dicom_options, measure_study, reference_choice

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike


class FollowUp(Document):
    """One subject's follow-up (:func:`follow_up`): ``.document``, the dict ``brainmets followup --out-json``
    writes, and its tables as DataFrames, numbers rounded as in the files:

    - ``lesions``: one row per lesion track and session, by (``session``, ``track_id``): the columns of
      ``--out-lesiontracks`` (lesion id, event, volume, axial diameter, RANO-BM role, growth, ...);
    - ``tracks``: one row per track, by ``track_id``: where and when it starts and ends, its first and last
      volume and their change, its treatments, whether it grew beyond measurement noise;
    - ``changes``: one row per track and interval between two measurements, by (``track_id``, ``from_session``,
      ``to_session``): volume and diameter changes with their uncertainties, growth rate, doubling time;
    - ``responses``: one row per session, by ``session``: the columns of ``--out-responses`` (RANO-BM response
      with its sums and reasons, volumetric response).

    Indexing it (``result["rano_bm"]``) reads the document. Its ``repr`` is one line; in a notebook it shows
    its responses and lesions."""

    __slots__ = ()

    @property
    def subject(self) -> str:
        return self.document["subject"]

    @property
    def lesions(self) -> pd.DataFrame:
        return rounded_frame(self.document["lesions"], [f.name for f in LESION_TRACK_FIELDS], ["session", "track_id"])

    @property
    def responses(self) -> pd.DataFrame:
        return rounded_frame(table_rows(self.document)[1], [f.name for f in RESPONSE_FIELDS], "session")

    @property
    def tracks(self) -> pd.DataFrame:
        rows = []
        for track in self.document["tracks"]:
            measured = [v for v in track["volumes_ml"] if v["volume_ml"] is not None]
            first, last = (measured[0], measured[-1]) if measured else ({}, {})
            change = None
            if first.get("volume_ml") and last.get("volume_ml") is not None:
                change = 100 * (last["volume_ml"] - first["volume_ml"]) / first["volume_ml"]
            rows.append({
                "track_id": track["track_id"],
                "first_session": track["first_session"],
                "last_session": last.get("session"),
                "sessions": len(measured),
                "first_volume_ml": first.get("volume_ml"),
                "last_volume_ml": last.get("volume_ml"),
                "volume_change_percent": change,
                "grew_beyond_noise": any(c["growth_beyond_noise"] for c in track["changes"]),
                "rano_bm_target": track["rano_bm_target"],
                "split_from": track["split_from"],
                "merged_into": track["merged_into"],
                "treatments": [f"{t['treatment']} after {t['session']}" for t in track["treatments"]],
            })  # fmt: skip
        columns = ["track_id", "first_session", "last_session", "sessions", "first_volume_ml", "last_volume_ml",
                   "volume_change_percent", "grew_beyond_noise", "rano_bm_target", "split_from", "merged_into",
                   "treatments"]  # fmt: skip
        return rounded_frame(rows, columns, "track_id")

    @property
    def changes(self) -> pd.DataFrame:
        rows = [{"track_id": t["track_id"], **c} for t in self.document["tracks"] for c in t["changes"]]
        columns = ["track_id", "from_session", "to_session", "days", "volume_change_ml", "volume_uncertainty_ml",
                   "percent_change", "growth_percent_per_month", "growth_percent_per_month_uncertainty",
                   "volume_doubling_time_days", "axial_diameter_change_mm", "axial_diameter_uncertainty_mm",
                   "growth_beyond_noise", "not_beyond_noise_because", "failed_criteria"]  # fmt: skip
        columns += sorted({k for r in rows for k in r} - set(columns))  # any the document gains
        return rounded_frame(rows, columns, ["track_id", "from_session", "to_session"])

    def __repr__(self) -> str:
        sessions, responses = self.document["sessions"], self.document["rano_bm"]
        span = f" {sessions[0]['date']} to {sessions[-1]['date']}" if len(sessions) > 1 else ""
        last = f", RANO-BM {responses[-1]['response']} at ses-{responses[-1]['session']}" if responses else ""
        return one_line(
            f"<FollowUp {who(self.subject, None)}: {count(len(sessions), 'session')}{span}, "
            f"{count(len(self.document['tracks']), 'lesion track')}{last}>"
        )

    def _repr_html_(self) -> str:
        return html_tables(repr(self), [("responses", self.responses), ("lesions", self.lesions)])


def register_sessions(sessions: list, settings: dict[str, Any]) -> tuple[list, list[dict[str, Any] | None]]:
    """The sessions with a transform estimated for each follow-up that has none, and each one's quality."""
    images = [dict(s.reference).get("subject_image") for s in sessions]
    if not images[0]:
        raise ConfigError("register: the baseline session has no subject_image to register to")
    params = RegistrationParameters.from_config(settings["anatomy"]["registration"])
    max_voxels = FeatureParameters.from_config(settings["features"]).max_voxels
    out, qualities = [sessions[0]], [None]
    for session, image in zip(sessions[1:], images[1:]):
        if session.transform is not None:
            out.append(session)
            qualities.append({"estimated": False, "reason": "the timeline gives this session's transform"})
            continue
        if not image:
            raise ConfigError(f"register: session {session.session} has no subject_image (and no transform)")
        matrix, quality = session_to_baseline(Path(image), Path(images[0]), params, max_voxels)
        out.append(dataclasses.replace(session, transform=matrix))
        qualities.append({"estimated": True, **quality})
    return out, qualities


def follow_up_timeline(
    timeline: PathLike | Sequence[Mapping[str, Any]] | pd.DataFrame,
    *,
    subject: str | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    register: bool = False,
    threads: int | None = None,
    **parameters: Any,
) -> FollowUp:
    """One subject's follow-up from its timeline (see :func:`brainmets.follow_up`)."""
    settings = with_features(load_config(config), parameters)
    if isinstance(timeline, str | os.PathLike):
        sessions = read_timeline(timeline, subject)
    else:
        records = timeline.to_dict(orient="records") if hasattr(timeline, "to_dict") else list(timeline)
        rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in records]
        if subject is None:
            check_one_subject(rows, "timeline")
        sessions = sessions_from_rows([r for r in rows if subject in (None, r.get("subject"))], "timeline")
    registrations: list[dict[str, Any] | None] = [None] * len(sessions)
    if register:
        sessions, registrations = register_sessions(sessions, settings)
    documents, data, affines = [], [], []
    for session in sessions:
        study_config = settings
        if session.label_scheme:
            study_config = with_features(settings, {"label_scheme": scheme_setting(session.label_scheme)})
        reference = dict(session.reference)
        options = {k: reference.pop(k, None) for k in ("atlas_dir", "subject_image", "reference_series")}
        choice = reference_choice(
            settings["anatomy"],
            {k: v for k, v in reference.items() if k != "reference_alignment"},
            alignment=reference.get("reference_alignment"),
            **{k: v for k, v in options.items() if k != "reference_series"},
        )
        measured = measure_study(
            session.segmentation,
            study_config,
            choice,
            dicom_options(settings["dicom"], options["reference_series"]),
            subject=session.subject,
            session=session.session,
            threads=threads,
        )
        documents.append(measured.document)
        data.append(
            SessionLesions.from_measurement(
                measured.features.lesions, measured.instances, measured.affine, session.transform
            )
        )
        affines.append(measured.affine)
    document = build(
        sessions, documents, data, affines, FollowupParameters.from_config(settings["followup"]), registrations
    )
    rano = settings["features"]["rano_bm"]
    document["assumptions"].insert(
        0,
        f"targets: up to features.rano_bm.max_target_lesions = {rano['max_target_lesions']} measurable lesions, "
        f"largest first; measurable: axial longest diameter >= features.rano_bm.min_longest_diameter_mm = "
        f"{rano['min_longest_diameter_mm']:g} mm, perpendicular >= min_perpendicular_diameter_mm = "
        f"{rano['min_perpendicular_diameter_mm']:g} mm, on >= min_axial_slices = {rano['min_axial_slices']} axial "
        "slices (RANO-BM, Lin NU et al., Lancet Oncol 2015)",
    )
    return FollowUp(document)
