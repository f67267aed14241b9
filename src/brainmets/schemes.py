"""Label schemes: which label values mean enhancing tumour, necrotic core, edema or resection cavity.

A scheme maps each *role* to a set of label values. Tumour core is enhancing + necrotic/non-enhancing
(+ undifferentiated core for schemes such as ``binary`` that cannot tell them apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from brainmets.errors import LabelSchemeError


class Role(IntEnum):
    """What a label value means."""

    BACKGROUND = 0
    ENHANCING = 1
    NECROTIC = 2  # necrotic / non-enhancing tumour core
    CORE = 3  # tumour core whose sub-regions the scheme does not distinguish
    EDEMA = 4  # peritumoural edema / SNFH
    CAVITY = 5  # resection cavity
    IGNORED = 6  # a known label that is none of the above (e.g. a brain-mask label in a custom map)


CORE_ROLES = (Role.ENHANCING, Role.NECROTIC, Role.CORE)
ROLE_NAMES = {r.name.lower(): r for r in Role if r is not Role.BACKGROUND}


@dataclass(frozen=True)
class LabelScheme:
    """A named mapping of label values to roles; ``nonzero_role`` catches every non-zero value."""

    name: str
    values: Mapping[Role, frozenset[int]] = field(default_factory=dict)
    nonzero_role: Role | None = None
    description: str = ""

    def has(self, role: Role) -> bool:
        """Whether this scheme can tell voxels of ``role`` apart (else the feature is unknown, not zero)."""
        return bool(self.values.get(role)) or self.nonzero_role is role

    def as_dict(self) -> dict:
        """JSON-ready description for provenance."""
        out: dict = {"name": self.name}
        for role in Role:
            if self.values.get(role):
                out[role.name.lower()] = sorted(self.values[role])
        if self.nonzero_role is not None:
            out[self.nonzero_role.name.lower()] = "any non-zero value"
        return out


def _scheme(name: str, description: str, **roles: tuple[int, ...]) -> LabelScheme:
    return LabelScheme(
        name=name,
        values={ROLE_NAMES[r]: frozenset(v) for r, v in roles.items()},
        description=description,
    )


SCHEMES: dict[str, LabelScheme] = {
    s.name: s
    for s in (
        _scheme(
            "brats-mets-2023",
            "BraTS-METS 2023/2024: 1 necrotic/non-enhancing core (NETC), 2 edema (SNFH), 3 enhancing (ET), "
            "4 resection cavity (RC)",
            necrotic=(1,),
            edema=(2,),
            enhancing=(3,),
            cavity=(4,),
        ),
        _scheme(
            "brats-2021",
            "BraTS 2017-2021: 1 necrotic core (NCR), 2 edema (ED), 4 enhancing (ET)",
            necrotic=(1,),
            edema=(2,),
            enhancing=(4,),
        ),
        _scheme(
            "brats-2015",
            "BraTS 2012-2015: 1 necrosis, 2 edema, 3 non-enhancing tumour, 4 enhancing",
            necrotic=(1, 3),
            edema=(2,),
            enhancing=(4,),
        ),
        LabelScheme(
            name="binary",
            nonzero_role=Role.CORE,
            description="any non-zero value is tumour core; no edema or sub-region information",
        ),
    )
}


#: The config value that leaves the scheme to brainmets: brats-mets-2023, except a map of 0 and 1 only.
AUTO = "auto"
DEFAULT_SCHEME = "brats-mets-2023"
_HOW_TO_CHOOSE = "--scheme NAME or --custom-labels; label_scheme in the config or the studies sheet"


def custom_scheme(mapping: Mapping[str, object], name: str = "custom") -> LabelScheme:
    """Build a scheme from ``{role: value or [values]}`` (roles: enhancing, necrotic, core, edema, cavity, ignored)."""
    values: dict[Role, frozenset[int]] = {}
    seen: dict[int, str] = {}
    for role_name, raw in mapping.items():
        role = ROLE_NAMES.get(str(role_name).lower())
        if role is None:
            raise LabelSchemeError(f"custom label scheme: unknown role {role_name!r} (known: {', '.join(ROLE_NAMES)})")
        items = raw if isinstance(raw, list | tuple | set | frozenset) else [raw]
        vals = set()
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | np.integer) or item <= 0:
                raise LabelSchemeError(
                    f"custom label scheme: role {role_name!r} has {item!r}; label values are integers >= 1"
                )
            if int(item) in seen and seen[int(item)] != role_name:
                raise LabelSchemeError(
                    f"custom label scheme: value {item} is given to both {seen[int(item)]!r} and {role_name!r}"
                )
            seen[int(item)] = str(role_name)
            vals.add(int(item))
        values[role] = values.get(role, frozenset()) | frozenset(vals)
    if not any(values.get(r) for r in CORE_ROLES):
        raise LabelSchemeError("custom label scheme: no tumour-core value (enhancing, necrotic or core) is given")
    return LabelScheme(name=name, values=values, description="custom mapping from configuration")


def parse_custom_labels(text: str) -> dict[str, list[int]]:
    """Parse the command-line form ``"enhancing=3;necrotic=1,5;edema=2"`` into a role mapping."""
    mapping: dict[str, list[int]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        role, sep, vals = part.partition("=")
        if not sep:
            raise LabelSchemeError(f"custom labels: expected role=values, got {part!r}")
        try:
            mapping[role.strip()] = [int(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise LabelSchemeError(
                f"custom labels: values of {role.strip()!r} must be integers, got {vals!r}"
            ) from None
    return mapping


def scheme_setting(text: str, check: bool = False) -> str | dict[str, list[int]]:
    """A ``--scheme`` or studies-sheet value in config terms: a scheme name as given, or the custom form
    ``"enhancing=3;necrotic=1;edema=2"`` (as ``--custom-labels`` takes) as a role mapping; with ``check``, a
    value that names no scheme raises :class:`LabelSchemeError`."""
    text = text.strip()
    if "=" in text:
        mapping = parse_custom_labels(text)
        if check:
            custom_scheme(mapping)
        return mapping
    if check:
        get_scheme(text)
    return text


def get_scheme(spec: str | Mapping[str, object]) -> LabelScheme:
    """A scheme by name, or a custom scheme from a role mapping (``auto``: the default, brats-mets-2023)."""
    if isinstance(spec, Mapping):
        return custom_scheme(spec)
    if spec == AUTO:
        spec = DEFAULT_SCHEME
    try:
        return SCHEMES[spec]
    except KeyError:
        raise LabelSchemeError(
            f"unknown label scheme {spec!r}; known schemes: {', '.join(SCHEMES)}, {AUTO} (or a custom role mapping)"
        ) from None


def value_mask(labels: np.ndarray, values: frozenset[int] | set[int]) -> np.ndarray:
    """Boolean mask of the voxels holding any of ``values`` (a few vectorised comparisons)."""
    if not values:
        return np.zeros(labels.shape, dtype=bool)
    values = sorted(values)
    if len(values) > 8:
        return np.isin(labels, values)
    mask = labels == values[0]
    for v in values[1:]:
        mask |= labels == v
    return mask


def count_values(values: np.ndarray) -> dict[int, int]:
    """Voxel count of every value in a 1D array (bincount when the values allow it)."""
    if values.size == 0:
        return {}
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi <= 1 << 16:
        counts = np.bincount(values, minlength=hi + 1)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    uniq, counts = np.unique(values, return_counts=True)
    return {int(v): int(c) for v, c in zip(uniq, counts)}


def fitting_schemes(counts: dict[int, int]) -> list[str]:
    """The built-in schemes with a sub-region for every value present (binary, which takes anything, excluded)."""
    present = {v for v, n in counts.items() if v and n}
    return [
        name
        for name, s in SCHEMES.items()
        if s.nonzero_role is None and present <= {v for vals in s.values.values() for v in vals}
    ]


def reading(counts: dict[int, int], scheme: LabelScheme, chosen: bool) -> tuple[LabelScheme, list[str]]:
    """The scheme to read a map with, and warnings about plausible misreadings.

    A map of 0 and 1 only is most often a model's binary tumour mask: when no scheme was chosen it is read as
    ``binary`` (under brats-mets-2023 it would be all necrotic core: no enhancing tumour, no edema), and when
    one was chosen that reads 1 otherwise, the user is told. A map read as ``binary`` whose values fit a
    sub-region scheme loses its sub-regions (edema counted as tumour core), which is said too."""
    present = sorted(v for v, n in counts.items() if v and n)
    if present == [1] and scheme.nonzero_role is None:
        if not chosen:
            return SCHEMES["binary"], [
                "the map holds only the values 0 and 1 and no label scheme was chosen: read as a binary tumour "
                "mask (scheme binary: every lesion is tumour core; enhancing, necrotic and edema volumes are "
                f"unknown); if 1 means something else, choose a scheme ({_HOW_TO_CHOOSE})"
            ]
        if scheme.name not in SCHEMES:  # a custom mapping of 1 is the user's own statement
            return scheme, []
        role = next((r.name.lower() for r, values in scheme.values.items() if 1 in values), "ignored")
        return scheme, [
            f"the map holds only the values 0 and 1, as a binary mask does, but label scheme {scheme.name!r} "
            f"reads 1 as {role}: if it is a binary tumour mask, use --scheme binary"
        ]
    fits = fitting_schemes(counts)
    if scheme.nonzero_role is not None and len(present) > 1 and fits:
        return scheme, [
            f"the map holds the values {', '.join(map(str, present))}, which fit {' or '.join(fits)}, but is read "
            f"with label scheme {scheme.name!r}: every non-zero value is tumour core (edema included) and the "
            f"sub-regions are lost; to keep them, choose {fits[0]} ({_HOW_TO_CHOOSE})"
        ]
    return scheme, []


def check_values(counts: dict[int, int], scheme: LabelScheme) -> None:
    """Raise :class:`LabelSchemeError` naming every value present that ``scheme`` does not know, and the
    built-in schemes that would know them all."""
    if scheme.nonzero_role is not None:
        return
    known = {v for vals in scheme.values.values() for v in vals}
    unknown = sorted(v for v in counts if v != 0 and v not in known)
    if unknown:
        shown = ", ".join(f"{v} ({counts[v]} voxels)" for v in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        fits = fitting_schemes(counts)
        hint = (
            f"; the values present fit {' or '.join(fits)} (--scheme NAME)"
            if fits
            else "; no built-in scheme has them all: give your own (--custom-labels)"
        )
        raise LabelSchemeError(
            f"label value(s) {shown}{more} not in label scheme {scheme.name!r} "
            f"(known: {', '.join(str(v) for v in sorted(known))}){hint}"
        )


def scheme_mismatch(labels: np.ndarray, counts: dict[int, int], scheme: LabelScheme) -> str | None:
    """A warning when the labels look like another scheme's, else None.

    One confusion is common and silent: a BraTS 2017-2021 map (4 = enhancing tumour) read as brats-mets-2023
    (4 = resection cavity, 3 = enhancing). Every value is known to both, but then the map has no enhancing
    tumour at all, and its "cavities" either wrap around necrotic core (label 1), as an enhancing rim does, or
    are several (a study rarely has more than one resection cavity). A single cavity away from any core, the
    usual post-operative map, gives no warning."""
    if scheme.name != "brats-mets-2023" or counts.get(3) or not counts.get(4):
        return None
    from scipy import ndimage

    cavity = labels == 4
    touching = bool(counts.get(1)) and bool((ndimage.binary_dilation(cavity) & (labels == 1)).any())
    pieces = ndimage.label(cavity, structure=np.ones((3, 3, 3)))[1]
    if not touching and pieces < 2:
        return None
    why = "wraps around necrotic core (label 1) as an enhancing rim would" if touching else f"forms {pieces} components"
    return (
        f"the labels look like brats-2021 (1 necrotic core, 2 edema, 4 enhancing tumour), not brats-mets-2023: "
        f"there is no label 3 (enhancing tumour) and label 4, read as resection cavity, {why}; if label 4 is "
        "enhancing tumour, use --scheme brats-2021 (label_scheme in the config or the studies sheet)"
    )


def role_mask(labels: np.ndarray, scheme: LabelScheme, *roles: Role) -> np.ndarray:
    """Voxels whose label has one of ``roles`` under ``scheme``."""
    if scheme.nonzero_role is not None:
        return labels != 0 if scheme.nonzero_role in roles else np.zeros(labels.shape, dtype=bool)
    return value_mask(labels, frozenset().union(*(scheme.values.get(r, frozenset()) for r in roles)))
