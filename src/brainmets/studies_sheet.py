"""The workflow's studies sheet, checked row by row: one line per problem, naming the sheet, the 1-based row
and the column, instead of a schema validator's dump counting rows from zero."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError, LabelSchemeError
from .labels import scheme_setting


def check_rows(studies: pd.DataFrame, sheet: str | Path, schema_file: str | Path) -> None:
    """Raise :class:`ConfigError` ("SHEET: row N (subject S), column C: problem") at the first row that does
    not match ``schema_file`` (a JSON Schema of one row) or whose ``label_scheme`` is neither a scheme name nor a
    custom mapping ("enhancing=3;necrotic=1;edema=2", as ``--custom-labels`` takes)."""
    import jsonschema

    from .config import load_yaml, read_text

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
    from .config import load_yaml, read_text

    for key, value in load_yaml(read_text(demo_file)).items():
        if config.get(key) in (None, "", []):
            config[key] = value
    return True
