#!/usr/bin/env python3
"""Make the bundled test cases: analytic phantoms with their known answers, and the demo cohort.

Deterministic (fixed seeds, gzip without timestamps): running it again rewrites identical label arrays.
Usage: python test_data/generate.py [OUT_DIR]   (default: the folder of this script)

Phantoms (test_data/phantoms/, answers in expected.json): every shape is defined in world millimetres and
voxelised by testing voxel centres, so the answers are the continuous shapes' values; tolerances in
expected.json are what voxelisation allows (about one voxel for lengths, a few percent for volumes).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
BRATS_SHAPE = (240, 240, 155)
#: The BraTS/SRI24 grid: 1 mm, LPS-stored (x and y flipped), as the BraTS NIfTI files are.
BRATS_AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1]])


def save(path: Path, labels: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(labels.astype(np.int16 if labels.max() > 255 else np.uint8), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def world_grid(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """World coordinates of every voxel centre, shape (*shape, 3)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def ellipsoid(points: np.ndarray, centre, semi_axes) -> np.ndarray:
    d = (points - np.asarray(centre, float)) / np.asarray(semi_axes, float)
    return (d**2).sum(axis=-1) <= 1.0


def sphere_volume(r: float) -> float:
    return 4.0 / 3.0 * math.pi * r**3


def cap_volume(r: float, h: float) -> float:
    """Volume of a spherical cap of height h."""
    return math.pi * h * h * (3 * r - h) / 3.0


def rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def affine_from(linear: np.ndarray, centre_world, shape) -> np.ndarray:
    """Affine with the given linear part whose array centre lands on ``centre_world``."""
    aff = np.eye(4)
    aff[:3, :3] = linear
    aff[:3, 3] = np.asarray(centre_world, float) - linear @ ((np.asarray(shape) - 1) / 2.0)
    return aff


def ellipsoid_answers(a: float, b: float, c: float, centre, lengths_tol: float, volume_rel: float) -> dict:
    """Known answers of an ellipsoid with semi-axes a >= b along world x, y and c along z."""
    return {
        "volume_ml": {"value": sphere_volume(1) * a * b * c / 1000, "rel_tol": volume_rel},
        "mesh_volume_ml": {"value": sphere_volume(1) * a * b * c / 1000, "rel_tol": volume_rel},
        "max_diameter_3d_mm": {"value": 2 * max(a, b, c), "abs_tol": lengths_tol},
        "axial_longest_diameter_mm": {"value": 2 * max(a, b), "abs_tol": lengths_tol},
        "axial_perpendicular_diameter_mm": {"value": 2 * min(a, b), "abs_tol": lengths_tol},
        "centroid_x_mm": {"value": centre[0], "abs_tol": 0.05},
        "centroid_y_mm": {"value": centre[1], "abs_tol": 0.05},
        "centroid_z_mm": {"value": centre[2], "abs_tol": 0.05},
        "touches_image_border": {"value": False},
    }


def phantoms(out: Path) -> dict:
    """Write the analytic phantoms; return their known answers."""
    cases: dict[str, dict] = {}

    # 1. Sphere, r = 10 mm, 1 mm isotropic, RAS.
    shape, aff = (48, 48, 48), affine_from(np.eye(3), (0, 0, 0), (48, 48, 48))
    pts = world_grid(shape, aff)
    save(out / "sphere.nii.gz", ellipsoid(pts, (0, 0, 0), (10, 10, 10)) * 3, aff)
    cases["sphere"] = {
        "scheme": "brats-mets-2023",
        "study": {"lesion_count": {"value": 1}, "edema_only_component_count": {"value": 0}},
        "lesions": [
            {
                **ellipsoid_answers(10, 10, 10, (0, 0, 0), 1.0, 0.02),
                "equivalent_sphere_diameter_mm": {"value": 20.0, "abs_tol": 0.15},
                # the marching-cubes surface of a voxelised sphere is ~8 % larger than the smooth sphere's
                "surface_area_mm2": {"value": 4 * math.pi * 100, "rel_tol": 0.10},
                "sphericity": {"value": 1.0, "abs_tol": 0.08},
                "axial_slice_count": {"value": 20, "abs_tol": 1},
                "edema_volume_ml": {"value": 0.0},
                "edema_ratio": {"value": 0.0},
                "edema_index": {"value": 1.0},
                "rano_bm_measurable": {"value": True},
                "rano_bm_target": {"value": True},
            }
        ],
    }

    # 2. Ellipsoid, semi-axes 15 x 9 x 6 mm along x, y, z; 1 mm isotropic, LPS-stored like BraTS.
    shape = (48, 40, 24)
    aff = affine_from(np.diag([-1.0, -1.0, 1.0]), (10, -20, 30), shape)
    pts = world_grid(shape, aff)
    label = ellipsoid(pts, (10, -20, 30), (15, 9, 6)) * 3
    save(out / "ellipsoid.nii.gz", label, aff)
    answers = {
        **ellipsoid_answers(15, 9, 6, (10, -20, 30), 1.0, 0.03),
        "axial_slice_count": {"value": 12, "abs_tol": 1},
    }
    cases["ellipsoid"] = {"scheme": "brats-mets-2023", "lesions": [answers]}

    # 3. The same ellipsoid with flipped and permuted voxel axes: the same object, so the same numbers.
    flipped = np.flip(label, axis=(0, 2)).transpose(2, 0, 1)
    ijk_to_old = np.zeros((4, 4))
    ijk_to_old[3, 3] = 1
    # new (p, q, r) -> old (i, j, k) = (shape0-1-q, r, shape2-1-p)
    ijk_to_old[0, 1], ijk_to_old[0, 3] = -1, shape[0] - 1
    ijk_to_old[1, 2] = 1
    ijk_to_old[2, 0], ijk_to_old[2, 3] = -1, shape[2] - 1
    save(out / "ellipsoid_flipped_permuted.nii.gz", flipped, aff @ ijk_to_old)
    cases["ellipsoid_flipped_permuted"] = {"scheme": "brats-mets-2023", "same_as": "ellipsoid", "lesions": [answers]}

    # 4. Anisotropic voxels 0.5 x 0.5 x 3 mm; ellipsoid 12 x 8 x 9 mm.
    shape = (64, 48, 9)
    aff = affine_from(np.diag([0.5, 0.5, 3.0]), (0, 0, 0), shape)
    save(out / "anisotropic.nii.gz", ellipsoid(world_grid(shape, aff), (0, 0, 0), (12, 8, 9)) * 3, aff)
    cases["anisotropic"] = {
        "scheme": "brats-mets-2023",
        "lesions": [
            {
                **ellipsoid_answers(12, 8, 9, (0, 0, 0), 0.5, 0.05),
                # 3 mm slices: the z extent of the voxelised shape is known only to a slice
                "max_diameter_3d_mm": {"value": 24.0, "abs_tol": 0.5},
                "axial_slice_count": {"value": 5},
            }
        ],
    }

    # 5. Oblique grid (rotated 25 degrees about an oblique axis): ellipsoid aligned with the world axes.
    lin = rotation((1, 2, 0.5), 25.0)
    shape = (48, 48, 48)
    aff = affine_from(lin, (5, 5, 5), shape)
    save(out / "oblique.nii.gz", ellipsoid(world_grid(shape, aff), (5, 5, 5), (15, 9, 6)) * 3, aff)
    cases["oblique"] = {
        "scheme": "brats-mets-2023",
        "lesions": [ellipsoid_answers(15, 9, 6, (5, 5, 5), 1.5, 0.03)],
    }

    # 6. Two lesions (cores r = 6 mm, 31 mm apart) whose edema (r = 18 mm around each) merges.
    #    Edema goes to the nearer core: the split is the bisecting plane, 15.5 mm from each centre.
    shape = (80, 48, 48)
    aff = affine_from(np.eye(3), (0, 0, 0), shape)
    pts = world_grid(shape, aff)
    c1, c2 = (-15.5, 0, 0), (15.5, 0, 0)
    cores = ellipsoid(pts, c1, (6, 6, 6)) | ellipsoid(pts, c2, (6, 6, 6))
    edema = (ellipsoid(pts, c1, (18, 18, 18)) | ellipsoid(pts, c2, (18, 18, 18))) & ~cores
    save(out / "two_lesions_shared_edema.nii.gz", np.where(cores, 3, np.where(edema, 2, 0)), aff)
    edema_each = sphere_volume(18) - cap_volume(18, 18 - 15.5) - sphere_volume(6)
    lesion = {
        "volume_ml": {"value": sphere_volume(6) / 1000, "rel_tol": 0.04},
        "edema_volume_ml": {"value": edema_each / 1000, "rel_tol": 0.02},
        "edema_ratio": {"value": edema_each / sphere_volume(6), "rel_tol": 0.05},
    }
    cases["two_lesions_shared_edema"] = {
        "scheme": "brats-mets-2023",
        "study": {
            "lesion_count": {"value": 2},
            "edema_only_component_count": {"value": 0},
            "total_edema_volume_ml": {"value": 2 * edema_each / 1000, "rel_tol": 0.02},
        },
        # equal volumes: the tie is broken by position, smaller x first
        "lesions": [
            {**lesion, "centroid_x_mm": {"value": -15.5, "abs_tol": 1e-6}},
            {**lesion, "centroid_x_mm": {"value": 15.5, "abs_tol": 1e-6}},
        ],
    }

    # 7. A sphere (r = 8 mm) centred on the first slice: cut by the image border.
    shape = (32, 32, 20)
    aff = np.eye(4)
    aff[:3, 3] = (-15.5, -15.5, 0.0)  # voxel (i, j, 0) centre at z = 0; slice k = 0 spans z in [-0.5, 0.5]
    save(out / "border.nii.gz", ellipsoid(world_grid(shape, aff), (0, 0, 0), (8, 8, 8)) * 3, aff)
    kept = sphere_volume(8) / 2 + math.pi * (64 * 0.5 - 0.5**3 / 3)  # the part with z >= -0.5
    cases["border"] = {
        "scheme": "brats-mets-2023",
        "lesions": [
            {
                "volume_ml": {"value": kept / 1000, "rel_tol": 0.04},
                "axial_longest_diameter_mm": {"value": 16.0, "abs_tol": 1.0},
                "axial_slice_count": {"value": 8},
                "touches_image_border": {"value": True},
            }
        ],
    }

    # 8. Empty segmentation: valid, zero lesions.
    shape = (32, 32, 16)
    save(out / "empty.nii.gz", np.zeros(shape, np.uint8), np.diag([1.0, 1.0, 2.0, 1.0]))
    cases["empty"] = {
        "scheme": "brats-mets-2023",
        "study": {
            "lesion_count": {"value": 0},
            "cumulative_tumor_volume_ml": {"value": 0.0},
            "total_edema_volume_ml": {"value": 0.0},
            "largest_max_diameter_3d_mm": {"value": None},
            "edema_ratio": {"value": None},
            "sum_longest_diameters_mm": {"value": 0.0},
        },
        "lesions": [],
    }

    # 9. Edema only: a shell of edema with no core is not a lesion.
    shape = (40, 40, 40)
    aff = affine_from(np.eye(3), (0, 0, 0), shape)
    pts = world_grid(shape, aff)
    shell = ellipsoid(pts, (0, 0, 0), (12, 12, 12)) & ~ellipsoid(pts, (0, 0, 0), (5, 5, 5))
    save(out / "edema_only.nii.gz", shell * 2, aff)
    cases["edema_only"] = {
        "scheme": "brats-mets-2023",
        "study": {
            "lesion_count": {"value": 0},
            "edema_only_component_count": {"value": 1},
            "total_edema_volume_ml": {"value": (sphere_volume(12) - sphere_volume(5)) / 1000, "rel_tol": 0.02},
            "edema_only_volume_ml": {"value": (sphere_volume(12) - sphere_volume(5)) / 1000, "rel_tol": 0.02},
        },
        "lesions": [],
    }

    # 10. BraTS 2021 labels: necrotic core (1, r = 4) in an enhancing rim (4, r = 8) in edema (2, r = 14).
    shape = (40, 40, 40)
    aff = affine_from(np.diag([-1.0, -1.0, 1.0]), (0, 0, 0), shape)
    pts = world_grid(shape, aff)
    r4, r8, r14 = (ellipsoid(pts, (0, 0, 0), (r, r, r)) for r in (4, 8, 14))
    save(out / "brats2021.nii.gz", np.where(r4, 1, np.where(r8, 4, np.where(r14, 2, 0))), aff)
    cases["brats2021"] = {
        "scheme": "brats-2021",
        "lesions": [
            {
                "volume_ml": {"value": sphere_volume(8) / 1000, "rel_tol": 0.02},
                "necrotic_volume_ml": {"value": sphere_volume(4) / 1000, "rel_tol": 0.05},
                "enhancing_volume_ml": {"value": (sphere_volume(8) - sphere_volume(4)) / 1000, "rel_tol": 0.03},
                "edema_volume_ml": {"value": (sphere_volume(14) - sphere_volume(8)) / 1000, "rel_tol": 0.02},
                "edema_index": {"value": sphere_volume(14) / sphere_volume(8), "rel_tol": 0.04},
            }
        ],
    }

    # 11. Post-operative (BraTS-METS 2023 label 4): a cavity with edema around it, and a residual lesion.
    shape = (64, 48, 48)
    aff = affine_from(np.eye(3), (0, 0, 0), shape)
    pts = world_grid(shape, aff)
    cavity = ellipsoid(pts, (-12, 0, 0), (8, 8, 8))
    cavity_edema = ellipsoid(pts, (-12, 0, 0), (12, 12, 12)) & ~cavity
    residual = ellipsoid(pts, (18, 0, 0), (4, 4, 4))
    save(out / "postop.nii.gz", np.where(cavity, 4, np.where(cavity_edema, 2, np.where(residual, 3, 0))), aff)
    cases["postop"] = {
        "scheme": "brats-mets-2023",
        "study": {
            "lesion_count": {"value": 1},
            "edema_only_component_count": {"value": 1},
            "resection_cavity_volume_ml": {"value": sphere_volume(8) / 1000, "rel_tol": 0.02},
            "resection_cavity_count": {"value": 1},
        },
        "resection_cavities": [
            {
                "volume_ml": {"value": sphere_volume(8) / 1000, "rel_tol": 0.02},
                "max_diameter_3d_mm": {"value": 16.0, "abs_tol": 1.0},
                "rim_enhancing_volume_ml": {"value": 0.0},
                "rim_lesion_ids": {"value": []},
            }
        ],
        "edema_only_components": [
            {
                "adjacent_to_cavity": {"value": True},
                "volume_ml": {"value": (sphere_volume(12) - sphere_volume(8)) / 1000, "rel_tol": 0.03},
            }
        ],
        "lesions": [{"volume_ml": {"value": sphere_volume(4) / 1000, "rel_tol": 0.05}}],
    }
    return cases


def blob(points: np.ndarray, centre, radius: float, rng: np.random.Generator, roughness: float = 0.15) -> np.ndarray:
    """An irregular lesion: a sphere whose radius varies smoothly with direction (seeded)."""
    d = points - np.asarray(centre, float)
    dist = np.linalg.norm(d, axis=-1)
    unit = d / np.maximum(dist, 1e-9)[..., None]
    wobble = np.zeros(dist.shape)
    for _ in range(3):
        w = rng.normal(size=3) * 2.0
        wobble += np.cos(unit @ w + rng.uniform(0, 2 * math.pi))
    return dist <= radius * (1 + roughness * wobble / 3)


def paint(
    labels: np.ndarray,
    offset,
    core_r: float,
    rng,
    *,
    edema_r: float = 0.0,
    necrotic_r: float = 0.0,
    scheme: str = "brats-mets-2023",
    affine: np.ndarray = BRATS_AFFINE,
) -> None:
    """Draw one metastasis (edema, enhancing rim, necrotic centre) into a label array on ``affine``'s grid
    (the BraTS grid unless given); ``offset`` is from the BraTS grid's centre, in world mm."""
    enhancing, necrotic = (3, 1) if scheme == "brats-mets-2023" else (4, 1)
    centre_ras = BRATS_CENTRE + np.asarray(offset, float)
    reach = int(math.ceil(max(core_r, edema_r) * 1.6 / np.linalg.norm(affine[:3, :3], axis=0).min())) + 2
    ijk = np.linalg.solve(affine, [*centre_ras, 1.0])[:3].round().astype(int)
    box = tuple(slice(max(c - reach, 0), min(c + reach, n)) for c, n in zip(ijk, labels.shape))
    grid = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij"), axis=-1)
    pts = grid @ affine[:3, :3].T + affine[:3, 3]
    crop = labels[box]
    seed = int(rng.integers(1 << 31))
    if edema_r:
        ed = blob(pts, centre_ras, edema_r, np.random.default_rng(seed), 0.25)
        crop[ed & (crop == 0)] = 2
    core = blob(pts, centre_ras, core_r, np.random.default_rng(seed + 1))
    crop[core] = enhancing
    if necrotic_r:
        crop[blob(pts, centre_ras, necrotic_r, np.random.default_rng(seed + 2), 0.1)] = necrotic


#: World position of the centre of the BraTS grid; cohort lesions are placed by offsets (mm) from it.
BRATS_CENTRE = BRATS_AFFINE[:3, :3] @ ((np.asarray(BRATS_SHAPE) - 1) / 2.0) + BRATS_AFFINE[:3, 3]

#: The demo cohort: (subject, session, scheme, lesions as (offset from the grid centre in mm, core r, edema r,
#: necrotic r)), or "postop".
COHORT = [
    ("01", "01", "brats-mets-2023", [((-30, 20, 15), 17, 30, 9)]),
    ("02", "01", "brats-mets-2023", [((25, 30, 20), 6, 14, 0), ((38, 25, 22), 4, 10, 0), ((-25, -50, -35), 5, 11, 0)]),
    (
        "03",
        "01",
        "brats-mets-2023",
        [
            ((x, y, z), r, 2.2 * r, 0)
            for (x, y, z, r) in [
                (-50, 50, 0, 5),
                (-20, 60, 30, 3),
                (10, 55, 40, 4),
                (45, 40, 10, 6),
                (-35, 0, 35, 3),
                (0, 10, 0, 4),
                (30, -20, 30, 2.5),
                (-10, -40, -20, 5),
                (50, 0, -10, 3),
                (-55, 20, 20, 2.5),
                (20, 20, 45, 3.5),
                (-25, -20, 15, 4),
            ]
        ],
    ),
    ("04", "01", "brats-mets-2023", []),
    ("05", "02", "brats-mets-2023", "postop"),
    ("06", "01", "brats-2021", [((20, 40, 5), 12, 24, 5), ((-30, -30, -15), 7, 15, 0)]),
]


#: Longitudinal demo grids: the BraTS grid, and an anisotropic one (1 x 1 x 2.5 mm, LPS-stored) on the same
#: centre with another shape.
ANISO_SHAPE = (220, 230, 62)
ANISO_AFFINE = affine_from(np.diag([-1.0, -1.0, 2.5]), BRATS_CENTRE, ANISO_SHAPE)

#: The longitudinal demo: (subject, session, date, grid, head shift in x (mm), treatment after the scan,
#: lesions as (offset from the grid centre in mm, core r)). Answers (README, Follow-up): sub-10 shrinks (PR),
#: regrows +24 % with every target under 5 mm (SD), then past its nadir (PD); sub-11's lesion splits, a small
#: one resolves and returns, a new one appears, and its second scan is shifted 6 mm (corrected by the
#: transform); sub-12's two lesions merge (NE: nothing measurable at baseline, 9 + 9 mm -> 19 mm no progression).
LONGITUDINAL = [
    ("10", "01", "2024-01-10", "brats", 0, "srs", [((-30, 20, 15), 9), ((25, 30, 20), 6)]),
    ("10", "02", "2024-03-20", "aniso", 0, "", [((-30, 20, 15), 5), ((25, 30, 20), 3.5)]),
    ("10", "03", "2024-06-01", "brats", 0, "", [((-30, 20, 15), 5.9), ((25, 30, 20), 4.3)]),
    ("10", "04", "2024-08-15", "brats", 0, "", [((-30, 20, 15), 9.5), ((25, 30, 20), 4.5)]),
    ("11", "01", "2024-02-01", "brats", 0, "wbrt", [((20, 40, 5), 8), ((-30, -30, -15), 3)]),
    ("11", "02", "2024-04-01", "brats", 6, "", [((14, 40, 5), 4), ((26, 40, 5), 4)]),
    (
        "11",
        "03",
        "2024-06-01",
        "aniso",
        0,
        "",
        [((14, 40, 5), 4), ((26, 40, 5), 4), ((-30, -30, -15), 3), ((-20, 50, 30), 4)],
    ),
    ("12", "01", "2024-01-15", "brats", 0, "", [((6, -20, 30), 4), ((20, -20, 30), 4)]),
    ("12", "02", "2024-03-15", "brats", 0, "", [((13, -20, 30), 9)]),
]


#: Model predictions of two demo studies (the studies sheet's `prediction` column): sub-02's misses its
#: cerebellar lesion and invents one; sub-03's are the same twelve lesions drawn with other shapes and sizes.
PREDICTIONS = {
    "02": [((25, 30, 20), 6.5, 14), ((38, 25, 22), 4, 10), ((-40, 10, 30), 4, 8)],
    "03": [
        ((x, y, z), r * 1.1, 2.2 * r)
        for (x, y, z), r in [
            ((-50, 50, 0), 5),
            ((-20, 60, 30), 3),
            ((10, 55, 40), 4),
            ((45, 40, 10), 6),
            ((-35, 0, 35), 3),
            ((0, 10, 0), 4),
            ((30, -20, 30), 2.5),
            ((-10, -40, -20), 5),
            ((50, 0, -10), 3),
            ((-55, 20, 20), 2.5),
            ((20, 20, 45), 3.5),
            ((-25, -20, 15), 4),
        ]
    ],
}


def predictions(out: Path) -> None:
    """Write the demo's model predictions, on the BraTS grid."""
    for subject, lesions in PREDICTIONS.items():
        rng = np.random.default_rng(int(subject) * 1000)
        labels = np.zeros(BRATS_SHAPE, np.uint8)
        for offset, core_r, edema_r in lesions:
            paint(labels, offset, core_r, rng, edema_r=edema_r)
        save(out / f"sub-{subject}_ses-01_desc-model_pred.nii.gz", labels, BRATS_AFFINE)


def longitudinal(out: Path) -> None:
    """Write the longitudinal demo (listed in test_data/cohort/studies.tsv with dates) and the transform of its shifted
    scan: that session's world (mm, RAS) to the baseline's."""
    grids = {"brats": (BRATS_AFFINE, BRATS_SHAPE), "aniso": (ANISO_AFFINE, ANISO_SHAPE)}
    for subject, session, _, grid, shift, _, lesions in LONGITUDINAL:
        affine, shape = grids[grid]
        rng = np.random.default_rng(int(subject) * 100 + int(session))
        labels = np.zeros(shape, np.uint8)
        for offset, core_r in lesions:
            paint(labels, (offset[0] + shift, *offset[1:]), core_r, rng, affine=affine)
        save(out / f"sub-{subject}_ses-{session}_dseg.nii.gz", labels, affine)
        save_image(out / f"sub-{subject}_ses-{session}_{IMAGE}", t1c_like(labels, affine, "", shift), affine)
        if shift:
            back = np.eye(4)
            back[0, 3] = -shift
            np.savetxt(out / f"sub-{subject}_ses-{session}_transform.txt", back, fmt="%g")


def toy_parcellation() -> np.ndarray:
    """An aseg-labelled toy brain on the BraTS grid, the demo cohort's anatomical reference: cerebral cortex
    (3/42), cerebellum (8/47), brainstem (16), 4th ventricle (15) and precentral gyri (1024/2024).
    Shapes are ellipsoids and boxes around the grid centre (mm offsets, RAS: +x is the patient's right)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in BRATS_SHAPE], indexing="ij"), axis=-1)
    x, y, z = np.moveaxis(grid @ BRATS_AFFINE[:3, :3].T + BRATS_AFFINE[:3, 3] - BRATS_CENTRE, -1, 0)
    inside = lambda c, r: ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1  # noqa: E731
    brain = inside((0, 0, 0), (70, 85, 60))
    aseg = np.where(brain, np.where(x < 0, 3, 42), 0)
    aseg[brain & (y > 5) & (y < 15) & (z > 20) & (x < 0)] = 1024
    aseg[brain & (y > 5) & (y < 15) & (z > 20) & (x >= 0)] = 2024
    cerebellum = brain & inside((0, -50, -35), (50, 25, 22))
    aseg[cerebellum] = np.where(x[cerebellum] < 0, 8, 47)
    aseg[brain & ((x / 10) ** 2 + ((y + 12) / 10) ** 2 <= 1) & (z < -5)] = 16
    aseg[(np.abs(x) < 4) & (y > -28) & (y < -23) & (z > -35) & (z < -25)] = 15
    return aseg.astype(np.int16)


#: Each demo study's synthetic contrast-enhanced T1-like image (the studies sheet's `subject_image`).
IMAGE = "ce-gadolinium_T1w.nii.gz"

#: The demo's studies sheet (config/demo.yaml names it): the cohort, its follow-ups and its two predictions.
STUDIES_TSV = """subject\tsession\tsegmentation\tlabel_scheme\tparcellation\tdate\ttransform\ttreatment\tprediction\tsubject_image
01\t01\tsub-01_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t\t\t\t\tsub-01_ses-01_ce-gadolinium_T1w.nii.gz
02\t01\tsub-02_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t\t\t\tsub-02_ses-01_desc-model_pred.nii.gz\tsub-02_ses-01_ce-gadolinium_T1w.nii.gz
03\t01\tsub-03_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t\t\t\tsub-03_ses-01_desc-model_pred.nii.gz\tsub-03_ses-01_ce-gadolinium_T1w.nii.gz
04\t01\tsub-04_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t\t\t\t\tsub-04_ses-01_ce-gadolinium_T1w.nii.gz
05\t02\tsub-05_ses-02_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t\t\t\t\tsub-05_ses-02_ce-gadolinium_T1w.nii.gz
06\t01\tsub-06_ses-01_dseg.nii.gz\tbrats-2021\ttoy_aseg.nii.gz\t\t\t\t\tsub-06_ses-01_ce-gadolinium_T1w.nii.gz
10\t01\tsub-10_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-01-10\t\tsrs\t\tsub-10_ses-01_ce-gadolinium_T1w.nii.gz
10\t02\tsub-10_ses-02_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-03-20\t\t\t\tsub-10_ses-02_ce-gadolinium_T1w.nii.gz
10\t03\tsub-10_ses-03_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-06-01\t\t\t\tsub-10_ses-03_ce-gadolinium_T1w.nii.gz
10\t04\tsub-10_ses-04_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-08-15\t\t\t\tsub-10_ses-04_ce-gadolinium_T1w.nii.gz
11\t01\tsub-11_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-02-01\t\twbrt\t\tsub-11_ses-01_ce-gadolinium_T1w.nii.gz
11\t02\tsub-11_ses-02_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-04-01\tsub-11_ses-02_transform.txt\t\t\tsub-11_ses-02_ce-gadolinium_T1w.nii.gz
11\t03\tsub-11_ses-03_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-06-01\t\t\t\tsub-11_ses-03_ce-gadolinium_T1w.nii.gz
12\t01\tsub-12_ses-01_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-01-15\t\t\t\tsub-12_ses-01_ce-gadolinium_T1w.nii.gz
12\t02\tsub-12_ses-02_dseg.nii.gz\tbrats-mets-2023\ttoy_aseg.nii.gz\t2024-03-15\t\t\t\tsub-12_ses-02_ce-gadolinium_T1w.nii.gz
"""

#: Synthetic clinical rows of the demo cohort, for the indication module (empty cell = unknown).
CLINICAL_TSV = """\
subject\tsession\tage_years\tkps\textracranial_disease\textracranial_metastases\tprimary_controlled\tprimary_histology\tmolecular_markers\tsymptomatic\tmass_effect\thydrocephalus\trefractory_epilepsy\tcns_diagnosis_confirmed\tdetected_on_screening\tsystemic_therapy_planned\tsystemic_options\trefractory_to_other_treatments\tpost_operative\tresected_lesion_count\tlocal_recurrence_after_resection\trecurrence_after_srs\trecurrence_after_wbrt\tcystic\themorrhage\trapid_growth\tcns_progression\themoglobin_g_dl\tsrs_unsuitable\tanticipated_poor_rt_response\tgross_total_resection
01\t01\t57\t70\tcontrolled\tno\tyes\tmelanoma\tBRAF\tyes\tyes\tno\tno\tyes\tno\tno\teffective\tno\tno\t0\tno\tno\tno\tno\tno\tno\tno\t\tno\tno\t
02\t01\t58\t80\tcontrolled\tno\tyes\tnsclc_adenocarcinoma\tEGFR\tno\t\tno\tno\tyes\tyes\tyes\teffective\tno\tno\t0\tno\tno\tno\tno\tno\tno\tno\t\tno\tno\t
03\t01\t66\t60\tprogressive\tyes\t\tsclc\tnone\tyes\t\tno\tno\tyes\tno\tno\tlimited\tno\tno\t0\tno\tno\tno\tno\tno\tno\tyes\t\tno\tno\t
04\t01\t49\t90\tnone\tno\tyes\tbreast_her2\tHER2\tno\tno\tno\tno\tyes\tyes\tyes\teffective\tno\tno\t0\tno\tno\tno\tno\tno\tno\tno\t\tno\tno\t
05\t02\t61\t80\tcontrolled\tyes\tyes\trenal\tnone\tno\t\tno\tno\tyes\tno\tno\teffective\tno\tyes\t1\tno\tno\tno\tno\tno\tno\tno\t12.1\tno\tno\t
06\t01\t72\t\t\tyes\t\tunknown\t\tyes\t\tyes\t\tno\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t
"""


#: Contrast-enhanced T1-like intensities of the demo's synthetic images: background, scalp fat, skull, CSF, grey
#: and white matter, and the label map's regions (edema dark, enhancing rim bright, necrosis and cavity darker).
T1C = {"scalp": 180, "skull": 25, "csf": 40, "grey": 110, "white": 145, "edema": 100, "enhancing": 240,
       "necrotic": 60, "cavity": 38}  # fmt: skip


def t1c_like(labels: np.ndarray, affine: np.ndarray, scheme: str, head_shift_mm: float = 0.0) -> np.ndarray:
    """A synthetic contrast-enhanced T1-like image of a demo study on its own grid, so that the default run's
    pictures show anatomy: a head (scalp, skull, CSF) around the toy parcellation's brain ellipsoid, grey matter
    over white matter, two lateral ventricles and the study's lesions, in 8 bits with sharp edges (which compress
    to about 0.12 MB). Not a simulation of MRI: a background a reader can place the lesions on."""
    x, y, z = np.moveaxis(world_grid(labels.shape, affine) - BRATS_CENTRE - [head_shift_mm, 0, 0], -1, 0)

    def radius(r, c=(0, 0, 0)) -> np.ndarray:  # of the ellipsoid of semi-axes r around c: 1 on its surface
        return np.sqrt(((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2)

    head, brain = radius((80, 97, 72)), radius((70, 85, 60))
    image = np.zeros(labels.shape, np.uint8)
    image[head <= 1] = T1C["scalp"]
    image[radius((77, 94, 69)) <= 1] = T1C["skull"]
    image[radius((73, 89, 64)) <= 1] = T1C["csf"]
    image[brain <= 1] = T1C["grey"]
    image[radius((64, 79, 54)) <= 1] = T1C["white"]
    for side in (-1, 1):
        image[radius((5, 20, 7), (side * 9, 8, 12)) <= 1] = T1C["csf"]
    enhancing, necrotic, cavity = (4, 1, None) if scheme == "brats-2021" else (3, 1, 4)
    for label, role in ((2, "edema"), (enhancing, "enhancing"), (necrotic, "necrotic"), (cavity, "cavity")):
        if label is not None:
            image[labels == label] = T1C[role]
    return image


def save_image(path: Path, image: np.ndarray, affine: np.ndarray) -> None:
    """An intensity image as gzip level 9 without a timestamp (a third of nibabel's default size)."""
    import gzip

    img = nib.Nifti1Image(image, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    path.write_bytes(gzip.compress(img.to_bytes(), compresslevel=9, mtime=0))


def cohort(out: Path) -> None:
    """Write the demo cohort on the BraTS grid (test_data/cohort/studies.tsv lists it), its toy parcellation and its
    synthetic clinical table."""
    save(out / "toy_aseg.nii.gz", toy_parcellation(), BRATS_AFFINE)
    (out / "clinical.tsv").write_text(CLINICAL_TSV)
    (out / "studies.tsv").write_text(STUDIES_TSV)
    for subject, session, scheme, lesions in COHORT:
        rng = np.random.default_rng(int(subject) * 100 + int(session))
        labels = np.zeros(BRATS_SHAPE, np.uint8)
        if lesions == "postop":
            paint(labels, (-20, 20, 25), 13, rng, edema_r=19)  # the resected lesion's bed ...
            labels[labels == 3] = 4  # ... is now a resection cavity with edema around it
            paint(labels, (30, -10, 30), 5, rng, edema_r=10)  # and a new small lesion elsewhere
        else:
            for centre, core_r, edema_r, necrotic_r in lesions:
                paint(labels, centre, core_r, rng, edema_r=edema_r, necrotic_r=necrotic_r, scheme=scheme)
        save(out / f"sub-{subject}_ses-{session}_dseg.nii.gz", labels, BRATS_AFFINE)
        save_image(out / f"sub-{subject}_ses-{session}_{IMAGE}", t1c_like(labels, BRATS_AFFINE, scheme), BRATS_AFFINE)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else HERE
    cases = phantoms(out / "phantoms")
    (out / "phantoms" / "expected.json").write_text(json.dumps(cases, indent=2, sort_keys=True) + "\n")
    cohort(out / "cohort")
    longitudinal(out / "cohort")
    predictions(out / "cohort")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
