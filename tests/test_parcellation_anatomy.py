"""Validation of the anatomy measured on a subject's parcellation (brainmets.location.anatomy) on a real SynthSeg
label map: deformed by known smooth lateral displacements (the structure at the displacement's centre moves by
the stated amount: the midline shift is recovered within 1.5 mm), rotated without deformation (the same values
as unrotated), resampled onto another grid (the same values), with its ventricle or hemisphere labels removed
(null with a reason), and with a flipped header (the same values).

The map (256^3, LIA, 1 mm, aseg labels) puts the subject's right at world +x (the right hemisphere, 41/42, lies
there); its own midline shift is under 1 mm. Every deformation is made once per module (about 2 s each).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainmets.io import load_segmentation
from brainmets.location.anatomy import ParcellationAnatomy, measure_anatomy
from brainmets.location.parameters import LocationParameters

from .conftest import SHARED
from .deformations import lateral_bulge, resample, rotated_affine, rotation_matrix

SYNTHSEG = SHARED / "data" / "real" / "synthseg" / "training_seg_01.nii.gz"
if not SYNTHSEG.is_file():
    pytest.skip(f"{SYNTHSEG} is not present (../shared)", allow_module_level=True)

pytestmark = [pytest.mark.shared, pytest.mark.slow]

PARAMS = LocationParameters()
VOLUMES = {
    "lateral_ventricle_volume_left_ml": (4, 5),
    "lateral_ventricle_volume_right_ml": (43, 44),
    "third_ventricle_volume_ml": (14,),
    "fourth_ventricle_volume_ml": (15,),
}
SHIFT_TOLERANCE_MM = 1.5  # a known displacement recovered within this
STRAIGHT_MM = 2.5  # the largest shift read on an undisplaced head (as it is, rotated, displaced along its axis)


def world_points(labels: np.ndarray, affine: np.ndarray, values) -> np.ndarray:
    """World coordinates of the centres of the voxels holding any of ``values``."""
    return np.argwhere(np.isin(labels, values)) @ affine[:3, :3].T + affine[:3, 3]


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between two vectors (degrees, 0-180)."""
    cosine = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


@pytest.fixture(scope="module")
def synthseg() -> tuple[np.ndarray, np.ndarray]:
    label_map = load_segmentation(SYNTHSEG)
    return label_map.labels, label_map.affine


@pytest.fixture(scope="module")
def base(synthseg) -> ParcellationAnatomy:
    return measure_anatomy(*synthseg, PARAMS)


@pytest.fixture(scope="module")
def third_ventricle(synthseg) -> np.ndarray:
    """The third ventricle's centroid (world mm): the centre of the displacements."""
    return world_points(*synthseg, [14]).mean(axis=0)


def test_the_map_puts_the_subjects_right_at_world_plus_x(synthseg, base):
    """The sign convention the displacement tests rely on, and the plane's normal points to the right."""
    left, right = (world_points(*synthseg, labels).mean(axis=0) for labels in ([2, 3], [41, 42]))
    assert right[0] - left[0] > 40
    assert base.plane is not None
    assert base.plane.normal @ (right - left) > 0
    assert angle_degrees(base.plane.normal, np.array([1.0, 0.0, 0.0])) < 10
    assert np.linalg.norm(base.plane.normal) == pytest.approx(1.0, abs=1e-9)


def test_ventricle_volumes_are_voxel_counts_times_voxel_volume(synthseg, base):
    labels, affine = synthseg
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    for key, values in VOLUMES.items():
        count = int(np.isin(labels, values).sum())
        assert count > 0, key
        assert base.study[key] == pytest.approx(count * voxel_ml, rel=1e-12), key


def test_undeformed_map_has_no_shift_and_a_normal_evans_index(base):
    study = base.study
    assert study["midline_shift_mm"] is not None and 0 <= study["midline_shift_mm"] <= STRAIGHT_MM
    assert study["midline_shift_reason"] is None
    if study["midline_shift_mm"] < PARAMS.midline_shift_direction_min_mm:
        assert study["midline_shift_towards"] is None
    assert 0.2 <= study["evans_index"] <= 0.4
    assert base.notes == []


# ---- known lateral displacements ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(6.0, 20.0), (10.0, 25.0), (-8.0, 25.0), (4.0, 15.0)], ids=str)
def bulged(request, synthseg, third_ventricle) -> tuple[float, ParcellationAnatomy]:
    """The map displaced along world +x (the subject's right) by ``amount`` mm at the third ventricle's
    centroid, a Gaussian of ``sigma`` mm around it."""
    amount, sigma = request.param
    labels, affine = synthseg
    warped = resample(labels, affine, affine, labels.shape, lateral_bulge(third_ventricle, amount, sigma))
    return amount, measure_anatomy(warped, affine, PARAMS)


def test_a_known_lateral_displacement_is_recovered(bulged):
    amount, anatomy = bulged
    study = anatomy.study
    assert study["midline_shift_mm"] is not None, study["midline_shift_reason"]
    assert abs(study["midline_shift_mm"] - abs(amount)) <= SHIFT_TOLERANCE_MM, (amount, study["midline_shift_mm"])
    assert study["midline_shift_towards"] == ("right" if amount > 0 else "left")


def test_a_displacement_at_the_centre_leaves_the_midline_plane(bulged, base):
    """The plane is placed at the poles, which a displacement of the ventricles does not reach."""
    _, anatomy = bulged
    assert angle_degrees(anatomy.plane.normal, base.plane.normal) < 2.0
    assert abs(base.plane.signed_distance(anatomy.plane.point)) < 1.0


def test_a_displacement_along_the_superior_axis_is_no_lateral_shift(synthseg, third_ventricle):
    labels, affine = synthseg
    warp = lateral_bulge(third_ventricle, 10.0, 25.0, direction=(0.0, 0.0, 1.0))
    study = measure_anatomy(resample(labels, affine, affine, labels.shape, warp), affine, PARAMS).study
    assert study["midline_shift_mm"] is not None and study["midline_shift_mm"] <= STRAIGHT_MM, study


# ---- rotations ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(0.0, 0.0, 15.0), (10.0, 0.0, 0.0), (8.0, -10.0, 20.0)], ids=str)
def rotated(request, synthseg) -> tuple[np.ndarray, ParcellationAnatomy]:
    """The head rotated by the given degrees about world x, y, z (about the grid's centre), on the same grid."""
    labels, affine = synthseg
    warped = resample(labels, rotated_affine(affine, labels.shape, request.param), affine, labels.shape)
    return rotation_matrix(request.param), measure_anatomy(warped, affine, PARAMS)


def test_rotation_keeps_the_shift(rotated, base):
    _, anatomy = rotated
    shift = anatomy.study["midline_shift_mm"]
    assert shift is not None and shift <= STRAIGHT_MM, anatomy.study
    assert abs(shift - base.study["midline_shift_mm"]) <= 1.0


def test_rotation_keeps_the_evans_index(rotated, base):
    _, anatomy = rotated
    assert anatomy.study["evans_index"] == pytest.approx(base.study["evans_index"], abs=0.01)


def test_rotation_keeps_the_ventricle_volumes(rotated, base):
    _, anatomy = rotated
    for key in VOLUMES:
        assert anatomy.study[key] == pytest.approx(base.study[key], rel=0.02), key


def test_rotation_turns_the_plane_with_the_head(rotated, base):
    rotation, anatomy = rotated
    assert angle_degrees(rotation.T @ anatomy.plane.normal, base.plane.normal) < 2.0


def test_a_rotated_and_displaced_head(synthseg, third_ventricle):
    """Rotated by (8, -10, 20) degrees, then displaced by 8 mm along the rotated head's left-right axis at its
    rotated third ventricle: the shift is still recovered."""
    labels, affine = synthseg
    degrees, amount = (8.0, -10.0, 20.0), 8.0
    rotation = rotation_matrix(degrees)
    grid_centre = affine[:3, :3] @ ((np.asarray(labels.shape) - 1) / 2) + affine[:3, 3]
    centre = rotation @ (third_ventricle - grid_centre) + grid_centre
    warp = lateral_bulge(centre, amount, 25.0, direction=rotation @ np.array([1.0, 0.0, 0.0]))
    warped = resample(labels, rotated_affine(affine, labels.shape, degrees), affine, labels.shape, warp)
    study = measure_anatomy(warped, affine, PARAMS).study
    assert study["midline_shift_mm"] is not None, study["midline_shift_reason"]
    assert abs(study["midline_shift_mm"] - amount) <= SHIFT_TOLERANCE_MM, study["midline_shift_mm"]
    assert study["midline_shift_towards"] == "right"


# ---- another grid, a flipped header ------------------------------------------------------------------------


def test_another_grid_gives_the_same_values(synthseg, third_ventricle, base):
    """An anisotropic 0.8 x 1.2 x 1.0 mm grid with its first two axes swapped (i along world y, j along x). The
    volumes are the voxel counts on that grid; they agree with the original's within 3 % for the lateral
    ventricles and 5 % for the third and fourth (about 2 mL: nearest-neighbour resampling alone moves their
    counts by up to 3 % with the grid's sub-voxel offset)."""
    labels, affine = synthseg
    other = np.eye(4)
    other[:3, :3] = np.eye(3)[[1, 0, 2]] @ np.diag([0.8, 1.2, 1.0])
    shape = (220, 200, 230)
    other[:3, 3] = third_ventricle - other[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    moved = resample(labels, affine, other, shape)
    study = measure_anatomy(moved, other, PARAMS).study
    assert study["midline_shift_mm"] == pytest.approx(base.study["midline_shift_mm"], abs=1.0)
    assert study["evans_index"] == pytest.approx(base.study["evans_index"], abs=0.01)
    voxel_ml = 0.8 * 1.2 * 1.0 / 1000.0
    for key, values in VOLUMES.items():
        assert study[key] == pytest.approx(np.isin(moved, values).sum() * voxel_ml, rel=1e-12), key
        tolerance = 0.03 if key.startswith("lateral") else 0.05
        assert study[key] == pytest.approx(base.study[key], rel=tolerance), key


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_flipped_header_gives_the_same_values(synthseg, base, axis):
    """The same voxels with one axis reversed (a view, negative strides) and the affine adjusted so that every
    voxel keeps its world position: volumes identical; the rest equal to far below a voxel (the head's frame
    is first estimated from every second voxel, and a flip of an even-length axis samples the other half)."""
    labels, affine = synthseg
    flip = np.eye(4)
    flip[axis, axis], flip[axis, 3] = -1.0, labels.shape[axis] - 1
    anatomy = measure_anatomy(np.flip(labels, axis), affine @ flip, PARAMS)
    for key, value in base.study.items():
        if key.endswith("_ml"):
            assert anatomy.study[key] == pytest.approx(value, rel=1e-12), key
        elif isinstance(value, float):
            assert anatomy.study[key] == pytest.approx(value, abs=0.01), key
        else:
            assert anatomy.study[key] == value, key
    np.testing.assert_allclose(anatomy.plane.normal, base.plane.normal, atol=1e-3)
    assert abs(base.plane.signed_distance(anatomy.plane.point[None])[0]) < 0.01  # the same plane


# ---- missing labels ----------------------------------------------------------------------------------------


def test_without_ventricles_the_shift_is_null_with_a_reason(synthseg, base):
    labels, affine = synthseg
    anatomy = measure_anatomy(np.where(np.isin(labels, [4, 5, 43, 44, 14]), 0, labels), affine, PARAMS)
    study = anatomy.study
    assert study["midline_shift_mm"] is None and study["midline_shift_towards"] is None
    reason = study["midline_shift_reason"]
    assert isinstance(reason, str) and reason
    assert "septum" in reason or "third ventricle" in reason
    assert study["evans_index"] is None
    assert study["lateral_ventricle_volume_left_ml"] is None and study["lateral_ventricle_volume_right_ml"] is None
    assert study["third_ventricle_volume_ml"] is None
    assert study["fourth_ventricle_volume_ml"] == base.study["fourth_ventricle_volume_ml"]
    assert anatomy.notes  # each null is explained


def test_without_hemispheres_the_shift_is_null_with_a_reason(synthseg, base):
    labels, affine = synthseg
    anatomy = measure_anatomy(np.where(np.isin(labels, [2, 3, 41, 42]), 0, labels), affine, PARAMS)
    study = anatomy.study
    assert study["midline_shift_mm"] is None and study["midline_shift_towards"] is None
    assert "hemisphere" in (study["midline_shift_reason"] or "")
    assert study["evans_index"] is None
    assert anatomy.plane is None
    for key in VOLUMES:  # the ventricles are still measured
        assert study[key] == base.study[key], key
