"""One study's indication document: its features, its clinical row (found by subject and session) and its
follow-up's facts evaluated against the rule table (what ``brainmets.indicate`` and ``brainmets indicate`` share)."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainmets.errors import ConfigError
from brainmets.indications.clinical import clinical_records, find_row, read_clinical
from brainmets.indications.engine import RuleSet, evaluate_study, histologies
from brainmets.io.core import file_sha256, path_or_none

if TYPE_CHECKING:
    pass

PathLike = str | os.PathLike


def indications_document(
    document: dict[str, Any],
    clinical: Any,
    *,
    rules: PathLike | None,
    thresholds: Mapping[str, Any],
    subject: str | None = None,
    session: str | None = None,
    features_path: PathLike | None = None,
    followup: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The indication document of one features document (what :func:`indicate` and ``brainmets indicate``
    share); ``clinical`` and ``followup`` as for :func:`indicate`."""
    ruleset = RuleSet.load(path_or_none(rules), dict(thresholds))
    subject = subject or document["study"].get("subject")
    session = session or document["study"].get("session")
    rows, source, clinical_path = clinical_rows(clinical, subject)
    if subject is None and source == "clinical row" and rows and rows[0].get("subject"):
        subject, session = rows[0]["subject"], session or rows[0].get("session")  # the one row names the study
    row = None
    if rows is not None:
        if subject is None:
            raise ConfigError("give the subject: the features document names no subject")
        row = find_row(rows, subject, session, source)
        row = copy.deepcopy(row)  # the table's rows are shared by the studies of a batch
        if row is None and source == "clinical row":  # the one row given is another study's
            raise ConfigError(
                f"clinical row: it is for subject {rows[0]['subject']!r}, session {rows[0].get('session')!r}; "
                f"the study is subject {subject!r}, session {session!r}"
            )
        if row is None:
            logging.getLogger("brainmets").warning(
                "%s: no row for subject %s, session %s: clinical inputs unknown", source, subject, session
            )
    provenance = {
        "features_sha256": file_sha256(Path(features_path)) if features_path else None,
        "segmentation_sha256": document.get("provenance", {}).get("input_sha256"),
        "clinical_sha256": file_sha256(Path(clinical_path)) if clinical_path else None,
        "clinical_row_found": row is not None,
    }
    if followup is not None and followup.get("subject") not in (None, subject):
        raise ConfigError(f"the follow-up is of subject {followup.get('subject')!r}, the study of {subject!r}")
    result = evaluate_study(
        {**document, "study": {**document["study"], "subject": subject}},
        row,
        ruleset,
        provenance,
        None if followup is None else dict(followup),
    )
    result["subject"], result["session"], result["status"] = subject, session, "evaluated"
    used = result.get("followup")
    if used is not None and session is not None and used["session"] != session:
        result["warnings"].append(
            f"the follow-up's facts are as of its last session {used['session']}, not this study's session {session}"
        )
    return result


def clinical_rows(clinical: Any, subject: str | None) -> tuple[list[dict[str, Any]] | None, str, PathLike | None]:
    """(typed rows, their source's name, the file they came from) of the ``clinical`` argument; one row given
    without a subject is the study's."""
    import pandas as pd  # only for a table or row given as pandas objects: the CLI's start stays light

    names = set(histologies())
    if clinical is None:
        return None, "", None
    if isinstance(clinical, str | os.PathLike):
        return read_clinical(clinical, names), str(clinical), clinical
    if isinstance(clinical, pd.Series):  # one row of a DataFrame
        clinical = clinical.to_dict()
    if isinstance(clinical, Mapping):
        named = clinical.get("subject") not in (None, "") and clinical.get("subject") == clinical.get("subject")
        if not named and subject is None:  # (NaN != NaN: pandas's empty cell)
            raise ConfigError("give the subject: neither the features document nor the clinical row names one")
        row = dict(clinical) if named else {**clinical, "subject": subject}
        return clinical_records([row], "clinical row", names), "clinical row", None
    if isinstance(clinical, pd.DataFrame):
        records = clinical.to_dict(orient="records")
        return clinical_records(records, "clinical table", names), "clinical table", None
    if isinstance(clinical, Sequence):
        return clinical_records([dict(r) for r in clinical], "clinical rows", names), "clinical rows", None
    raise ConfigError(f"clinical: expected a path, a row (mapping), rows or a DataFrame, not {type(clinical).__name__}")
