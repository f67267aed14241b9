"""A subject's timeline: its dated sessions, in order, each with a segmentation, an optional world-to-world
transform to the baseline, and what happened after the scan (treatment, steroids, clinical status)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmets.config import read_text
from brainmets.errors import ConfigError, InputDataError
from brainmets.identifiers import check_label

TREATMENTS = ("srs", "wbrt", "surgery", "systemic", "immunotherapy")
#: Corticosteroids at the scan: none or a physiological (replacement) dose allow a complete response (RANO-BM).
STEROIDS = ("none", "physiological", "decreased", "stable", "increased")
CLINICAL_STATUS = ("improved", "stable", "worse")
REQUIRED = ("subject", "session", "date", "segmentation")
OPTIONAL = ("label_scheme", "transform", "treatment", "treated_lesions", "steroids", "clinical_status")
#: Treatments given to chosen lesions (the others treat every lesion present: WBRT, systemic therapy).
FOCAL_TREATMENTS = ("srs", "surgery")
#: Optional columns of the workflow's studies sheet that a timeline row may carry too (the study's reference).
SHEET_COLUMNS = ("parcellation", "posterior_fossa_mask", "subject_image", "atlas", "atlas_dir", "template",
                 "reference_alignment", "reference_series", "dicom_options")  # fmt: skip


@dataclass(frozen=True)
class Session:
    """One scan of the timeline."""

    subject: str
    session: str
    date: dt.datetime  # a date alone is its midnight
    segmentation: str
    label_scheme: str | None = None
    transform: np.ndarray | None = None  # 4x4: this session's RAS world (mm) -> the baseline's
    treatment: tuple[str, ...] = ()  # given after this scan
    treated_lesions: dict[str, tuple[int, ...]] | None = (
        None  # SRS / surgery -> the lesion ids of this session it treated
    )
    steroids: str | None = None
    clinical_status: str | None = None
    reference: tuple[tuple[str, str], ...] = ()  # the sheet's reference columns that were given


def read_transform(path: str | Path) -> np.ndarray:
    """A 4x4 world-to-world matrix (RAS, mm) from a text file: four rows of four numbers, last row 0 0 0 1."""
    text = read_text(path, InputDataError)
    try:
        matrix = np.array([[float(v) for v in line.replace(",", " ").split()] for line in text.splitlines()
                           if line.strip() and not line.lstrip().startswith("#")])  # fmt: skip
    except ValueError:
        raise InputDataError(path, "not a 4x4 matrix of numbers (four rows of four, whitespace-separated)") from None
    if matrix.shape != (4, 4):
        raise InputDataError(path, f"not a 4x4 matrix: {matrix.shape[0] if matrix.ndim else 0} rows as read")
    if not np.all(np.isfinite(matrix)):
        raise InputDataError(path, "the matrix holds NaN or infinite values")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise InputDataError(path, "the last row must be 0 0 0 1 (an affine transform)")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-6:
        raise InputDataError(path, "the matrix is singular")
    return matrix


def _date(text: str, where: str, source: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
        return value.replace(tzinfo=None) - (value.utcoffset() or dt.timedelta(0))  # UTC when a zone is given
    except ValueError:
        raise InputDataError(source, f"{where}: date {text!r} is not an ISO 8601 date (YYYY-MM-DD)") from None


def iso(moment: dt.datetime) -> str:
    """A session's date as written back: the day alone when it had no time."""
    return moment.date().isoformat() if moment.time() == dt.time() else moment.isoformat()


def _choices(text: str, allowed: tuple[str, ...], column: str, where: str, source: str) -> tuple[str, ...]:
    values = tuple(v.strip().lower() for v in text.replace(";", ",").split(",") if v.strip())
    for value in values:
        if value not in allowed:
            raise InputDataError(source, f"{where}, column {column}: {value!r} is not one of {', '.join(allowed)}")
    return values


def _lesion_ids(text: str, treatment: tuple[str, ...], where: str, source: str) -> dict[str, tuple[int, ...]] | None:
    """The ``treated_lesions`` cell, by focal treatment of the row: lesion ids of the session's lesion table,
    ``;``-separated, each for every SRS / surgery of the row, or for one as ``srs:2`` / ``surgery:1`` (None: empty,
    every lesion present was treated)."""
    cells = [v.strip() for v in text.replace(",", ";").split(";") if v.strip()]
    if not cells:
        return None
    focal = [t for t in treatment if t in FOCAL_TREATMENTS]
    if not focal:
        raise InputDataError(
            source,
            f"{where}, column treated_lesions: given, but the row's treatment has no {' or '.join(FOCAL_TREATMENTS)} "
            "(WBRT treats every lesion present)",
        )
    out: dict[str, list[int]] = {kind: [] for kind in focal}
    for cell in cells:
        kind, _, number = cell.rpartition(":")
        kind = kind.strip().lower()
        if kind and kind not in focal:
            raise InputDataError(
                source,
                f"{where}, column treated_lesions: {cell!r} names {kind!r}, not a treatment of the row ({', '.join(focal)})",
            )
        number = number.strip()
        if not number.isdigit() or int(number) < 1:
            raise InputDataError(source, f"{where}, column treated_lesions: {cell!r} is not a lesion id (1, 2, ...)")
        for name in [kind] if kind else focal:
            if int(number) in out[name]:
                raise InputDataError(source, f"{where}, column treated_lesions: lesion {number} is listed twice")
            out[name].append(int(number))
    return {kind: tuple(ids) for kind, ids in out.items() if ids} or None


def check_one_subject(rows: list[dict[str, str]], source: str) -> None:
    """Refuse rows of several subjects (a studies sheet given as one timeline), listing them and saying how to
    choose one; labels that are not BIDS labels are left to :func:`sessions_from_rows`, which names their row."""
    subjects = sorted(s for s in {(r.get("subject") or "").strip() for r in rows} if s.isalnum() and s.isascii())
    if len(subjects) > 1:
        raise InputDataError(
            source,
            f"sessions of more than one subject in one timeline: {', '.join(subjects[:10])}"
            + (f", ... ({len(subjects)} subjects)" if len(subjects) > 10 else "")
            + f"; a follow-up is one subject's: choose it (--subject {subjects[0]}, or subject= in Python)",
        )


def sessions_from_rows(rows: list[dict[str, str]], source: str, base: Path | None = None) -> list[Session]:
    """The sessions of one subject's timeline rows, checked: one subject, every date given, no date or session
    twice, dates in order. File paths are resolved against ``base`` (the table's folder) when given."""
    if not rows:
        raise InputDataError(source, "the timeline has no sessions")
    sessions = []
    for k, row in enumerate(rows, start=1):
        where = f"row {k}"
        for column in REQUIRED:
            if not (row.get(column) or "").strip():
                raise InputDataError(source, f"{where}: no {column}")
        subject, session = row["subject"].strip(), row["session"].strip()
        try:
            check_label(subject, f"{where}: subject")
            check_label(session, f"{where}: session")
        except ConfigError as exc:
            raise InputDataError(source, str(exc)) from None

        def path(column: str, row: dict[str, str] = row) -> str:
            value = (row.get(column) or "").strip()
            return str(base / value) if value and base is not None else value

        transform = read_transform(path("transform")) if path("transform") else None
        steroids = _choices(row.get("steroids") or "", STEROIDS, "steroids", where, source)
        status = _choices(row.get("clinical_status") or "", CLINICAL_STATUS, "clinical_status", where, source)
        treatment = _choices(row.get("treatment") or "", TREATMENTS, "treatment", where, source)
        sessions.append(
            Session(
                subject=subject,
                session=session,
                date=_date(row["date"].strip(), where, source),
                segmentation=path("segmentation"),
                label_scheme=(row.get("label_scheme") or "").strip() or None,
                transform=transform,
                treatment=treatment,
                treated_lesions=_lesion_ids(row.get("treated_lesions") or "", treatment, where, source),
                steroids=steroids[0] if steroids else None,
                clinical_status=status[0] if status else None,
                reference=tuple((c, path(c)) for c in SHEET_COLUMNS if (row.get(c) or "").strip()),
            )
        )
    subjects = sorted({s.subject for s in sessions})
    if len(subjects) > 1:
        raise InputDataError(source, f"sessions of more than one subject in one timeline: {', '.join(subjects)}")
    for attribute in ("session", "date"):
        values = [getattr(s, attribute) for s in sessions]
        repeated = sorted({iso(v) if attribute == "date" else v for v in values if values.count(v) > 1})
        if repeated:
            raise InputDataError(source, f"{attribute} given more than once: {', '.join(repeated)}")
    for before, after in zip(sessions, sessions[1:]):
        if after.date < before.date:
            raise InputDataError(
                source,
                f"dates out of order: session {after.session} ({iso(after.date)}) comes after session "
                f"{before.session} ({iso(before.date)}); list the sessions oldest first",
            )
    if sessions[0].transform is not None and not np.allclose(sessions[0].transform, np.eye(4)):
        raise InputDataError(source, "the baseline (first) session's transform must be the identity, or none")
    return sessions


def read_timeline(path: str | Path, subject: str | None = None) -> list[Session]:
    """A timeline TSV (columns: subject, session, date, segmentation; optionally label_scheme, transform,
    treatment, treated_lesions, steroids, clinical_status), paths relative to its folder. With ``subject``, the file may be the
    workflow's studies sheet: that subject's rows are its timeline (other columns are passed over)."""
    path = Path(path)
    text = read_text(path, InputDataError)
    lines = [line for line in text.splitlines() if not line.startswith("#")]  # the sheet's comments
    reader = csv.DictReader(io.StringIO("\n".join(lines), newline=""), delimiter="\t")
    header = reader.fieldnames or []
    rows = [dict(r) for r in reader]
    if subject is None:  # the workflow's studies sheet, most likely: say so before its extra columns
        check_one_subject(rows, str(path))
    unknown = [c for c in header if c not in (*REQUIRED, *OPTIONAL, *SHEET_COLUMNS)]
    if unknown and subject is None:
        raise InputDataError(path, f"unknown column(s) {', '.join(unknown)} (known: {', '.join(REQUIRED + OPTIONAL)})")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputDataError(path, f"no column {', '.join(missing)}")
    if subject is not None:
        rows = [r for r in rows if (r.get("subject") or "").strip() == subject]
        if not rows:
            raise InputDataError(path, f"no session of subject {subject!r}")
    return sessions_from_rows(rows, str(path), path.parent)
