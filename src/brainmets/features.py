"""Per-lesion rows, edema-only components and the per-study summary, with a data dictionary for each."""

from __future__ import annotations

import logging
import platform
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import cache, cached_property, partial
from importlib.metadata import version
from typing import Any

import cc3d
import nibabel as nib
import numpy as np
from scipy import ndimage

from . import __version__
from .anatomy import (
    LocationParameters,
    Reference,
    empty_location,
    locate,
    locate_cavity,
    missing_notes,
    ventricle_candidates,
)
from .config import FeatureParameters
from .errors import InputDataError, LabelSchemeError
from .fields import BOOLEAN, Field
from .geometry import (
    AxialGrid,
    apply_affine,
    axial_diameters,
    axis_shear_deg,
    max_pairwise_distance,
    mesh_volume_and_area,
    surface_mesh,
    voxel_spacing_mm,
    voxel_volume_mm3,
)
from .io.labelmap import LabelMap
from .labels import CORE_ROLES, Role, check_values, count_values, reading, role_mask, scheme_mismatch
from .lesions import Lesions, assign_edema, find_lesions, structure

log = logging.getLogger(__name__)

MM3_PER_ML = 1000.0

#: Upper edges (mm) of the lesion-size classes counted in the study summary, by maximum 3D diameter.
DIAMETER_CLASSES = (
    ("lesions_diameter_lt_10mm", "< 10 mm", lambda d: d < 10),
    ("lesions_diameter_10_20mm", ">= 10 and < 20 mm", lambda d: 10 <= d < 20),
    ("lesions_diameter_20_30mm", ">= 20 and < 30 mm", lambda d: 20 <= d < 30),
    ("lesions_diameter_30_40mm", ">= 30 and <= 40 mm", lambda d: 30 <= d <= 40),
    ("lesions_diameter_gt_40mm", "> 40 mm", lambda d: d > 40),
)


LOCATION_LEVELS = {
    "supratentorial": "above the tentorium: posterior_fossa_fraction <= anatomy.mixed_margin (0.1)",
    "infratentorial": "in the posterior fossa: posterior_fossa_fraction >= 1 - anatomy.mixed_margin",
    "mixed": "straddling the tentorium: in between",
}

_BBOX = [
    Field(
        f"bbox_{axis}_{end}",
        "voxel",
        f"{'first' if end == 'min' else 'last'} voxel index of the core along array axis {axis} (0-based, inclusive)",
    )
    for axis in "ijk"
    for end in ("min", "max")
]
_CENTROID = [
    Field(
        f"centroid_{c}_mm",
        "mm",
        f"{c.upper()} world coordinate (RAS+: x to the Left→Right, y Posterior→Anterior, z Inferior→Superior) of the centre of mass of the core voxel centres",
    )
    for c in "xyz"
]

LESION_FIELDS: list[Field] = [
    Field("lesion_id", None, "lesion number, 1 = largest core volume; ties ordered by centroid position (x, y, z)"),
    Field("voxel_count", "voxel", "number of core (enhancing + necrotic/non-enhancing) voxels"),
    Field("volume_ml", "mL", "core volume: voxel count x voxel volume (|det| of the affine)"),
    Field(
        "mesh_volume_ml",
        "mL",
        "volume enclosed by the marching-cubes surface (level 0.5) of the core, IBSI 'volume' (RNU0)",
    ),
    Field(
        "enhancing_volume_ml",
        "mL",
        "enhancing-tumour voxels of the lesion x voxel volume; n/a when the scheme has no enhancing label",
    ),
    Field(
        "necrotic_volume_ml",
        "mL",
        "necrotic / non-enhancing core voxels of the lesion x voxel volume; n/a when the scheme has no such label",
    ),
    Field(
        "edema_volume_ml",
        "mL",
        "edema voxels attributed to this lesion (nearest core within the connected core+edema region) x voxel volume; n/a when the scheme has no edema label",
    ),
    Field("edema_ratio", None, "edema_volume_ml / volume_ml (0 = no edema)"),
    Field("edema_index", None, "(edema_volume_ml + volume_ml) / volume_ml (1 = no edema)"),
    Field(
        "max_diameter_3d_mm",
        "mm",
        "IBSI maximum 3D diameter: largest distance between two vertices of the core surface mesh (found among convex-hull vertices)",
    ),
    Field(
        "axial_longest_diameter_mm",
        "mm",
        "RANO-BM longest diameter: largest distance between two points of the core outline within one patient-axial plane (see README)",
    ),
    Field(
        "axial_perpendicular_diameter_mm",
        "mm",
        "longest chord inside the core outline perpendicular to the longest diameter, in the same axial plane",
    ),
    Field(
        "axial_slice_count",
        "slice",
        "number of patient-axial planes that cut the core (acquired slices for an axial acquisition)",
    ),
    Field("axial_plane_z_mm", "mm", "world z (RAS) of the axial plane where the longest diameter was found"),
    Field(
        "rano_bm_measurable",
        None,
        "RANO-BM measurable: longest >= 10 mm, perpendicular >= 5 mm and on >= 2 axial slices (thresholds configurable)",
        BOOLEAN,
    ),
    Field(
        "rano_bm_target",
        None,
        "one of the up to 5 measurable lesions with the largest axial longest diameter (RANO-BM target lesions)",
        BOOLEAN,
    ),
    Field("equivalent_sphere_diameter_mm", "mm", "diameter of the sphere of volume volume_ml: (6 V / pi)^(1/3)"),
    Field("surface_area_mm2", "mm2", "area of the core surface mesh (IBSI C0JK)"),
    Field(
        "sphericity",
        None,
        "IBSI sphericity (QCFX): (36 pi V^2)^(1/3) / A, with V the mesh volume and A the mesh area; 1 for a sphere",
    ),
    *_CENTROID,
    *_BBOX,
    Field("extent_x_mm", "mm", "extent of the core surface along the world x (R-L) axis"),
    Field("extent_y_mm", "mm", "extent of the core surface along the world y (A-P) axis"),
    Field("extent_z_mm", "mm", "extent of the core surface along the world z (S-I) axis"),
    Field(
        "touches_image_border",
        None,
        "the core reaches the first or last voxel of an image axis (it may be cut off)",
        BOOLEAN,
    ),
    Field(
        "core_components",
        "count",
        "number of connected core components forming this lesion (> 1 only when merging by distance)",
    ),
    Field(
        "posterior_fossa_fraction",
        None,
        "fraction of the core voxels inside the reference's posterior fossa; n/a without an anatomical reference",
    ),
    Field(
        "location",
        None,
        "supratentorial (posterior_fossa_fraction <= 0.1), infratentorial (>= 0.9) or mixed (margin configurable); n/a without a reference",
        LOCATION_LEVELS,
    ),
    Field(
        "brainstem_fraction",
        None,
        "fraction of the core voxels inside the reference's brainstem; n/a when the reference has no brainstem",
    ),
    Field("brainstem_involved", None, "brainstem_fraction >= 0.05 (configurable) and > 0", BOOLEAN),
    Field(
        "eloquent_regions",
        None,
        "eloquent regions (names from the reference definition) holding >= 5 % (configurable) of the core voxels; [] in JSON, none in TSV tables, when there are none",
    ),
    Field(
        "distance_to_fourth_ventricle_mm",
        "mm",
        "shortest distance between a core voxel centre and a 4th-ventricle voxel centre (0 when they overlap); n/a when the reference has no 4th ventricle",
    ),
]

EDEMA_ONLY_FIELDS: list[Field] = [
    Field("component_id", None, "edema-only component number, 1 = largest; ties ordered by centroid position"),
    Field("voxel_count", "voxel", "number of edema voxels in the component"),
    Field("volume_ml", "mL", "edema volume of the component"),
    Field("max_diameter_3d_mm", "mm", "largest distance between two vertices of the component's surface mesh"),
    *[
        Field(f.name, f.unit, f.description.replace("core voxel centres", "component's edema voxel centres"))
        for f in _CENTROID
    ],
    *[Field(f.name, f.unit, f.description.replace("of the core", "of the component")) for f in _BBOX],
    Field("touches_image_border", None, "the component reaches the first or last voxel of an image axis", BOOLEAN),
    Field(
        "adjacent_to_cavity",
        None,
        "the component touches resection-cavity voxels; n/a when the scheme has no cavity label",
        BOOLEAN,
    ),
]

CAVITY_FIELDS: list[Field] = [
    Field("component_id", None, "resection-cavity component number, 1 = largest; ties ordered by centroid position"),
    Field("voxel_count", "voxel", "number of resection-cavity voxels in the component"),
    Field("volume_ml", "mL", "volume of the component"),
    Field("max_diameter_3d_mm", "mm", "largest distance between two vertices of the component's surface mesh"),
    Field(
        "axial_longest_diameter_mm",
        "mm",
        "largest distance between two points of the component's outline within one patient-axial plane",
    ),
    *[
        Field(f.name, f.unit, f.description.replace("core voxel centres", "component's voxel centres"))
        for f in _CENTROID
    ],
    *[Field(f.name, f.unit, f.description.replace("of the core", "of the component")) for f in _BBOX],
    Field("touches_image_border", None, "the component reaches the first or last voxel of an image axis", BOOLEAN),
    Field(
        "rim_enhancing_volume_ml",
        "mL",
        "enhancing-tumour voxels in the cavity's rim (touching it, or within features.cavity_rim_mm of it) x voxel volume: residual enhancing tissue at the cavity; n/a when the scheme has no enhancing label",
    ),
    Field(
        "rim_lesion_ids",
        None,
        "lesions whose core reaches into the cavity's rim; [] in JSON, none in TSV tables, when there are none",
    ),
    Field(
        "posterior_fossa_fraction",
        None,
        "fraction of the cavity's voxels inside the reference's brain that lie in the posterior fossa (when more than anatomy.max_outside_brain_fraction of them fall outside it, an unlabelled hole, the tissue of the cavity's rim is counted too); n/a without an anatomical reference",
    ),
    Field(
        "location",
        None,
        "supratentorial, infratentorial or mixed, from posterior_fossa_fraction as for lesions; n/a without a reference",
        LOCATION_LEVELS,
    ),
    Field(
        "brainstem_fraction",
        None,
        "fraction of the same points inside the reference's brainstem; n/a when the reference has no brainstem",
    ),
    Field("brainstem_involved", None, "brainstem_fraction >= 0.05 (configurable) and > 0", BOOLEAN),
    Field(
        "eloquent_regions",
        None,
        "eloquent regions holding >= 5 % (configurable) of the same points; [] in JSON, none in TSV tables, when there are none",
    ),
    Field(
        "distance_to_fourth_ventricle_mm",
        "mm",
        "shortest distance between a cavity voxel centre and a 4th-ventricle voxel centre; n/a when the reference has no 4th ventricle",
    ),
]

STUDY_FIELDS: list[Field] = [
    Field("subject", None, "subject label, when given"),
    Field("session", None, "session label, when given"),
    Field("lesion_count", "count", "number of lesions"),
    Field("cumulative_tumor_volume_ml", "mL", "sum of the lesions' volume_ml"),
    Field(
        "cumulative_enhancing_volume_ml",
        "mL",
        "sum of the lesions' enhancing_volume_ml; n/a when the scheme has no enhancing label",
    ),
    Field(
        "total_edema_volume_ml",
        "mL",
        "all edema voxels of the map (attributed to lesions or in edema-only components) x voxel volume",
    ),
    Field("lesion_edema_volume_ml", "mL", "edema attributed to lesions (sum of edema_volume_ml)"),
    Field("edema_ratio", None, "total_edema_volume_ml / cumulative_tumor_volume_ml; n/a without lesions"),
    Field("largest_max_diameter_3d_mm", "mm", "largest max_diameter_3d_mm of any lesion; n/a without lesions"),
    Field("largest_axial_diameter_mm", "mm", "largest axial_longest_diameter_mm of any lesion; n/a without lesions"),
    Field("measurable_lesion_count", "count", "lesions with rano_bm_measurable"),
    Field("target_lesion_count", "count", "lesions with rano_bm_target"),
    Field(
        "sum_longest_diameters_mm",
        "mm",
        "RANO-BM sum of the axial longest diameters of the target lesions (0 when none)",
    ),
    *[Field(name, "count", f"lesions whose max_diameter_3d_mm is {text}") for name, text, _ in DIAMETER_CLASSES],
    Field(
        "edema_only_component_count",
        "count",
        "connected core+edema regions that hold edema but no lesion (reported apart, not as lesions)",
    ),
    Field("edema_only_volume_ml", "mL", "edema volume of the edema-only components"),
    Field(
        "resection_cavity_volume_ml",
        "mL",
        "resection-cavity voxels x voxel volume; n/a when the scheme has no cavity label",
    ),
    Field(
        "resection_cavity_count",
        "count",
        "connected components of resection-cavity voxels (see resection_cavities); n/a when the scheme has no cavity label",
    ),
    Field("discarded_core_component_count", "count", "core components below min_lesion_volume_mm3 (not lesions)"),
    Field("discarded_core_volume_ml", "mL", "their total volume"),
    Field("discarded_edema_component_count", "count", "edema-only components below min_edema_component_volume_mm3"),
    Field("discarded_edema_volume_ml", "mL", "their total volume"),
    Field(
        "location_reference",
        None,
        "the anatomical reference used to locate lesions (kind: definition name); n/a when none",
    ),
    Field("infratentorial_lesion_count", "count", "lesions whose location is infratentorial; n/a without a reference"),
    Field(
        "mixed_location_lesion_count",
        "count",
        "lesions straddling the tentorium (location mixed); n/a without a reference",
    ),
    Field(
        "brainstem_lesion_count", "count", "lesions with brainstem_involved; n/a when the reference has no brainstem"
    ),
    Field(
        "posterior_fossa_tumor_volume_ml",
        "mL",
        "core volume inside the posterior fossa, summed over the lesions; n/a without a reference",
    ),
    Field(
        "location_notes",
        None,
        "why location fields are n/a for this study (no reference, or labels the reference lacks)",
    ),
]


@dataclass
class StudyFeatures:
    """The ``features`` result: one JSON document plus the lesion instance map."""

    document: dict[str, Any]
    affine: np.ndarray
    shape: tuple[int, int, int]
    box: tuple[slice, ...]  # where the non-zero labels are
    lesion_map: Lesions  # on the crop ``box``

    @cached_property
    def instances(self) -> np.ndarray:
        """Lesion instance map of the whole image: core voxels carry their lesion_id, everything else 0 (built
        once: the outputs and the picture share it)."""
        crop = self.lesion_map.instances()
        out = np.zeros(self.shape, dtype=crop.dtype)
        out[self.box] = crop
        out.flags.writeable = False  # the same array for every caller
        return out

    @property
    def lesions(self) -> list[dict[str, Any]]:
        return self.document["lesions"]

    @property
    def study(self) -> dict[str, Any]:
        return self.document["study"]


def _ml(voxels: float, vox_mm3: float) -> float:
    return float(voxels) * vox_mm3 / MM3_PER_ML


def _ratio(num: float | None, den: float) -> float | None:
    return None if num is None or den <= 0 else num / den


def _bbox_fields(box: tuple[slice, ...]) -> dict[str, int]:
    out = {}
    for axis, s in zip("ijk", box):
        out[f"bbox_{axis}_min"] = int(s.start)
        out[f"bbox_{axis}_max"] = int(s.stop) - 1
    return out


def _touches_border(box: tuple[slice, ...], shape: tuple[int, ...]) -> bool:
    return any(s.start == 0 or s.stop == n for s, n in zip(box, shape))


def _tight_box(mask: np.ndarray, box: tuple[slice, ...]) -> tuple[slice, ...]:
    """Shrink ``box`` to the voxels of ``mask`` (a crop of the image at ``box``)."""
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(slice(box[axis].start + int(idx[0]), box[axis].start + int(idx[-1]) + 1))
    return tuple(out)


def _nonzero_box(labels: np.ndarray) -> tuple[tuple[slice, ...] | None, np.ndarray]:
    """Bounding box of the non-zero voxels (None when there are none), and the non-zero mask."""
    nonzero = labels != 0
    box = []
    for axis in range(3):
        idx = np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != axis)))
        if idx.size == 0:
            return None, nonzero
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box), nonzero


def _label_counts(crop: np.ndarray, nonzero: np.ndarray, scheme) -> dict[int, int]:
    """Voxel count of every non-zero label value: one comparison per value the scheme knows, and a full
    count only when some non-zero voxel holds another value (an error, or the binary scheme)."""
    known = sorted({v for values in scheme.values.values() for v in values})
    counts = {v: int(np.count_nonzero(crop == v)) for v in known}
    if scheme.nonzero_role is not None or sum(counts.values()) != int(np.count_nonzero(nonzero)):
        return count_values(crop[nonzero])
    return {v: c for v, c in counts.items() if c}


def _crop_affine(affine: np.ndarray, origin) -> np.ndarray:
    """The affine of a crop whose first voxel is voxel ``origin`` of the image."""
    shifted = affine.copy()
    shifted[:3, 3] = apply_affine(affine, np.asarray(origin, dtype=float))
    return shifted


def _shift(box: tuple[slice, ...], origin: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(s.start + o, s.stop + o) for s, o in zip(box, origin))


def compute_features(
    label_map: LabelMap,
    params: FeatureParameters,
    subject: str | None = None,
    session: str | None = None,
    threads: int = 1,
    reference: Reference | None = None,
    location: LocationParameters | None = None,
) -> StudyFeatures:
    """Lesions, their features, the edema-only components and the study summary of one label map.

    The image is read once to find the box holding every non-zero voxel; everything else works on that
    box (with its own affine), and per-lesion work on each lesion's bounding box. With ``threads`` > 1 the
    lesions are measured in a thread pool (same results, in the same order). With an anatomical
    ``reference`` every lesion is located (posterior fossa, brainstem, eloquent regions); without one the
    location fields are null and the study says why.
    """
    labels, affine, shape, scheme = label_map.labels, label_map.affine, label_map.shape, params.scheme
    vox_mm3 = voxel_volume_mm3(affine)
    box, nonzero = _nonzero_box(labels)
    box = box or (slice(0, 1),) * 3  # an empty study: a one-voxel crop holding nothing
    origin = tuple(s.start for s in box)
    crop = labels[box]
    counts = _label_counts(crop, nonzero[box], scheme)
    del nonzero  # a whole-image mask: 84 MB at 0.5 mm, not needed past the counts
    if labels.size > sum(counts.values()):
        counts[0] = labels.size - sum(counts.values())
    try:
        check_values(counts, scheme)
    except LabelSchemeError as exc:
        problem = str(exc)
        if label_map.provenance.get("input_format") == "dicom-series":  # an image series of intensities?
            problem += (
                f" (the input is a series of {label_map.provenance['dicom_object']}s, read as a label image: "
                "an intensity image is not a label map)"
            )
        raise InputDataError(label_map.source, problem) from None
    scheme, misreadings = reading(counts, scheme, params.scheme_chosen)
    if scheme is not params.scheme:  # a map of 0 and 1, no scheme chosen: binary
        params = replace(params, scheme=scheme)
    mismatch = scheme_mismatch(crop, counts, scheme)
    misreadings += [mismatch] if mismatch else []
    for warning in misreadings:
        log.warning("%s: %s", label_map.source, warning)
    crop_affine = _crop_affine(affine, origin)

    core = role_mask(crop, scheme, *CORE_ROLES)
    edema = role_mask(crop, scheme, Role.EDEMA)
    lesions = find_lesions(
        core, edema, crop_affine, params.connectivity, params.min_lesion_volume_mm3, params.merge_distance_mm
    )
    grid = AxialGrid.from_affine(affine, shape)
    measure = partial(_measure_lesion, lesions, crop, crop_affine, origin, shape, grid, scheme)
    assign = partial(assign_edema, lesions, edema, crop_affine, params.min_edema_component_volume_mm3)
    ids = range(1, lesions.count + 1)
    if threads > 1 and lesions.count > 1:  # the edema is assigned while the lesions are measured
        with ThreadPoolExecutor(max_workers=threads) as pool:
            assigned = pool.submit(assign)
            measured = [pool.submit(measure, i) for i in ids]
            rows, assignment = [m.result() for m in measured], assigned.result()
    else:
        rows, assignment = [measure(i) for i in ids], assign()
    for row in rows:
        edema_ml = _ml(assignment.lesion_voxels[row["lesion_id"]], vox_mm3) if scheme.has(Role.EDEMA) else None
        row["edema_volume_ml"] = edema_ml
        row["edema_ratio"] = _ratio(edema_ml, row["volume_ml"])
        row["edema_index"] = None if edema_ml is None else _ratio(edema_ml + row["volume_ml"], row["volume_ml"])
    _mark_rano(rows, params)
    _add_location(rows, lesions, crop_affine, reference, location or LocationParameters(), label_map.source)

    edema_only = _edema_only_rows(assignment, lesions.regions, crop, edema, crop_affine, origin, shape, scheme)
    cavities = _cavity_rows(
        lesions, crop, crop_affine, origin, shape, grid, params, reference, location or LocationParameters()
    )
    study = _summary(rows, edema_only, cavities, counts, lesions, assignment, scheme, vox_mm3)
    study = {"subject": subject, "session": session, **study, **_location_summary(rows, reference)}

    document = {
        "study": study,
        "lesions": rows,
        "edema_only_components": edema_only,
        "resection_cavities": cavities,
        "provenance": _provenance(label_map, params, grid, counts, vox_mm3, reference, location, misreadings),
    }
    return StudyFeatures(document, affine, shape, box, lesions)


def _measure_lesion(
    lesions: Lesions,
    crop: np.ndarray,
    affine: np.ndarray,
    origin: tuple[int, ...],
    shape: tuple[int, ...],
    grid: AxialGrid,
    scheme,
    lesion_id: int,
) -> dict[str, Any]:
    """Every feature of one lesion but its edema, on the lesion's bounding box (``affine``: the crop's)."""
    box = lesions.boxes[lesion_id - 1]
    mask = lesions.mask(lesion_id)
    offset = tuple(s.start for s in box)
    vox_mm3 = voxel_volume_mm3(affine)
    voxels = int(np.count_nonzero(mask))
    mesh = surface_mesh(mask, affine, offset)
    mesh_mm3, area = mesh_volume_and_area(mesh)
    axial = axial_diameters(mesh, grid)
    centroid = apply_affine(affine, np.argwhere(mask).mean(axis=0) + offset)
    sub_volume = {
        role: _ml(np.count_nonzero(mask & role_mask(crop[box], scheme, role)), vox_mm3) if scheme.has(role) else None
        for role in (Role.ENHANCING, Role.NECROTIC)
    }
    image_box = _shift(box, origin)
    return {
        "lesion_id": lesion_id,
        "voxel_count": voxels,
        "volume_ml": _ml(voxels, vox_mm3),
        "mesh_volume_ml": mesh_mm3 / MM3_PER_ML,
        "enhancing_volume_ml": sub_volume[Role.ENHANCING],
        "necrotic_volume_ml": sub_volume[Role.NECROTIC],
        "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
        "axial_longest_diameter_mm": axial.longest_mm,
        "axial_perpendicular_diameter_mm": axial.perpendicular_mm,
        "axial_slice_count": axial.slice_count,
        "axial_plane_z_mm": axial.plane_z_mm,
        "equivalent_sphere_diameter_mm": float(np.cbrt(6.0 * voxels * vox_mm3 / np.pi)),
        "surface_area_mm2": area,
        "sphericity": float(np.cbrt(36.0 * np.pi * mesh_mm3**2) / area) if area > 0 else None,
        **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", centroid)},
        **_bbox_fields(image_box),
        **{f"extent_{c}_mm": float(v) for c, v in zip("xyz", np.ptp(mesh.vertices, axis=0))},
        "touches_image_border": _touches_border(image_box, shape),
        "core_components": len(lesions.members[lesion_id - 1]),
    }


def _add_location(rows, lesions, affine, reference, location, source) -> None:
    """Location fields of every lesion (null without a reference)."""
    if reference is None:
        for row in rows:
            row.update(empty_location())
        return
    points, nearer = [], []
    for lesion_id, box in enumerate(lesions.boxes, start=1):
        mask, offset = lesions.mask(lesion_id), [s.start for s in box]
        points.append(apply_affine(affine, (np.argwhere(mask) + offset).astype(float)))
        candidates = ventricle_candidates(mask, _crop_affine(affine, offset), reference)
        nearer.append(None if candidates is None else points[-1][candidates[mask]])  # rows in argwhere's order
    names = ", ".join([source, *(image.source for image in reference.images.values())])
    for row, located in zip(rows, locate(points, reference, location, names, nearer)):
        row.update(located)


def _location_summary(rows, reference) -> dict[str, Any]:
    """Study-level location counts (null without a reference) and why location fields are null."""
    located = reference is not None
    has_brainstem = located and reference.has("brainstem")
    return {
        "location_reference": f"{reference.kind}: {reference.definition.name}" if located else None,
        "infratentorial_lesion_count": sum(r["location"] == "infratentorial" for r in rows) if located else None,
        "mixed_location_lesion_count": sum(r["location"] == "mixed" for r in rows) if located else None,
        "brainstem_lesion_count": sum(bool(r["brainstem_involved"]) for r in rows) if has_brainstem else None,
        "posterior_fossa_tumor_volume_ml": sum(r["posterior_fossa_fraction"] * r["volume_ml"] for r in rows)
        if located
        else None,
        "location_notes": missing_notes(reference),
    }


def _mark_rano(rows: list[dict[str, Any]], params: FeatureParameters) -> None:
    """RANO-BM measurability and target selection (largest axial longest diameters first)."""
    for row in rows:
        row["rano_bm_measurable"] = bool(
            row["axial_longest_diameter_mm"] >= params.rano_min_longest_mm
            and row["axial_perpendicular_diameter_mm"] >= params.rano_min_perpendicular_mm
            and row["axial_slice_count"] >= params.rano_min_slices
        )
        row["rano_bm_target"] = False
    measurable = sorted(
        (r for r in rows if r["rano_bm_measurable"]),
        key=lambda r: (-r["axial_longest_diameter_mm"], r["lesion_id"]),
    )
    for row in measurable[: params.rano_max_targets]:
        row["rano_bm_target"] = True


def _edema_only_rows(assignment, regions, crop, edema, affine, origin, shape, scheme) -> list[dict[str, Any]]:
    """Rows of the edema-only components (``crop``, ``edema`` and ``affine`` are those of the crop)."""
    vox_mm3 = voxel_volume_mm3(affine)
    rows = []
    for comp in assignment.edema_only:
        mask = (regions[comp.box] == comp.label) & edema[comp.box]
        box = _tight_box(mask, comp.box)
        mask = (regions[box] == comp.label) & edema[box]
        offset = tuple(s.start for s in box)
        mesh = surface_mesh(mask, affine, offset)
        centroid = apply_affine(affine, np.argwhere(mask).mean(axis=0) + offset)
        adjacent = None
        if scheme.has(Role.CAVITY):
            grown = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, crop.shape))
            local = (regions[grown] == comp.label) & edema[grown]
            ring = ndimage.binary_dilation(local, structure(26)) & ~local
            adjacent = bool(np.any(role_mask(crop[grown], scheme, Role.CAVITY) & ring))
        image_box = _shift(box, origin)
        rows.append(
            {
                "voxel_count": comp.edema_voxels,
                "volume_ml": _ml(comp.edema_voxels, vox_mm3),
                "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
                **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", centroid)},
                **_bbox_fields(image_box),
                "touches_image_border": _touches_border(image_box, shape),
                "adjacent_to_cavity": adjacent,
            }
        )
    rows.sort(key=lambda r: (-r["voxel_count"], *(round(r[f"centroid_{c}_mm"], 6) for c in "xyz")))
    for i, row in enumerate(rows, start=1):
        row["component_id"] = i
    return rows


def _cavity_rows(lesions, crop, affine, origin, shape, grid, params, reference, location) -> list[dict[str, Any]]:
    """Rows of the resection-cavity components (``crop`` and ``affine`` are those of the crop): size, the
    enhancing tissue and lesions in each one's rim, and where each is."""
    scheme = params.scheme
    if not scheme.has(Role.CAVITY):
        return []
    cavity = role_mask(crop, scheme, Role.CAVITY)
    components, n = cc3d.connected_components(cavity, connectivity=params.connectivity, return_N=True)
    if n == 0:
        return []
    enhancing = role_mask(crop, scheme, Role.ENHANCING) if scheme.has(Role.ENHANCING) else None
    instances = lesions.instances()
    vox_mm3, spacing = voxel_volume_mm3(affine), voxel_spacing_mm(affine)
    rows = []
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        mask = components[box] == label
        offset = tuple(s.start for s in box)
        mesh = surface_mesh(mask, affine, offset)
        voxels = np.argwhere(mask) + offset
        rim = _rim(mask, offset, spacing, params.cavity_rim_mm)
        in_crop = tuple(rim[np.all((rim >= 0) & (rim < crop.shape), axis=1)].T)  # beyond the crop all is 0
        image_box = _shift(box, origin)
        row = {
            "voxel_count": len(voxels),
            "volume_ml": _ml(len(voxels), vox_mm3),
            "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
            "axial_longest_diameter_mm": axial_diameters(mesh, grid).longest_mm,
            **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", apply_affine(affine, voxels.mean(axis=0)))},
            **_bbox_fields(image_box),
            "touches_image_border": _touches_border(image_box, shape),
            "rim_enhancing_volume_ml": None
            if enhancing is None
            else _ml(np.count_nonzero(enhancing[in_crop]), vox_mm3),
            "rim_lesion_ids": sorted(int(i) for i in np.unique(instances[in_crop]) if i),
        }
        if reference is None:
            row.update(empty_location())
        else:
            row.update(locate_cavity(apply_affine(affine, voxels), apply_affine(affine, rim), reference, location))
        rows.append(row)
    rows.sort(key=lambda r: (-r["voxel_count"], *(round(r[f"centroid_{c}_mm"], 6) for c in "xyz")))
    return [{"component_id": i, **row} for i, row in enumerate(rows, start=1)]


def _rim(mask: np.ndarray, offset, spacing: np.ndarray, rim_mm: float) -> np.ndarray:
    """Voxel indices (crop coordinates, possibly beyond the crop) of a cavity's rim: the voxels touching it
    (26-neighbourhood, whatever the voxel size) and those whose centres lie within ``rim_mm`` of it."""
    pad = np.ceil(rim_mm / spacing).astype(int) + 1
    padded = np.pad(mask, [(p, p) for p in pad])
    rim = ndimage.binary_dilation(padded, structure(26))
    if rim_mm > 0:
        rim |= ndimage.distance_transform_edt(~padded, sampling=spacing) <= rim_mm
    return np.argwhere(rim & ~padded) + np.asarray(offset) - pad


def _summary(rows, edema_only, cavities, counts, lesions, assignment, scheme, vox_mm3) -> dict[str, Any]:
    has_edema = scheme.has(Role.EDEMA)
    cumulative = sum(r["volume_ml"] for r in rows)
    edema_voxels = sum(counts.get(v, 0) for v in scheme.values.get(Role.EDEMA, ()))
    total_edema = _ml(edema_voxels, vox_mm3) if has_edema else None
    cavity_voxels = sum(counts.get(v, 0) for v in scheme.values.get(Role.CAVITY, ()))
    targets = [r for r in rows if r["rano_bm_target"]]
    diameters = [r["max_diameter_3d_mm"] for r in rows]
    summary = {
        "lesion_count": len(rows),
        "cumulative_tumor_volume_ml": cumulative,
        "cumulative_enhancing_volume_ml": sum(r["enhancing_volume_ml"] for r in rows)
        if scheme.has(Role.ENHANCING)
        else None,
        "total_edema_volume_ml": total_edema,
        "lesion_edema_volume_ml": sum(r["edema_volume_ml"] for r in rows) if has_edema else None,
        "edema_ratio": _ratio(total_edema, cumulative),
        "largest_max_diameter_3d_mm": max(diameters) if rows else None,
        "largest_axial_diameter_mm": max(r["axial_longest_diameter_mm"] for r in rows) if rows else None,
        "measurable_lesion_count": sum(1 for r in rows if r["rano_bm_measurable"]),
        "target_lesion_count": len(targets),
        "sum_longest_diameters_mm": sum(r["axial_longest_diameter_mm"] for r in targets),
        **{name: sum(1 for d in diameters if test(d)) for name, _, test in DIAMETER_CLASSES},
        "edema_only_component_count": len(edema_only),
        "edema_only_volume_ml": sum(r["volume_ml"] for r in edema_only),
        "resection_cavity_volume_ml": _ml(cavity_voxels, vox_mm3) if scheme.has(Role.CAVITY) else None,
        "resection_cavity_count": len(cavities) if scheme.has(Role.CAVITY) else None,
        "discarded_core_component_count": lesions.discarded_count,
        "discarded_core_volume_ml": _ml(lesions.discarded_voxels, vox_mm3),
        "discarded_edema_component_count": assignment.discarded_edema_only_count,
        "discarded_edema_volume_ml": _ml(assignment.discarded_edema_only_voxels, vox_mm3),
    }
    return summary


@cache
def _software_versions() -> dict[str, str]:
    """Versions of the packages whose code computed the features (from their metadata, no import; read once
    per process: 8 ms, a tenth of a study's measurement)."""
    packages = ("numpy", "scipy", "scikit-image", "nibabel", "SimpleITK", "connected-components-3d")
    return {"brainmets": __version__, "python": platform.python_version(), **{p: version(p) for p in packages}}


def _provenance(label_map, params, grid, counts, vox_mm3, reference, location, misreadings) -> dict[str, Any]:
    affine = label_map.affine
    shear = axis_shear_deg(affine)
    warnings = [*label_map.warnings, *misreadings]
    registration = (reference.provenance.get("registration") or {}) if reference is not None else {}
    if registration.get("poor"):
        warnings.append(
            f"template registration looks poor (brain-mask Dice {registration['brain_mask_dice']:.2f}): "
            "check the location results"
        )
    if shear > 0.01:
        warnings.append(
            f"voxel axes are sheared by {shear:.3g} degrees: volumes, surfaces and diameters use the full affine, "
            "but distances for lesion merging and edema attribution use the voxel sizes only"
        )
    return {
        "brainmets_version": __version__,
        "software": dict(_software_versions()),
        **label_map.provenance,
        "affine_ras": affine.tolist(),
        "orientation": "".join(nib.orientations.aff2axcodes(affine)),
        "voxel_size_mm": voxel_spacing_mm(affine).tolist(),
        "voxel_volume_mm3": vox_mm3,
        "axis_shear_deg": shear,
        "axial_obliquity_deg": grid.obliquity_deg,
        "axial_plane_spacing_mm": grid.spacing_mm,
        "axial_reference_axis": "ijk"[grid.slice_axis],
        "label_scheme": params.scheme.name,
        "label_voxel_counts": {str(k): v for k, v in sorted(counts.items())},
        "parameters": params.as_dict(),
        "warnings": warnings,
        "anatomy": None
        if reference is None
        else {**reference.provenance, "parameters": asdict(location or LocationParameters())},
        "research_use_only": True,
    }
