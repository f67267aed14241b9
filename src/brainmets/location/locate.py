"""Where each lesion is: posterior fossa, brainstem, eloquent regions and the 4th ventricle, by sampling an
anatomical reference (:mod:`brainmets.location.references`) at the world positions of its core voxel centres."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from brainmets.errors import InputDataError
from brainmets.location.anatomy import ParcellationAnatomy
from brainmets.location.parameters import LocationParameters
from brainmets.location.references import OUTSIDE, Reference, Region, region_mask
from brainmets.measurement.geometry import apply_affine

log = logging.getLogger(__name__)


NO_REFERENCE = "no anatomical reference was configured (parcellation, atlas or template)"


def empty_location() -> dict[str, Any]:
    """Per-lesion location fields when they cannot be determined (why: see ``missing_notes``)."""
    return {
        "posterior_fossa_fraction": None,
        "location": None,
        "brainstem_fraction": None,
        "brainstem_involved": None,
        "eloquent_regions": None,
        "distance_to_fourth_ventricle_mm": None,
    }


def empty_structure_distances() -> dict[str, Any]:
    """Per-lesion fields measured on the subject's parcellation, when there is none."""
    return {
        "hemisphere": None,
        "distance_to_brainstem_mm": None,
        "fourth_ventricle_contact": None,
        "third_ventricle_contact": None,
        "distance_to_optic_chiasm_mm": None,
        "near_optic_chiasm": None,
    }


def structure_distances(
    points: np.ndarray, centroid: np.ndarray, anatomy: ParcellationAnatomy, params: LocationParameters
) -> dict[str, Any]:
    """A lesion's side of the midline plane (of its core's centroid) and the shortest distances between the
    centres of its core voxels (``points``: all of them, or those that can be nearest) and those of the
    brainstem (16), 4th (15) and 3rd (14) ventricles and optic chiasm (85) of the subject's parcellation."""

    def distance(name: str) -> float | None:
        tree = anatomy.trees.get(name)
        return None if tree is None or not len(points) else float(tree.query(points, k=1)[0].min())

    fourth, third, chiasm = distance("fourth_ventricle"), distance("third_ventricle"), distance("optic_chiasm")
    side = None if anatomy.plane is None else float(anatomy.plane.signed_distance(centroid[None])[0])
    return {
        "hemisphere": None if side is None else ("right" if side >= 0 else "left"),
        "distance_to_brainstem_mm": distance("brainstem"),
        "fourth_ventricle_contact": None if fourth is None else fourth <= params.fourth_ventricle_contact_mm,
        "third_ventricle_contact": None if third is None else third <= params.fourth_ventricle_contact_mm,
        "distance_to_optic_chiasm_mm": chiasm,
        "near_optic_chiasm": None if chiasm is None else chiasm <= params.optic_chiasm_near_mm,
    }


def locate(
    lesion_points: list[np.ndarray],
    reference: Reference,
    params: LocationParameters,
    sources: str,
    distance_points: list[np.ndarray | None] | None = None,
) -> list[dict[str, Any]]:
    """Location fields of each lesion, given the world coordinates of its core voxel centres (and those of
    them that can be its nearest to the 4th ventricle, when known: see ``nearest_candidates``).

    Raises :class:`InputDataError` (naming ``sources``) when lesion voxels fall outside the reference's
    field of view, or when too many of them fall outside its brain (the two do not line up).
    """
    samples = [reference.sample(points) for points in lesion_points]
    outside = sum(int(np.any([s[n] == OUTSIDE for n in s], axis=0).sum()) for s in samples)
    total = sum(len(p) for p in lesion_points)
    if outside:
        raise InputDataError(
            sources,
            f"the anatomical reference does not cover the lesions: {outside} of {total} lesion voxels fall "
            "outside its field of view (wrong file, or headers that do not line up: see --reference-alignment)",
        )
    if reference.has("brain") and total:
        out_of_brain = sum(int((~region_mask(reference.definition.regions["brain"], s)).sum()) for s in samples)
        if out_of_brain > params.max_outside_brain_fraction * total:
            raise InputDataError(
                sources,
                f"the anatomical reference does not line up with the segmentation: {out_of_brain} of {total} "
                f"lesion voxels ({out_of_brain / total:.0%}) fall outside its brain (if the voxel grids match "
                "although the headers disagree, use --reference-alignment voxel)",
            )
    ventricle = ventricle_tree(reference)
    return [
        _location_row(points, sample, None, reference, params, ventricle, nearer)
        for points, sample, nearer in zip(
            lesion_points, samples, distance_points or [None] * len(lesion_points), strict=True
        )
    ]


def ventricle_tree(reference: Reference) -> cKDTree | None:
    """The reference's 4th-ventricle points (None without that region)."""
    return reference.region_tree("fourth_ventricle") if reference.has("fourth_ventricle") else None


#: An interior voxel is kept as a candidate when a ventricle point lies within its cell widened by this
#: fraction of a voxel: far more than rounding, or the cross terms of an affine sheared by up to
#: ``MAX_CANDIDATE_SHEAR_DEG``, can move a distance (see ``nearest_candidates``).
CELL_MARGIN = 0.01
MAX_CANDIDATE_SHEAR_DEG = 1e-6


def nearest_candidates(mask: np.ndarray, affine: np.ndarray, trees: list[cKDTree | None]) -> np.ndarray | None:
    """The voxels of ``mask`` (a lesion's crop, ``affine`` its grid) that can be the lesion's nearest to a
    structure (the points of one of ``trees``): its boundary voxels (a face neighbour outside the lesion) and
    the interior voxels whose own cell (widened by ``CELL_MARGIN``) holds a structure point. On a grid with
    orthogonal axes a step to the face neighbour towards a point outside an interior voxel's widened cell
    shortens the distance to it by at least 2 x CELL_MARGIN x that axis's spacing squared, so no other voxel
    can be the nearest. None where that does not hold (a sheared grid) or there is no structure: then every
    voxel counts."""
    from brainmets.measurement.geometry import axis_shear_deg

    trees = [tree for tree in trees if tree is not None]
    if not trees or axis_shear_deg(affine) > MAX_CANDIDATE_SHEAR_DEG:
        return None
    p = np.pad(mask, 1)  # six shifted views: several times faster than ndimage.binary_erosion on such crops
    interior = mask & p[:-2, 1:-1, 1:-1] & p[2:, 1:-1, 1:-1] & p[1:-1, :-2, 1:-1] & p[1:-1, 2:, 1:-1]
    interior &= p[1:-1, 1:-1, :-2] & p[1:-1, 1:-1, 2:]
    candidates = mask & ~interior
    to_index = np.linalg.inv(affine)
    corners = apply_affine(affine, np.array(list(np.ndindex(2, 2, 2)), float) * (np.asarray(mask.shape) - 1))
    voxel = np.abs(affine[:3, :3]).sum(axis=1)  # a voxel's reach along each world axis
    reach_low, reach_high = corners.min(axis=0) - voxel, corners.max(axis=0) + voxel
    for tree in trees:
        if np.any(tree.maxes < reach_low) or np.any(tree.mins > reach_high):
            continue  # the structure lies wholly outside the crop (widened by a voxel): no interior voxel holds it
        points = tree.data[np.all((tree.data >= reach_low) & (tree.data <= reach_high), axis=1)]
        index = apply_affine(to_index, points)  # the structure's points near the crop, in its voxel indices
        low, high = (np.floor(index + 0.5 + m).astype(np.int64) for m in (-CELL_MARGIN, CELL_MARGIN))
        for corner in np.ndindex(2, 2, 2):  # every cell the widened cells around a point reach (mostly one)
            ijk = np.where(np.array(corner, bool), high, low)
            ijk = ijk[np.all((ijk >= 0) & (ijk < mask.shape), axis=1)]
            held = tuple(ijk[interior[tuple(ijk.T)]].T)
            candidates[held] = True
    return candidates


def _location_row(
    points: np.ndarray,
    sample: dict[str, np.ndarray],
    counted: np.ndarray | None,
    reference: Reference,
    params: LocationParameters,
    ventricle: cKDTree | None,
    distance_points: np.ndarray | None = None,
) -> dict[str, Any]:
    """Location fields from the reference's labels at ``points`` (fractions over the ``counted`` points,
    default all); the 4th-ventricle distance is measured from ``distance_points`` (default ``points``)."""
    n = len(points) if counted is None else int(counted.sum())
    row = empty_location()
    if n == 0:
        return row

    def fraction(region: Region) -> float:
        hits = region_mask(region, sample)
        return float((hits if counted is None else hits & counted).sum()) / n

    pf = fraction(reference.definition.regions["posterior_fossa"])
    row["posterior_fossa_fraction"] = pf
    if pf <= params.mixed_margin:
        row["location"] = "supratentorial"
    elif pf >= 1 - params.mixed_margin:
        row["location"] = "infratentorial"
    else:
        row["location"] = "mixed"
    if reference.has("brainstem"):
        bs = fraction(reference.definition.regions["brainstem"])
        row["brainstem_fraction"] = bs
        row["brainstem_involved"] = bool(bs > 0 and bs >= params.brainstem_min_fraction)
    if reference.definition.eloquent:
        row["eloquent_regions"] = sorted(
            name
            for name, region in reference.definition.eloquent.items()
            if (share := fraction(region)) and share >= params.eloquent_min_fraction
        )
    if ventricle is not None:
        source = points if distance_points is None else distance_points
        row["distance_to_fourth_ventricle_mm"] = float(ventricle.query(source, k=1)[0].min())
    return row


def locate_cavity(
    cavity_points: np.ndarray, rim_points: np.ndarray, reference: Reference, params: LocationParameters
) -> dict[str, Any]:
    """Location fields of a resection cavity, from the reference's labels at its voxels that lie inside the
    reference's brain. A parcellation of the operated brain often leaves the cavity unlabelled (a hole):
    when more of its voxels than ``max_outside_brain_fraction`` fall outside the brain, the tissue of its
    rim (``rim_points``, ``features.cavity_rim_mm``) is read too. Nothing inside the brain: all fields null."""

    def inside(points: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        sample = reference.sample(points)
        counted = ~np.any([values == OUTSIDE for values in sample.values()], axis=0)
        if reference.has("brain"):
            counted &= region_mask(reference.definition.regions["brain"], sample)
        return sample, counted

    ventricle = ventricle_tree(reference)
    sample, counted = inside(cavity_points)
    if counted.mean() >= 1 - params.max_outside_brain_fraction:
        return _location_row(cavity_points, sample, counted, reference, params, ventricle)
    points = np.concatenate([cavity_points, rim_points])
    sample, counted = inside(points)
    return _location_row(points, sample, counted, reference, params, ventricle, cavity_points)


def missing_notes(reference: Reference | None, anatomy: ParcellationAnatomy) -> list[str]:
    """Why location fields are null for this study."""
    if not anatomy.trees:  # no parcellation of the subject was measured
        parcellation = [
            f"{anatomy.study['midline_shift_reason']}: the midline shift, ventricle volumes, Evans index, "
            "hemisphere, distances to the brainstem and optic chiasm, ventricle contacts and post-operative "
            "hydrocephalus risk factors are null"
        ]
    else:
        parcellation = list(anatomy.notes)
        missing = [name for name, tree in anatomy.trees.items() if tree is None]
        if missing:
            parcellation.append(
                f"the parcellation has no {', '.join(missing)} label: the distances and contacts to it are null"
            )
    if reference is None:
        return [NO_REFERENCE, *parcellation]
    notes = parcellation
    name = reference.definition.name
    if not reference.has("brainstem"):
        notes.append(f"reference {name!r} has no brainstem label: brainstem_fraction and brainstem_involved are null")
    if not reference.has("fourth_ventricle"):
        notes.append(f"reference {name!r} has no 4th-ventricle label: distance_to_fourth_ventricle_mm is null")
    if not reference.definition.eloquent:
        notes.append(f"reference {name!r} defines no eloquent regions: eloquent_regions is null")
    return notes
