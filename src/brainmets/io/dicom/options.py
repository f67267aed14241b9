"""How DICOM segments map to label roles: the role patterns and codes, the overlap priority, the options a
config's ``dicom`` section sets, and the label scheme built from the roles found."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.core import (
    DEFAULT_MAX_VOXELS,
)
from brainmets.schemes import ROLE_NAMES, LabelScheme

log = logging.getLogger(__name__)


#: Roles in the order a voxel covered by several segments takes them (first wins), unless configured.
DEFAULT_OVERLAP_PRIORITY = ("enhancing", "necrotic", "core", "cavity", "edema")


#: Segment label / ROI name patterns (case-insensitive regular expressions, first match wins) -> role.
DEFAULT_ROLE_PATTERNS = (
    (r"whole", "ignored"),
    (r"non[-_ ]?enhanc|necro|\bNETC\b|\bNCR\b", "necrotic"),
    (r"enhanc|\bET\b", "enhancing"),
    (r"o?edema|\bSNFH\b|\bED\b", "edema"),
    (r"cavity|resect|\bRC\b", "cavity"),
    (r"^GTV|tumou?r|metast|\bmets?\b|lesion|core", "core"),
    (r"brain|body|external|skull|eye|lens|optic|chiasm|cochlea|hippocamp|^PTV|^CTV|ring|couch", "ignored"),
)


#: Segmented property type codes (scheme:value) -> role; checked before the label patterns.
DEFAULT_ROLE_CODES = {"SCT:79654002": "edema", "SCT:6574001": "necrotic"}


@dataclass(frozen=True)
class DicomOptions:
    """How segments and ROIs become roles, how overlaps and fractions resolve, where RTSTRUCT images are."""

    role_patterns: tuple[tuple[str, str], ...] = DEFAULT_ROLE_PATTERNS
    role_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_CODES))
    unmatched: str = "error"  # or "ignore"
    overlap_priority: tuple[str, ...] = DEFAULT_OVERLAP_PRIORITY
    fractional_threshold: float = 0.5
    reference_series: str | None = None
    max_voxels: int = DEFAULT_MAX_VOXELS  # a header claiming more is refused before pixel data is read

    @classmethod
    def from_config(cls, section: dict | None, reference_series: str | None = None) -> DicomOptions:
        """From the config's validated ``dicom`` section (defaults where a key is absent)."""
        section = section or {}
        patterns = section.get("segment_roles")
        return cls(
            role_patterns=tuple((p["pattern"], p["role"]) for p in patterns) if patterns else DEFAULT_ROLE_PATTERNS,
            role_codes=dict(section.get("segment_codes") or DEFAULT_ROLE_CODES),
            unmatched=section.get("unmatched", "error"),
            overlap_priority=tuple(section.get("overlap_priority") or DEFAULT_OVERLAP_PRIORITY),
            fractional_threshold=float(section.get("fractional_threshold", 0.5)),
            reference_series=reference_series,
        )

    def role_of(self, label: str, code: str | None = None) -> str | None:
        """The role a segment label (or ROI name) and optional coded property type stand for."""
        if code and code in self.role_codes:
            return self.role_codes[code]
        for pattern, role in self.role_patterns:
            if re.search(pattern, label, re.IGNORECASE):
                return role
        return None


def role_scheme(roles: Iterable[str]) -> LabelScheme:
    """The scheme of a role-coded label map: each role's value is its :class:`Role` number."""
    values = {ROLE_NAMES[r]: frozenset({int(ROLE_NAMES[r])}) for r in roles if r != "ignored"}
    return LabelScheme(
        name="dicom-roles",
        values=values,
        description="roles of DICOM segments or ROIs: "
        + ", ".join(f"{int(r)} {r.name.lower()}" for r in sorted(values)),
    )


def combine_roles(masks: list[tuple[str, np.ndarray]], options: DicomOptions) -> np.ndarray:
    """One label map from per-segment masks: a voxel covered by several takes the role first in
    ``overlap_priority``; ignored segments are dropped."""
    shape = masks[0][1].shape if masks else ()
    labels = np.zeros(shape, np.uint8)
    order = {role: n for n, role in enumerate(options.overlap_priority)}
    for role, mask in sorted(masks, key=lambda m: order.get(m[0], len(order)), reverse=True):
        if role != "ignored":
            labels[mask] = int(ROLE_NAMES[role])
    return labels


def segment_roles(items: list[tuple[int, str, str | None]], options: DicomOptions, what: str) -> dict[int, str]:
    """Role of each (number, label, code); an unmatched one is an error unless options.unmatched is ignore."""
    roles = {}
    for number, label, code in items:
        role = options.role_of(label, code)
        if role is None:
            if options.unmatched == "ignore":
                log.warning("%s %d %r matches no role: ignored", what, number, label)
                role = "ignored"
            else:
                raise InputDataError(
                    "",
                    f"unknown {what} {number} {label!r}: it matches no role pattern or code "
                    "(add one to dicom.segment_roles, or set dicom.unmatched: ignore)",
                )
        roles[number] = role
    if not any(r in ("enhancing", "necrotic", "core") for r in roles.values()):
        raise InputDataError("", f"no {what} maps to a tumour-core role (enhancing, necrotic or core): {roles}")
    return roles
