"""Cohort tables: one row per lesion, per study, per study's indications, per study's processing status, and
from follow-ups one row per lesion track and session and one per response."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .comparison import COMPARISON_LESION_FIELDS, COMPARISON_STUDY_FIELDS
from .comparison import table_rows as comparison_rows
from .config import read_features_document, read_json
from .errors import InputDataError
from .features import LESION_FIELDS, STUDY_FIELDS
from .fields import KEY_FIELDS, Field, data_dictionary, keyed
from .followup import LESION_TRACK_FIELDS, RESPONSE_FIELDS, table_rows
from .indications.engine import SUMMARY_FIELDS, summary_row
from .io.writers import atomic_outputs, to_jsonable, write_json, write_tsv

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
            keys = {"subject": document["subject"], "session": document["session"]}
        except (KeyError, TypeError) as exc:
            raise InputDataError(path, f"not a brainmets comparison document ({type(exc).__name__}: {exc})") from None
        tables.sources.append(str(path))
        tables.comparison_lesions += [{**keys, **row} for row in lesions]
        tables.comparison_studies.append({**keys, **study})
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

    data = {c: [to_jsonable(r.get(c)) for r in rows] for c in columns}
    pq.write_table(pa.table(data), path)
