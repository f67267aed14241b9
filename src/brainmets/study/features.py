"""One label map measured: its lesions found, each measured and located, the edema attributed, and the features
document assembled (study summary, provenance) with the lesion instance map."""

from __future__ import annotations

import logging
import platform
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import cache, cached_property, partial
from importlib.metadata import version
from typing import Any

import nibabel as nib
import numpy as np

from brainmets._version import __version__
from brainmets.errors import InputDataError, LabelSchemeError
from brainmets.io.labelmap import LabelMap
from brainmets.location.anatomy import ParcellationAnatomy, subject_anatomy
from brainmets.location.locate import (
    empty_location,
    empty_structure_distances,
    locate,
    missing_notes,
    nearest_candidates,
    structure_distances,
    ventricle_tree,
)
from brainmets.location.parameters import LocationParameters
from brainmets.location.references import Reference
from brainmets.measurement.geometry import (
    AxialGrid,
    apply_affine,
    axis_shear_deg,
    bounding_box,
    crop_affine,
    voxel_spacing_mm,
    voxel_volume_mm3,
)
from brainmets.measurement.lesions import Lesions, assign_edema, find_lesions
from brainmets.measurement.parameters import FeatureParameters
from brainmets.schemes import (
    CORE_ROLES,
    LabelScheme,
    Role,
    check_values,
    count_values,
    reading,
    role_mask,
    scheme_mismatch,
)
from brainmets.study.columns import DIAMETER_CLASSES
from brainmets.study.rows import (
    Crop,
    cavity_rows,
    edema_only_rows,
    lesion_row,
    mark_radiotherapy_triage,
    mark_rano_targets,
    ml,
    pf_postoperative_hydrocephalus,
    ratio,
)

log = logging.getLogger(__name__)


@dataclass
class StudyFeatures:
    """The ``features`` result: one JSON document plus the lesion instance map."""

    document: dict[str, Any]
    affine: np.ndarray
    shape: tuple[int, int, int]
    box: tuple[slice, ...]  # where the non-zero labels are
    lesion_map: Lesions  # on the crop ``box``
    scheme: LabelScheme | None = None  # the scheme the labels were read with (binary for a map of 0 and 1)

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


def _label_counts(crop: np.ndarray, nonzero: np.ndarray, scheme) -> dict[int, int]:
    """Voxel count of every non-zero label value: one comparison per value the scheme knows, and a full
    count only when some non-zero voxel holds another value (an error, or the binary scheme)."""
    known = sorted({v for values in scheme.values.values() for v in values})
    counts = {v: int(np.count_nonzero(crop == v)) for v in known}
    if scheme.nonzero_role is not None or sum(counts.values()) != int(np.count_nonzero(nonzero)):
        return count_values(crop[nonzero])
    return {v: c for v, c in counts.items() if c}


def measure_label_map(
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
    nonzero = labels != 0
    box = bounding_box(nonzero)
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
    cropped_affine = crop_affine(affine, origin)
    grid = AxialGrid.from_affine(affine, shape)
    cropped = Crop(crop, cropped_affine, origin, shape, grid, scheme)

    core = role_mask(crop, scheme, *CORE_ROLES)
    edema = role_mask(crop, scheme, Role.EDEMA)
    lesions = find_lesions(
        core, edema, cropped_affine, params.connectivity, params.min_lesion_volume_mm3, params.merge_distance_mm
    )
    measure = partial(lesion_row, lesions, cropped)
    assign = partial(assign_edema, lesions, edema, cropped_affine, params.min_edema_component_volume_mm3)
    ids = range(1, lesions.count + 1)
    if threads > 1 and lesions.count > 1:  # the edema is assigned while the lesions are measured
        with ThreadPoolExecutor(max_workers=threads) as pool:
            assigned = pool.submit(assign)
            measured = [pool.submit(measure, i) for i in ids]
            rows, assignment = [m.result() for m in measured], assigned.result()
    else:
        rows, assignment = [measure(i) for i in ids], assign()
    for row in rows:
        edema_ml = ml(assignment.lesion_voxels[row["lesion_id"]], vox_mm3) if scheme.has(Role.EDEMA) else None
        row["edema_volume_ml"] = edema_ml
        row["edema_ratio"] = ratio(edema_ml, row["volume_ml"])
        row["edema_index"] = None if edema_ml is None else ratio(edema_ml + row["volume_ml"], row["volume_ml"])
    mark_rano_targets(rows, params)
    mark_radiotherapy_triage(rows, params)
    location = location or LocationParameters()
    anatomy = subject_anatomy(reference, location)
    _add_location(rows, lesions, cropped_affine, reference, location, label_map.source, anatomy)

    edema_only = edema_only_rows(assignment, lesions.regions, edema, cropped)
    cavities = cavity_rows(lesions, cropped, params, reference, location)
    study = _summary(rows, edema_only, cavities, counts, lesions, assignment, scheme, vox_mm3)
    study = {
        "subject": subject,
        "session": session,
        **study,
        **_location_summary(rows, reference, anatomy),
        **anatomy.study,
        **pf_postoperative_hydrocephalus(rows, anatomy, location),
    }

    document = {
        "study": study,
        "lesions": rows,
        "edema_only_components": edema_only,
        "resection_cavities": cavities,
        "provenance": _provenance(label_map, params, grid, counts, vox_mm3, reference, location, misreadings, anatomy),
    }
    return StudyFeatures(document, affine, shape, box, lesions, scheme)


def _add_location(rows, lesions, affine, reference, location, source, anatomy: ParcellationAnatomy) -> None:
    """Location fields of every lesion (null without a reference), and its distances to the structures of the
    subject's parcellation (null without one)."""
    if reference is None:
        for row in rows:
            row.update(empty_location())
            row.update(empty_structure_distances())
        return
    points, nearer = [], []
    trees = [ventricle_tree(reference), *anatomy.trees.values()]
    for lesion_id, box in enumerate(lesions.boxes, start=1):
        mask, offset = lesions.mask(lesion_id), [s.start for s in box]
        points.append(apply_affine(affine, (np.argwhere(mask) + offset).astype(float)))
        candidates = nearest_candidates(mask, crop_affine(affine, offset), trees)
        nearer.append(None if candidates is None else points[-1][candidates[mask]])  # rows in argwhere's order
    names = ", ".join([source, *(image.source for image in reference.images.values())])
    for row, located, lesion_points, near in zip(
        rows, locate(points, reference, location, names, nearer), points, nearer
    ):
        row.update(located)
        if anatomy.trees:
            centroid = np.array([row[f"centroid_{c}_mm"] for c in "xyz"])
            row.update(structure_distances(lesion_points if near is None else near, centroid, anatomy, location))
        else:
            row.update(empty_structure_distances())


def _location_summary(rows, reference, anatomy: ParcellationAnatomy) -> dict[str, Any]:
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
        "location_notes": missing_notes(reference, anatomy),
    }


def _summary(rows, edema_only, cavities, counts, lesions, assignment, scheme, vox_mm3) -> dict[str, Any]:
    has_edema = scheme.has(Role.EDEMA)
    cumulative = sum(r["volume_ml"] for r in rows)
    edema_voxels = sum(counts.get(v, 0) for v in scheme.values.get(Role.EDEMA, ()))
    total_edema = ml(edema_voxels, vox_mm3) if has_edema else None
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
        "edema_ratio": ratio(total_edema, cumulative),
        "largest_max_diameter_3d_mm": max(diameters) if rows else None,
        "largest_axial_diameter_mm": max(r["axial_longest_diameter_mm"] for r in rows) if rows else None,
        "measurable_lesion_count": sum(1 for r in rows if r["rano_bm_measurable"]),
        "target_lesion_count": len(targets),
        "sum_longest_diameters_mm": sum(r["axial_longest_diameter_mm"] for r in targets),
        **{name: sum(1 for d in diameters if test(d)) for name, _, test in DIAMETER_CLASSES},
        "edema_only_component_count": len(edema_only),
        "edema_only_volume_ml": sum(r["volume_ml"] for r in edema_only),
        "resection_cavity_volume_ml": ml(cavity_voxels, vox_mm3) if scheme.has(Role.CAVITY) else None,
        "resection_cavity_count": len(cavities) if scheme.has(Role.CAVITY) else None,
        "discarded_core_component_count": lesions.discarded_count,
        "discarded_core_volume_ml": ml(lesions.discarded_voxels, vox_mm3),
        "discarded_edema_component_count": assignment.discarded_edema_only_count,
        "discarded_edema_volume_ml": ml(assignment.discarded_edema_only_voxels, vox_mm3),
    }
    return summary


@cache
def _software_versions() -> dict[str, str]:
    """Versions of the packages whose code computed the features (from their metadata, no import; read once
    per process: 8 ms, a tenth of a study's measurement)."""
    packages = ("numpy", "scipy", "scikit-image", "nibabel", "SimpleITK", "connected-components-3d")
    return {"brainmets": __version__, "python": platform.python_version(), **{p: version(p) for p in packages}}


def _provenance(label_map, params, grid, counts, vox_mm3, reference, location, misreadings, anatomy) -> dict[str, Any]:
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
        else {**reference.provenance, "parameters": asdict(location), **anatomy.provenance()},
        "research_use_only": True,
    }
