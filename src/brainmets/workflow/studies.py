"""The workflow's studies: the studies sheet read and checked row by row (one line per problem, naming the
sheet, the 1-based row and the column, instead of a schema validator's dump counting rows from zero), or the
studies discovered in a BIDS-like folder; each study named by its BIDS entities; the subjects followed over
time; the demo's settings for a config that names no studies. No Snakemake here: every function takes the
config (a mapping, as the workflow's ``config``) and returns plain values, so that tests need no workflow run."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from brainmets.errors import ConfigError, LabelSchemeError
from brainmets.io import bids
from brainmets.schemes import scheme_setting

#: Optional columns of the studies sheet that name files (resolved against the sheet's folder).
FILE_COLUMNS = ("segmentation", "parcellation", "posterior_fossa_mask", "subject_image", "atlas_dir",
                "reference_series", "dicom_options", "transform", "prediction")  # fmt: skip
#: Optional columns passed to `brainmets features` as options of the same name.
REFERENCE_COLUMNS = ("parcellation", "posterior_fossa_mask", "subject_image", "atlas", "atlas_dir", "template",
                     "reference_alignment", "reference_series", "dicom_options")  # fmt: skip
#: Optional columns naming files (or folders) the study's features depend on.
INPUT_COLUMNS = ("segmentation", "parcellation", "posterior_fossa_mask", "subject_image", "reference_series",
                 "dicom_options")  # fmt: skip
#: Optional columns every study has after :func:`prepare` (empty when the sheet leaves them out).
OPTIONAL_COLUMNS = ("session", "label_scheme", "date", "transform", "prediction", *REFERENCE_COLUMNS)


def check_rows(studies: pd.DataFrame, sheet: str | Path, schema_file: str | Path) -> None:
    """Raise :class:`ConfigError` ("SHEET: row N (subject S), column C: problem") at the first row that does
    not match ``schema_file`` (a JSON Schema of one row) or whose ``label_scheme`` is neither a scheme name nor a
    custom mapping ("enhancing=3;necrotic=1;edema=2", as ``--custom-labels`` takes)."""
    import jsonschema

    from brainmets.config import load_yaml, read_text

    schema = load_yaml(read_text(schema_file))
    validator = jsonschema.Draft202012Validator(schema)
    missing = [c for c in schema.get("required", []) if c not in studies.columns]
    if missing:
        raise ConfigError(f"{sheet}: no column {', '.join(missing)} (columns: {', '.join(studies.columns)})")
    for number, (_, row) in enumerate(studies.iterrows(), start=1):
        record: dict[str, Any] = {k: v for k, v in row.items() if isinstance(k, str)}
        where = f"{sheet}: row {number}" + (f" (subject {record['subject']})" if record.get("subject") else "")
        error = next(iter(sorted(validator.iter_errors(record), key=lambda e: list(e.path))), None)
        if error is not None:
            column = error.path[0] if error.path else None
            if column is None:
                raise ConfigError(f"{where}: {error.message}")
            raise ConfigError(f"{where}, column {column}: {_problem(error, record[column])}")
        if record.get("label_scheme"):
            try:
                scheme_setting(record["label_scheme"], check=True)
            except LabelSchemeError as exc:
                raise ConfigError(f"{where}, column label_scheme: {exc}") from None


def _problem(error, value: Any) -> str:
    """A validator error in words, for one cell."""
    if error.validator == "pattern":
        described = error.schema.get("description")
        return f"{value!r} is not allowed" + (f" (expected: {described})" if described else "")
    if error.validator == "minLength":
        return "empty; a value is required"
    return error.message


def with_demo(config: dict[str, Any], demo_file: str | Path) -> bool:
    """Give a config that names no studies (neither ``studies`` nor ``bids_dir``) the bundled demo's settings
    (its studies sheet and clinical table, from ``demo_file``), keys the user set left alone; whether it did.
    A user's own studies sheet therefore never inherits the demo's clinical table."""
    if config.get("studies") or config.get("bids_dir") or not Path(demo_file).is_file():
        return False  # the user's studies, or no demo here (the run then asks for studies or bids_dir)
    from brainmets.config import load_yaml, read_text

    for key, value in load_yaml(read_text(demo_file)).items():
        if config.get(key) in (None, "", []):
            config[key] = value
    return True


def read_studies(sheet: str | Path, schema_file: str | Path) -> pd.DataFrame:
    """The studies sheet (TSV, UTF-8), checked against ``schema_file`` (a JSON Schema of one row: the workflow's
    ``workflow/schemas/studies.schema.yaml``), with file paths resolved against the sheet's folder, prepared
    (:func:`prepare`)."""
    from brainmets.config import read_text

    text = read_text(sheet)  # UTF-8 (a byte-order mark is accepted), else an error naming the sheet
    studies = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, comment="#")
    check_rows(studies, sheet, schema_file)
    base = Path(sheet).parent
    for column in FILE_COLUMNS:
        if column in studies:
            studies[column] = [str(base / p) if p else "" for p in studies[column]]
    return prepare(studies, str(sheet))


def prepare(studies: pd.DataFrame, source: str) -> pd.DataFrame:
    """Fill the optional columns, check the labels, name each study (``study``: its BIDS entities, the index;
    ``studydir``: its folder) and refuse duplicates (ValueError naming `source`)."""
    from brainmets.identifiers import check_label

    for column in OPTIONAL_COLUMNS:
        if column not in studies:
            studies[column] = ""
    for subject, session in zip(studies["subject"], studies["session"]):  # they name output folders
        check_label(subject, f"{source}: subject")
        check_label(session or None, f"{source}: session")
    studies["study"] = [bids.study_entities(s, x) for s, x in zip(studies["subject"], studies["session"])]
    studies["studydir"] = [bids.study_dir(s, x) for s, x in zip(studies["subject"], studies["session"])]
    duplicated = studies["study"][studies["study"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{source}: studies listed more than once: {', '.join(duplicated)}")
    return studies.set_index("study", drop=False)


def discover_bids(root: str | Path, patterns: Mapping[str, str]) -> pd.DataFrame:
    """Studies of a BIDS-like folder: one per ``sub-*/[ses-*/]anat/`` holding exactly one segmentation (the
    config's ``bids`` patterns: ``segmentation``, ``parcellation``, ``subject_image``), sorted by subject and
    session; a ValueError when a folder holds two segmentations or none holds one."""
    rows = []
    for anat in [folder for pattern in bids.ANAT_FOLDERS for folder in sorted(Path(root).glob(pattern))]:
        parcellations = sorted(anat.glob(patterns["parcellation"]))
        segmentations = sorted(set(anat.glob(patterns["segmentation"])) - set(parcellations))
        if not segmentations:
            continue
        if len(segmentations) > 1:
            names = ", ".join(p.name for p in segmentations)
            raise ValueError(f"{anat}: more than one segmentation matches {patterns['segmentation']!r}: {names}")
        images = sorted(anat.glob(patterns["subject_image"]))
        session = anat.parent.name[4:] if anat.parent.name.startswith("ses-") else ""
        subject = (anat.parent.parent if session else anat.parent).name[4:]
        rows.append(
            {
                "subject": subject,
                "session": session,
                "segmentation": str(segmentations[0]),
                "parcellation": str(parcellations[0]) if parcellations else "",
                "subject_image": str(images[0]) if images else "",
            }
        )
    rows.sort(key=lambda r: (r["subject"], r["session"]))
    if not rows:
        raise ValueError(f"{root}: no segmentation matching {patterns['segmentation']!r} in sub-*/[ses-*/]anat/")
    return pd.DataFrame(rows, dtype=str)


def load_studies(config: Mapping[str, Any], schema_file: str | Path) -> pd.DataFrame:
    """The studies of a (validated) workflow config: from its studies sheet (``studies``), or discovered in its
    BIDS-like folder (``bids_dir``, with the ``bids`` patterns); exactly one of the two."""
    if bool(config["studies"]) == bool(config["bids_dir"]):
        raise ValueError("config: give either `studies` (a studies sheet) or `bids_dir` (a BIDS-like folder)")
    if config["studies"]:
        return read_studies(config["studies"], schema_file)
    return prepare(discover_bids(config["bids_dir"], config["bids"]), "bids_dir")


def followed_subjects(config: Mapping[str, Any], studies: pd.DataFrame) -> dict[str, list[str]]:
    """Subjects with two or more dated sessions in the studies sheet (their follow-up timelines), with their
    studies in sheet order; none when the studies come from a BIDS folder (no dates)."""
    if not config["studies"]:
        return {}
    dated: dict[str, list[str]] = {}
    for study, row in studies.iterrows():
        if row["date"]:
            dated.setdefault(row["subject"], []).append(str(study))
    return {subject: names for subject, names in dated.items() if len(names) > 1}


def source_datasets(config: Mapping[str, Any]) -> list[str]:
    """The datasets the results are made from (dataset_description.json SourceDatasets): the config's
    ``source_datasets``, and the DatasetDOI of a ``bids_dir`` dataset's own description, when it has one."""
    from brainmets.config import read_text

    sources = list(config["source_datasets"])
    described = Path(config["bids_dir"] or "", "dataset_description.json")
    if config["bids_dir"] and described.is_file():
        try:
            doi = json.loads(read_text(str(described))).get("DatasetDOI")
        except ValueError as exc:
            raise ValueError(f"{described}: not valid JSON ({exc})") from None
        if isinstance(doi, str) and doi.strip():
            sources.append(doi if doi.lower().startswith("doi:") else f"doi:{doi}")
    return sources
