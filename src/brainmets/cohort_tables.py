"""Cohort tables: one row per lesion, per study, per study's indications, per study's processing status, and
from follow-ups one row per lesion track and session and one per response."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainmets.comparison.agreement import COMPARISON_LESION_FIELDS, COMPARISON_STUDY_FIELDS
from brainmets.comparison.agreement import table_rows as comparison_rows
from brainmets.comparison.detection import COMPARISON_DETECTION_FIELDS, detection_rows
from brainmets.comparison.lesion_table import COMPARISON_LESION_TABLE_FIELDS
from brainmets.config import read_features_document, read_json
from brainmets.display import count, html_tables, one_line
from brainmets.errors import InputDataError
from brainmets.fields import KEY_FIELDS, Field, data_dictionary, keyed
from brainmets.indications.engine import SUMMARY_FIELDS, summary_row
from brainmets.io.writers import atomic_outputs, rounded, rounded_frame, write_json, write_tsv
from brainmets.longitudinal.followup import LESION_TRACK_FIELDS, RESPONSE_FIELDS, table_rows
from brainmets.study.columns import LESION_FIELDS, STUDY_FIELDS

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike

STATUS_FIELDS = [  # after participant_id and session_id (fields.KEY_FIELDS), as in every cohort table
    Field(
        "features_status",
        None,
        "whether the features step processed the study",
        {"ok": "processed", "failed": "the study's segmentation or reference could not be processed"},
    ),
    Field("features_error", None, "why the features step failed (names the file and the problem); n/a when ok"),
    Field(
        "indications_status",
        None,
        "whether the indications were evaluated",
        {
            "evaluated": "evaluated",
            "not_evaluated": "not evaluated: the features step failed",
            "absent": "no indication document was given",
        },
    ),
    Field("lesion_count", "count", "lesions found; n/a when the study failed"),
]


@dataclass
class CohortTables:
    lesions: list[dict[str, Any]] = field(default_factory=list)
    studies: list[dict[str, Any]] = field(default_factory=list)
    indications: list[dict[str, Any]] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)
    lesion_tracks: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    comparison_lesions: list[dict[str, Any]] = field(default_factory=list)
    comparison_studies: list[dict[str, Any]] = field(default_factory=list)
    comparison_detection: list[dict[str, Any]] = field(default_factory=list)  # brats2025: study x region x bin
    comparison_lesion_table: list[dict[str, Any]] = field(default_factory=list)  # every lesion of both sides
    sources: list[str] = field(default_factory=list)  # every document read (no output may overwrite one)


def gather(
    features: list[str],
    statuses: list[str],
    indications: list[str],
    followups: list[str] = (),
    followup_statuses: list[str] = (),
    comparisons: list[str] = (),
    comparison_statuses: list[str] = (),
) -> CohortTables:
    """Rows of every table from ``brainmets features`` documents (given directly, or through the status
    documents of the workflow's features step), ``brainmets indicate`` documents and ``brainmets followup``
    documents (directly, or through the followup step's status documents: failed subjects are left out)."""
    tables = CohortTables()
    comparisons = list(comparisons) + _ok_documents(comparison_statuses)
    for path in comparisons:
        document = read_json(path, "brainmets comparison document", InputDataError)
        try:
            lesions, study = comparison_rows(document)
            detection = detection_rows(document)
            keys = {"subject": document["subject"], "session": document["session"]}
        except (KeyError, TypeError) as exc:
            raise InputDataError(path, f"not a brainmets comparison document ({type(exc).__name__}: {exc})") from None
        tables.sources.append(str(path))
        tables.comparison_lesions += [{**keys, **row} for row in lesions]
        tables.comparison_studies.append({**keys, **study})
        tables.comparison_detection += [{**keys, **row} for row in detection]
        tables.comparison_lesion_table += [{**keys, **row} for row in document.get("lesion_table") or []]
    followups = list(followups)
    followups += _ok_documents(followup_statuses)
    for path in followups:
        document = read_json(path, "brainmets follow-up document", InputDataError)
        try:
            tracks, responses = table_rows(document)
            subject = {"subject": document["subject"]}
        except (KeyError, TypeError) as exc:
            raise InputDataError(path, f"not a brainmets follow-up document ({type(exc).__name__}: {exc})") from None
        tables.sources.append(str(path))
        tables.lesion_tracks += [{**subject, **row} for row in tracks]
        tables.responses += [{**subject, **row} for row in responses]
    documents = [(path, None) for path in features]
    for path in statuses:
        status = read_json(path, "brainmets status document", InputDataError)
        if status.get("status") not in ("ok", "failed") or not isinstance(status.get("outputs", {}), dict):
            raise InputDataError(path, "not a brainmets status document")
        row = {
            "subject": status.get("subject"),
            "session": status.get("session"),
            "features_status": status["status"],
            "features_error": status.get("error"),
        }
        tables.status.append(row)
        if status["status"] == "ok":
            document = status.get("outputs", {}).get("json")
            if not document:
                raise InputDataError(path, "the status names no features document")
            documents.append((document, row))
    for path, status_row in documents:
        study = (document := read_features_document(path, InputDataError))["study"]
        tables.sources.append(str(path))
        tables.studies.append(study)
        keys = {"subject": study.get("subject"), "session": study.get("session")}
        tables.lesions.extend({**keys, **lesion} for lesion in document["lesions"])
        if status_row is not None:
            status_row["lesion_count"] = study["lesion_count"]
    by_study = {(r["subject"], r["session"]): r for r in tables.status}
    for path in indications:
        document = read_json(path, "brainmets indication document", InputDataError)
        key = (document.get("subject"), document.get("session"))
        if key in by_study:
            by_study[key]["indications_status"] = document.get("status", "evaluated")
        if document.get("status", "evaluated") == "evaluated":
            try:
                tables.indications.append(summary_row(document))
            except (KeyError, TypeError, AttributeError, IndexError) as exc:
                problem = f"not a brainmets indication document ({type(exc).__name__}: {exc})"
                raise InputDataError(path, problem) from None
    for row in tables.status:
        row.setdefault("indications_status", "absent")
        row.setdefault("lesion_count", None)
    for name in TABLE_FIELDS:
        setattr(tables, name, [keyed(row) for row in getattr(tables, name)])
    return tables


def table_files(outputs: dict[str, str | Path], parquet: bool = False) -> list[tuple[str, str, Path]]:
    """(table, kind, path) of every file the tables are written to: TSV, its data dictionary, Parquet."""
    targets = []
    for name, path in outputs.items():
        path = Path(path)
        targets += [(name, "tsv", path), (name, "json", path.with_suffix(".json"))]
        if parquet:
            targets.append((name, "parquet", path.with_suffix(".parquet")))
    return targets


TABLE_FIELDS = {
    "lesions": LESION_FIELDS,
    "studies": STUDY_FIELDS,
    "indications": SUMMARY_FIELDS,
    "status": STATUS_FIELDS,
    "lesion_tracks": LESION_TRACK_FIELDS,
    "responses": RESPONSE_FIELDS,
    "comparison_lesions": COMPARISON_LESION_FIELDS,
    "comparison_studies": COMPARISON_STUDY_FIELDS,
    "comparison_detection": COMPARISON_DETECTION_FIELDS,
    "comparison_lesion_table": COMPARISON_LESION_TABLE_FIELDS,
}


def _ok_documents(statuses: list[str]) -> list[str]:
    """The documents that succeeded steps' status documents name (failed ones are listed in their logs)."""
    out = []
    for path in statuses:
        status = read_json(path, "brainmets status document", InputDataError)
        if status.get("status") == "ok" and isinstance(status.get("outputs"), dict) and status["outputs"].get("json"):
            out.append(status["outputs"]["json"])
    return out


def table_spec(name: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The columns and the data dictionary of one cohort table (lesions, studies, indications or status): the
    BIDS keys participant_id and session_id first, then the table's own columns."""
    fields = KEY_FIELDS + [f for f in TABLE_FIELDS[name] if f.name not in ("subject", "session")]  # the study's
    return [f.name for f in fields], data_dictionary(fields)


def write_tables(tables: CohortTables, outputs: dict[str, str | Path], parquet: bool = False) -> None:
    """TSV tables with their data dictionaries (and Parquet copies), all or nothing."""
    targets = table_files(outputs, parquet)
    with atomic_outputs(*[t[2] for t in targets]) as tmp_paths:
        for (name, kind, _), tmp in zip(targets, tmp_paths):
            columns, dictionary = table_spec(name)
            rows = getattr(tables, name)
            if kind == "tsv":
                write_tsv(tmp, columns, rows)
            elif kind == "json":
                write_json(tmp, dictionary)
            else:
                _write_parquet(tmp, columns, rows)


def _write_parquet(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {c: [rounded(r.get(c)) for r in rows] for c in columns}  # inf and NaN stay floats
    pq.write_table(pa.table(data), path)


@dataclass(repr=False)
class Cohort:
    """The ten cohort tables (what ``brainmets cohort`` writes) as DataFrames, each with the columns of its TSV
    (``participant_id`` and ``session_id`` first, as strings: "sub-01", "ses-01"), numbers rounded as in the
    files, one row per:

    - ``lesions``: lesion of every features document;
    - ``studies``: features document (the study summary);
    - ``indications``: evaluated indication document (each treatment's status);
    - ``status``: status document of the workflow's features step (empty when none is given);
    - ``lesion_tracks``: lesion track and session of every follow-up document;
    - ``responses``: session of every follow-up document (RANO-BM and volumetric responses);
    - ``comparison_lesions``: lesion group of every comparison document (``brainmets compare``);
    - ``comparison_studies``: comparison document (metrics and the features' differences);
    - ``comparison_detection``: region and size bin of every ``brats2025`` comparison document (recall, false
      positives, F1; pool them with :func:`brainmets.comparison.detection.pooled_detection`);
    - ``comparison_lesion_table``: reference and predicted lesion of each region of every comparison document
      (its ``lesion_table``: size, match, Dice, detection).

    A table with no document behind it is empty, with its columns. Its ``repr`` is one line; in a notebook it
    shows its studies and lesions."""

    lesions: pd.DataFrame
    studies: pd.DataFrame
    indications: pd.DataFrame
    status: pd.DataFrame
    lesion_tracks: pd.DataFrame
    responses: pd.DataFrame
    comparison_lesions: pd.DataFrame
    comparison_studies: pd.DataFrame
    comparison_detection: pd.DataFrame
    comparison_lesion_table: pd.DataFrame

    def __repr__(self) -> str:
        subjects = self.studies["participant_id"].nunique()
        parts = [
            f"{count(len(self.studies), 'study', 'studies')} of {count(subjects, 'subject')}",
            count(len(self.lesions), "lesion"),
        ]
        if len(self.indications):
            parts.append(f"{len(self.indications)} with indications")
        if len(self.status):
            failed = int((self.status["features_status"] == "failed").sum())
            parts.append(f"{len(self.status)} with a status ({failed} failed)")
        if len(self.responses):
            followed = self.responses["participant_id"].nunique()
            parts.append(f"{count(followed, 'subject')} followed up ({count(len(self.responses), 'session')})")
        if len(self.comparison_studies):
            parts.append(f"{count(len(self.comparison_studies), 'comparison')}")
        return one_line(f"<Cohort: {', '.join(parts)}>")

    def _repr_html_(self) -> str:
        return html_tables(repr(self), [("studies", self.studies), ("lesions", self.lesions)])


def cohort_frames(
    features: PathLike | Sequence[PathLike] = (),
    *,
    status: PathLike | Sequence[PathLike] = (),
    indications: PathLike | Sequence[PathLike] = (),
    followup: PathLike | Sequence[PathLike] = (),
    comparison: PathLike | Sequence[PathLike] = (),
) -> Cohort:
    """The cohort tables of these documents as DataFrames (see :func:`brainmets.cohort`)."""

    def paths(given: PathLike | Sequence[PathLike]) -> list[str]:
        return [str(given)] if isinstance(given, str | os.PathLike) else [str(p) for p in given]

    tables = gather(paths(features), paths(status), paths(indications), paths(followup), (), paths(comparison))
    frames = {}
    for name in (f.name for f in dataclass_fields(Cohort)):
        rows = getattr(tables, name)
        columns = table_spec(name)[0]
        frames[name] = rounded_frame(rows, columns, None).astype(
            {c: "string" for c in ("participant_id", "session_id") if c in columns}
        )
    return Cohort(**frames)
