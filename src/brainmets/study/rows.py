"""The rows of the features document: one lesion, one edema-only component, one resection cavity, each measured on
its own bounding box within the study's :class:`~brainmets.study.features.Crop`, and the RANO-BM targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np
from scipy import ndimage

from brainmets.location.anatomy import ParcellationAnatomy
from brainmets.location.locate import empty_location, locate_cavity
from brainmets.location.parameters import LocationParameters
from brainmets.location.references import Reference
from brainmets.measurement.geometry import (
    AxialDiameters,
    AxialGrid,
    apply_affine,
    axial_diameters,
    max_pairwise_distance,
    mesh_volume_and_area,
    surface_mesh,
    voxel_spacing_mm,
    voxel_volume_mm3,
)
from brainmets.measurement.lesions import EdemaAssignment, Lesions, structure
from brainmets.measurement.parameters import FeatureParameters
from brainmets.schemes import LabelScheme, Role, role_mask

MM3_PER_ML = 1000.0


@dataclass(frozen=True)
class Crop:
    """The box of the image that holds every non-zero label, and what per-lesion work needs to place a box of
    it back in the image: its labels, its own affine, its first voxel in the image, the image's shape and
    axial grid, the label scheme."""

    labels: np.ndarray
    affine: np.ndarray
    origin: tuple[int, ...]
    image_shape: tuple[int, ...]
    grid: AxialGrid
    scheme: LabelScheme

    def image_fields(self, box: tuple[slice, ...]) -> dict[str, Any]:
        """The bounding-box columns (image voxel indices) of a box of the crop, and whether it touches the
        image's border."""
        image_box = tuple(slice(s.start + o, s.stop + o) for s, o in zip(box, self.origin))
        return {
            **_bbox_fields(image_box),
            "touches_image_border": any(s.start == 0 or s.stop == n for s, n in zip(image_box, self.image_shape)),
        }


def ml(voxels: float, vox_mm3: float) -> float:
    return float(voxels) * vox_mm3 / MM3_PER_ML


def ratio(num: float | None, den: float) -> float | None:
    return None if num is None or den <= 0 else num / den


def _bbox_fields(box: tuple[slice, ...]) -> dict[str, int]:
    out = {}
    for axis, s in zip("ijk", box):
        out[f"bbox_{axis}_min"] = int(s.start)
        out[f"bbox_{axis}_max"] = int(s.stop) - 1
    return out


def _tight_box(mask: np.ndarray, box: tuple[slice, ...]) -> tuple[slice, ...]:
    """Shrink ``box`` to the voxels of ``mask`` (a crop of the image at ``box``)."""
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(slice(box[axis].start + int(idx[0]), box[axis].start + int(idx[-1]) + 1))
    return tuple(out)


def lesion_row(lesions: Lesions, crop: Crop, lesion_id: int) -> dict[str, Any]:
    """Every feature of one lesion but its edema, on the lesion's bounding box."""
    affine = crop.affine
    box = lesions.boxes[lesion_id - 1]
    mask = lesions.mask(lesion_id)
    offset = tuple(s.start for s in box)
    vox_mm3 = voxel_volume_mm3(affine)
    voxels = int(np.count_nonzero(mask))
    mesh = surface_mesh(mask, affine, offset)
    mesh_mm3, area = mesh_volume_and_area(mesh)
    axial = axial_diameters(mesh, crop.grid)
    centroid = apply_affine(affine, np.argwhere(mask).mean(axis=0) + offset)
    sub_volume = {
        role: ml(np.count_nonzero(mask & role_mask(crop.labels[box], crop.scheme, role)), vox_mm3)
        if crop.scheme.has(role)
        else None
        for role in (Role.ENHANCING, Role.NECROTIC)
    }
    return {
        "lesion_id": lesion_id,
        "voxel_count": voxels,
        "volume_ml": ml(voxels, vox_mm3),
        "mesh_volume_ml": mesh_mm3 / MM3_PER_ML,
        "enhancing_volume_ml": sub_volume[Role.ENHANCING],
        "necrotic_volume_ml": sub_volume[Role.NECROTIC],
        "necrotic_fraction": necrotic_fraction(sub_volume[Role.NECROTIC], sub_volume[Role.ENHANCING]),
        "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
        "axial_longest_diameter_mm": axial.longest_mm,
        "axial_perpendicular_diameter_mm": axial.perpendicular_mm,
        "axial_slice_count": axial.slice_count,
        "axial_plane_z_mm": axial.plane_z_mm,
        **caliper_fields(axial),
        "equivalent_sphere_diameter_mm": float(np.cbrt(6.0 * voxels * vox_mm3 / np.pi)),
        "surface_area_mm2": area,
        "sphericity": float(np.cbrt(36.0 * np.pi * mesh_mm3**2) / area) if area > 0 else None,
        **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", centroid)},
        **crop.image_fields(box),
        **{f"extent_{c}_mm": float(v) for c, v in zip("xyz", np.ptp(mesh.vertices, axis=0))},
        "core_components": len(lesions.members[lesion_id - 1]),
    }


def caliper_fields(axial: AxialDiameters) -> dict[str, float | None]:
    """The RANO-BM calipers' ends (world x, y mm in the plane ``axial_plane_z_mm``), as the lesion table has them."""
    fields = {}
    for caliper, ends in (("longest", axial.longest_ends), ("perpendicular", axial.perpendicular_ends)):
        for end in (1, 2):
            for axis, c in enumerate("xy"):
                fields[f"axial_{caliper}_{c}{end}_mm"] = None if ends is None else float(ends[end - 1][axis])
    return fields


def necrotic_fraction(necrotic_ml: float | None, enhancing_ml: float | None) -> float | None:
    """Necrotic / (necrotic + enhancing) core volume: None when the scheme lacks either label or neither is
    present (a core-only label)."""
    if necrotic_ml is None or enhancing_ml is None or necrotic_ml + enhancing_ml <= 0:
        return None
    return necrotic_ml / (necrotic_ml + enhancing_ml)


def mark_radiotherapy_triage(rows: list[dict[str, Any]], params: FeatureParameters) -> None:
    """The radiosurgery size surrogates of every lesion, from its core's maximum 3D diameter D: the RTOG 90-05
    dose level (None beyond the last level) and the ASTRO 2022 size tier (research surrogates, not doses)."""
    low, middle, high = params.astro2022_tier_edges_mm
    for row in rows:
        diameter = row["max_diameter_3d_mm"]
        row["rtog9005_dose_level_gy"] = next(
            (dose for largest, dose in params.rtog9005_dose_levels if diameter <= largest), None
        )
        if diameter < low:
            row["astro2022_srs_tier"] = "under_20mm"
        elif diameter < middle:
            row["astro2022_srs_tier"] = "20_to_under_30mm"
        elif diameter <= high:
            row["astro2022_srs_tier"] = "30_to_40mm"
        else:
            row["astro2022_srs_tier"] = "over_40mm"
        row["astro2022_srs_over_60mm"] = diameter > params.astro2022_discouraged_above_mm


def pf_postoperative_hydrocephalus(
    rows: list[dict[str, Any]], anatomy: ParcellationAnatomy, params: LocationParameters
) -> dict[str, Any]:
    """The predictors of hydrocephalus after posterior-fossa surgery, for the largest lesion (by core volume)
    that is infratentorial or mixed: taken to be the one operated on, its core the paper's "tumour" and its
    attributed edema the "edema". Null without a subject parcellation or a posterior-fossa lesion; a factor
    that cannot be judged (no edema label: its ratio is null) is left out of the list."""
    out: dict[str, Any] = dict.fromkeys(
        ("fourth_ventricle_to_tumour_volume_ratio", "edema_to_tumour_volume_ratio",
         "pf_postoperative_hydrocephalus_risk_factors"),
    )  # fmt: skip
    fourth = anatomy.study["fourth_ventricle_volume_ml"]
    posterior = [r for r in rows if r.get("location") in ("infratentorial", "mixed")]
    if not anatomy.trees or not posterior:
        return out
    tumour = max(posterior, key=lambda r: (r["volume_ml"], -r["lesion_id"]))
    volume = tumour["volume_ml"]
    out["fourth_ventricle_to_tumour_volume_ratio"] = ratio(fourth, volume)
    out["edema_to_tumour_volume_ratio"] = ratio(tumour["edema_volume_ml"], volume)
    factors = {
        "fourth_ventricle_to_tumour_volume_ratio_low": out["fourth_ventricle_to_tumour_volume_ratio"] is not None
        and out["fourth_ventricle_to_tumour_volume_ratio"] <= params.pf_hydrocephalus_ventricle_ratio_max,
        "edema_to_tumour_volume_ratio_low": out["edema_to_tumour_volume_ratio"] is not None
        and out["edema_to_tumour_volume_ratio"] <= params.pf_hydrocephalus_edema_ratio_max,
        "fourth_ventricle_contact": bool(tumour["fourth_ventricle_contact"]),
        "multiple_metastases": len(rows) > 1,
    }
    out["pf_postoperative_hydrocephalus_risk_factors"] = [name for name, present in factors.items() if present]
    return out


def mark_rano_targets(rows: list[dict[str, Any]], params: FeatureParameters) -> None:
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


def edema_only_rows(
    assignment: EdemaAssignment, regions: np.ndarray, edema: np.ndarray, crop: Crop
) -> list[dict[str, Any]]:
    """Rows of the edema-only components (``regions`` and ``edema`` are on the crop)."""
    affine, scheme = crop.affine, crop.scheme
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
            grown = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, crop.labels.shape))
            local = (regions[grown] == comp.label) & edema[grown]
            ring = ndimage.binary_dilation(local, structure(26)) & ~local
            adjacent = bool(np.any(role_mask(crop.labels[grown], scheme, Role.CAVITY) & ring))
        rows.append(
            {
                "voxel_count": comp.edema_voxels,
                "volume_ml": ml(comp.edema_voxels, vox_mm3),
                "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
                **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", centroid)},
                **crop.image_fields(box),
                "adjacent_to_cavity": adjacent,
            }
        )
    rows.sort(key=lambda r: (-r["voxel_count"], *(round(r[f"centroid_{c}_mm"], 6) for c in "xyz")))
    for i, row in enumerate(rows, start=1):
        row["component_id"] = i
    return rows


def cavity_rows(
    lesions: Lesions,
    crop: Crop,
    params: FeatureParameters,
    reference: Reference | None,
    location: LocationParameters,
) -> list[dict[str, Any]]:
    """Rows of the resection-cavity components: size, the enhancing tissue and lesions in each one's rim, and
    where each is."""
    scheme, affine = params.scheme, crop.affine
    if not scheme.has(Role.CAVITY):
        return []
    cavity = role_mask(crop.labels, scheme, Role.CAVITY)
    components, n = cc3d.connected_components(cavity, connectivity=params.connectivity, return_N=True)
    if n == 0:
        return []
    enhancing = role_mask(crop.labels, scheme, Role.ENHANCING) if scheme.has(Role.ENHANCING) else None
    instances = lesions.instances()
    vox_mm3, spacing = voxel_volume_mm3(affine), voxel_spacing_mm(affine)
    rows = []
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        mask = components[box] == label
        offset = tuple(s.start for s in box)
        mesh = surface_mesh(mask, affine, offset)
        voxels = np.argwhere(mask) + offset
        rim = _rim(mask, offset, spacing, params.cavity_rim_mm)
        in_crop = tuple(rim[np.all((rim >= 0) & (rim < crop.labels.shape), axis=1)].T)  # beyond the crop all is 0
        row = {
            "voxel_count": len(voxels),
            "volume_ml": ml(len(voxels), vox_mm3),
            "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
            "axial_longest_diameter_mm": axial_diameters(mesh, crop.grid).longest_mm,
            **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", apply_affine(affine, voxels.mean(axis=0)))},
            **crop.image_fields(box),
            "rim_enhancing_volume_ml": None if enhancing is None else ml(np.count_nonzero(enhancing[in_crop]), vox_mm3),
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
