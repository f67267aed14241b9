"""The clinical table: one row per subject (and session), typed and validated against a schema."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import threading
from pathlib import Path
from typing import Any

from brainmets.config import load_schema, read_text, validate_with
from brainmets.errors import ConfigError, InputDataError

SCHEMA = "clinical.schema.yaml"
TRUE = {"yes", "y", "true", "t", "1"}
FALSE = {"no", "n", "false", "f", "0"}


def _types(spec: dict) -> set[str]:
    kind = spec.get("type", [])
    kinds = set(kind if isinstance(kind, list) else [kind])
    if "enum" in spec:
        kinds.add("string")
    return kinds - {"null"}


def _parse(column: str, text: str, spec: dict) -> Any:
    """A cell's typed value (None when empty); raises ValueError with the reason."""
    text = text.strip()
    if text == "" or text.lower() in ("n/a", "na"):
        return None
    kinds = _types(spec)
    if "boolean" in kinds:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise ValueError(f"{text!r} is not yes/no")
    if "integer" in kinds:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if "number" in kinds:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    if "array" in kinds:
        return [item.strip() for item in re.split(r"[,;]", text) if item.strip()]
    if column == "primary_histology":
        return text.lower().replace(" ", "_").replace("-", "_")
    return text.lower() if "enum" in spec else text


#: The table last read in this process, by its content's SHA-256: a batch of studies sharing one clinical
#: table of N rows reads and validates it once, not once per study.
_READ: dict[tuple, list[dict[str, Any]]] = {}
_READ_LOCK = threading.Lock()


def read_clinical(path: str | Path, histologies: set[str]) -> list[dict[str, Any]]:
    """All rows of a clinical TSV (UTF-8), typed; an error names the file, the line, the column and the value.
    The rows are shared by every caller in the process: read them, do not change them."""
    path = Path(path)
    try:
        key = (hashlib.sha256(path.read_bytes()).hexdigest(), frozenset(histologies))
    except OSError:
        return _read_clinical(path, histologies)  # its error names the file
    with _READ_LOCK:
        rows = _READ.get(key)
        if rows is None:
            _READ.clear()  # one at a time: the workflow's batches share one
            rows = _READ[key] = _read_clinical(path, histologies)
    return rows


def _read_clinical(path: Path, histologies: set[str]) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(read_text(path, InputDataError), newline=""), delimiter="\t")
    header = reader.fieldnames or []

    def cells():
        for raw in _rows(reader, path):
            line = reader.line_num
            if None in raw:  # DictReader keeps the cells beyond the header under the key None
                cells = len(header) + len(raw[None])
                raise InputDataError(path, f"line {line} has {cells} cells, more than the header's {len(header)}")
            yield f"line {line}", raw

    return typed_rows(header, cells(), path, histologies)


def clinical_records(records: list[dict[str, Any]], source: str, histologies: set[str]) -> list[dict[str, Any]]:
    """Rows given as mappings (a notebook's dicts or DataFrame records), typed and checked as a TSV's cells are:
    every value is read as the text a table would hold (None and NaN are empty)."""
    header = list(dict.fromkeys(key for record in records for key in record))

    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("<NA>", "NaT"):
            return ""
        if isinstance(value, float) and value.is_integer():  # 70.0: pandas's reading of an integer column with gaps
            return str(int(value))
        if isinstance(value, list | tuple):
            return ",".join(map(str, value))
        return str(value)

    cells = ((f"row {k + 1}", {c: text(r.get(c)) for c in header}) for k, r in enumerate(records))
    return typed_rows(header, cells, source, histologies)


def typed_rows(header: list[str], cells, source: str | Path, histologies: set[str]) -> list[dict[str, Any]]:
    """Typed, validated rows from ``(where, {column: text})`` pairs; an error names the source, where, the column
    and the value."""
    properties = load_schema(SCHEMA)["properties"]
    unknown = [c for c in header if c not in properties]
    if unknown:
        raise InputDataError(
            source, f"unknown column(s) {', '.join(map(repr, unknown))} (known: {', '.join(properties)})"
        )
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputDataError(source, f"column(s) {', '.join(repeated)} appear more than once in the header")
    if "subject" not in header:
        raise InputDataError(source, "no 'subject' column")
    rows = []
    for where, raw in cells:
        row: dict[str, Any] = {}
        for column, text in raw.items():
            try:
                row[column] = _parse(column, text or "", properties[column])
            except ValueError as exc:
                raise InputDataError(source, f"{where}, column {column}: {exc}") from None
        if row.get("primary_histology") not in (None, *histologies):
            raise InputDataError(
                source,
                f"{where}, column primary_histology: {row['primary_histology']!r} is not one of "
                f"{', '.join(sorted(histologies))}",
            )
        try:
            rows.append(validate_with(SCHEMA, row, where))
        except ConfigError as exc:
            raise InputDataError(source, str(exc)) from None
    return rows


def _rows(reader: csv.DictReader, path: Path):
    """The reader's rows; a cell the csv module refuses (e.g. over its 128 kB limit) names its line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputDataError(path, f"line {reader.line_num}: {exc}") from None


def find_row(rows: list[dict[str, Any]], subject: str, session: str | None, source: str) -> dict[str, Any] | None:
    """The row of a subject (and session: a row with an empty session serves every session)."""
    matches = [r for r in rows if r["subject"] == subject and r.get("session") in (None, session)]
    exact = [r for r in matches if r.get("session") == session] or matches
    if len(exact) > 1:
        raise InputDataError(source, f"more than one row for subject {subject!r}, session {session!r}")
    return exact[0] if exact else None
