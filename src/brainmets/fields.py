"""Output columns: each one's name, unit, definition and levels, and the BIDS data dictionary describing a table
(``LongName``, ``Description``, ``Units`` in CMIXF spelling, ``Levels`` for categorical columns)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Levels of a true/false column, as TSV tables write them.
BOOLEAN = {"true": "yes", "false": "no"}

#: Units as CMIXF (BIDS) spells them; counts and voxel indices are dimensionless (no Units).
_CMIXF = {"mm2": "mm^2", "mm3": "mm^3", "count": None, "voxel": None}
#: Words of column names that a long name spells differently (units, which Units carries, are dropped).
_WORDS = {
    "ml": "",
    "mm": "",
    "mm2": "",
    "mm3": "",
    "id": "ID",
    "3d": "3D",
    "rano": "RANO-BM",
    "bm": "",
    "gpa": "GPA",
    "rpa": "RPA",
    "ds": "diagnosis-specific",
    "wbrt": "WBRT",
    "srs": "SRS",
    "bbox": "bounding box",
    "min": "minimum",
    "max": "maximum",
}


@dataclass(frozen=True)
class Field:
    """One output column: its name, unit (None when dimensionless), definition, and levels when categorical."""

    name: str
    unit: str | None
    description: str
    levels: Mapping[str, str] | None = None
    long_name: str | None = None

    @property
    def bids_units(self) -> str | None:
        return _CMIXF.get(self.unit, self.unit) if self.unit else None

    @property
    def bids_long_name(self) -> str:
        if self.long_name:
            return self.long_name
        words = [_WORDS.get(w, w) for w in self.name.split("_")]
        text = " ".join(w for w in words if w)
        return text[:1].upper() + text[1:]


def data_dictionary(fields: Iterable[Field]) -> dict[str, dict[str, object]]:
    """The BIDS sidecar of a table: ``{column: {LongName, Description, Units?, Levels?}}``."""
    out: dict[str, dict[str, object]] = {}
    for f in fields:
        entry: dict[str, object] = {"LongName": f.bids_long_name, "Description": f.description}
        if f.bids_units:
            entry["Units"] = f.bids_units
        if f.levels:
            entry["Levels"] = dict(f.levels)
        out[f.name] = entry
    return out


#: The key columns of the cohort tables (BIDS participant and session identifiers, with their prefixes).
KEY_FIELDS = [
    Field("participant_id", None, "the subject label with its sub- prefix, e.g. sub-01; n/a when not given"),
    Field("session_id", None, "the session label with its ses- prefix, e.g. ses-01; n/a when the study has none"),
]


def keyed(row: Mapping[str, object]) -> dict[str, object]:
    """A cohort-table row keyed by ``participant_id`` / ``session_id`` instead of ``subject`` / ``session``
    (BIDS names, and strings: "01" stays "01", not the number 1)."""
    subject, session = row.get("subject"), row.get("session")
    return {
        "participant_id": f"sub-{subject}" if subject else None,
        "session_id": f"ses-{session}" if session else None,
        **{k: v for k, v in row.items() if k not in ("subject", "session")},
    }


def cell_number(value: Any) -> float | None:
    """A table cell's number; None for n/a, text and non-finite values (which cannot be plotted)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
