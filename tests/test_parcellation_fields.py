"""The fields measured on a subject's parcellation, on a box phantom whose answers are known exactly: ventricle
volumes, Evans index, midline shift of a displaced septum, per-lesion distances to the brainstem, ventricles and
optic chiasm, and the post-operative hydrocephalus risk factors of a posterior-fossa lesion."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainmets.io import load_segmentation
from brainmets.location.anatomy import measure_anatomy
from brainmets.location.parameters import LocationParameters
from brainmets.location.references import ReferenceChoice, build_reference
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.columns import PF_HYDROCEPHALUS_RISK_FACTORS
from brainmets.study.features import measure_label_map

SHAPE = (101, 131, 81)
AFFINE = np.array([[1.0, 0, 0, -50], [0, 1, 0, -65], [0, 0, 1, -40], [0, 0, 0, 1]])  # world = index - centre


def paint(labels: np.ndarray, value: int, x, y, z, affine: np.ndarray = AFFINE) -> int:
    """Set the voxels whose centres lie in the world box [x0, x1] x [y0, y1] x [z0, z1] (mm); their count."""
    world = np.indices(labels.shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3]
    inside = np.all(
        [(world[:, a] >= lo - 1e-6) & (world[:, a] <= hi + 1e-6) for a, (lo, hi) in enumerate((x, y, z))], axis=0
    )
    labels.reshape(-1)[inside] = value
    return int(inside.sum())


def phantom(septum_shift: int = 0, affine: np.ndarray = AFFINE) -> tuple[np.ndarray, dict[str, int]]:
    """Hemispheres (3 | 42) split by a 3 mm fissure at x = 0, CSF (24) beside them, cerebellum (8 | 47) behind and
    below, lateral ventricles (4 | 43) facing across a 3 mm septum and a third ventricle (14) both moved by
    ``septum_shift`` mm to the right, brainstem (16), 4th ventricle (15) and optic chiasm (85). Voxel counts."""
    labels = np.zeros(SHAPE, np.int16)
    paint(labels, 24, (-45, 45), (-60, 60), (-30, 30), affine)
    paint(labels, 3, (-40, -2), (-60, 60), (-30, 30), affine)
    paint(labels, 42, (2, 40), (-60, 60), (-30, 30), affine)
    paint(labels, 8, (-40, -1), (-60, -31), (-30, -15), affine)
    paint(labels, 47, (0, 40), (-60, -31), (-30, -15), affine)
    s = septum_shift
    counts = {
        "left": paint(labels, 4, (-16 + s, -2 + s), (0, 30), (0, 10), affine),
        "right": paint(labels, 43, (2 + s, 16 + s), (0, 30), (0, 10), affine),
        "third": paint(labels, 14, (-2 + s, 2 + s), (-10, -1), (-10, 0), affine),
        "brainstem": paint(labels, 16, (-5, 5), (-30, -20), (-30, -20), affine),
        "fourth": paint(labels, 15, (-3, 3), (-45, -40), (-25, -20), affine),
        "chiasm": paint(labels, 85, (-5, 5), (20, 22), (-25, -24), affine),
    }
    return labels, counts


def test_volumes_evans_index_and_a_straight_midline():
    labels, counts = phantom()
    anatomy = measure_anatomy(labels, AFFINE, LocationParameters())
    study = anatomy.study
    assert study["lateral_ventricle_volume_left_ml"] == pytest.approx(counts["left"] / 1000)
    assert study["lateral_ventricle_volume_right_ml"] == pytest.approx(counts["right"] / 1000)
    assert study["third_ventricle_volume_ml"] == pytest.approx(counts["third"] / 1000)
    assert study["fourth_ventricle_volume_ml"] == pytest.approx(counts["fourth"] / 1000)
    # frontal horns from x = -16 to 16 (voxel centres), cranium (CSF included) from -45 to 45
    assert study["evans_index"] == pytest.approx(32 / 90)
    assert study["midline_shift_mm"] == pytest.approx(0.0, abs=1e-9) and study["midline_shift_towards"] is None
    np.testing.assert_allclose(anatomy.plane.normal, [1, 0, 0], atol=1e-9)
    assert anatomy.plane.signed_distance(np.array([[0.0, 0, 0]]))[0] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("shift", [3, -6])
def test_a_displaced_septum_reads_its_displacement(shift):
    labels, _ = phantom(septum_shift=shift)
    study = measure_anatomy(labels, AFFINE, LocationParameters()).study
    assert study["midline_shift_mm"] == pytest.approx(abs(shift), abs=1e-9)
    assert study["midline_shift_towards"] == ("right" if shift > 0 else "left")


def test_the_same_phantom_on_a_flipped_permuted_grid():
    """Axes permuted and two of them reversed: the world, and every value, stay the same."""
    labels, _ = phantom(septum_shift=4)
    flipped = np.flip(labels, (0, 2)).transpose(2, 0, 1)
    to_old = np.zeros((4, 4))
    to_old[[2, 0, 1], [0, 1, 2]] = 1  # new index (a, b, c) -> old (b, c, a), then flips
    flip = np.diag([-1.0, 1, -1, 1])
    flip[[0, 2], 3] = [SHAPE[0] - 1, SHAPE[2] - 1]
    to_old[3, 3] = 1
    affine = AFFINE @ flip @ to_old
    study = measure_anatomy(flipped, affine, LocationParameters()).study
    reference = measure_anatomy(labels, AFFINE, LocationParameters()).study
    assert study == pytest.approx(reference)


def test_null_with_reasons_when_labels_are_missing():
    labels, _ = phantom()
    labels[np.isin(labels, (4, 43, 14))] = 3
    study = measure_anatomy(labels, AFFINE, LocationParameters()).study
    assert study["midline_shift_mm"] is None and "septum" in study["midline_shift_reason"]
    assert study["evans_index"] is None and study["lateral_ventricle_volume_left_ml"] is None
    assert study["fourth_ventricle_volume_ml"] is not None
    assert measure_anatomy(np.zeros((5, 5, 5), np.int16), AFFINE, LocationParameters()).study["midline_shift_reason"]


# ---- per lesion, through measure_label_map ----------------------------------------------------------------


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Lesions (enhancing, label 3 of BraTS-METS 2023) placed at known distances from the phantom's structures."""
    folder = tmp_path_factory.mktemp("parcellation")
    labels, _ = phantom()
    parcellation = folder / "aseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, AFFINE), parcellation)
    seg = np.zeros(SHAPE, np.uint8)
    paint(seg, 3, (-5, 5), (-19, -15), (-30, -21))  # face-adjacent to the brainstem (y = -20): 1 mm
    paint(seg, 3, (5, 9), (-45, -40), (-25, -20))  # in the right cerebellum, 2 mm beside the 4th ventricle
    paint(seg, 2, (5, 9), (-39, -37), (-25, -20))  # its edema
    paint(seg, 3, (-5, 5), (25, 28), (-25, -24))  # 3 mm in front of the optic chiasm
    paint(seg, 3, (-30, -26), (30, 33), (20, 23))  # left frontal, far from everything
    path = folder / "seg.nii.gz"
    nib.save(nib.Nifti1Image(seg, AFFINE), path)
    label_map = load_segmentation(path)
    reference = build_reference(ReferenceChoice(parcellation=str(parcellation)), label_map)
    params = FeatureParameters.from_config({"min_lesion_volume_mm3": 0})
    return measure_label_map(label_map, params, reference=reference, location=LocationParameters())


def _lesion(measured, centroid_y):
    return next(r for r in measured.lesions if abs(r["centroid_y_mm"] - centroid_y) < 1)


def test_distances_between_voxel_centres(measured):
    brainstem, cerebellar = _lesion(measured, -17), _lesion(measured, -42.5)
    chiasm, frontal = _lesion(measured, 26.5), _lesion(measured, 31.5)
    assert brainstem["distance_to_brainstem_mm"] == pytest.approx(1.0)
    assert brainstem["fourth_ventricle_contact"] is False
    assert cerebellar["distance_to_brainstem_mm"] == pytest.approx(10.0)  # (5, -40, z) to (5, -30, z)
    assert cerebellar["distance_to_fourth_ventricle_mm"] == pytest.approx(2.0)
    assert cerebellar["fourth_ventricle_contact"] is False  # 2 mm > 1 mm
    assert chiasm["distance_to_optic_chiasm_mm"] == pytest.approx(3.0) and chiasm["near_optic_chiasm"] is True
    assert frontal["near_optic_chiasm"] is False and frontal["hemisphere"] == "left"
    assert cerebellar["hemisphere"] == "right" and cerebellar["location"] == "infratentorial"
    assert all(r["third_ventricle_contact"] is False for r in measured.lesions)


def test_posterior_fossa_hydrocephalus_risk_factors(measured):
    study = measured.study
    cerebellar = _lesion(measured, -42.5)
    assert study["fourth_ventricle_to_tumour_volume_ratio"] == pytest.approx(
        study["fourth_ventricle_volume_ml"] / cerebellar["volume_ml"]
    )
    assert study["edema_to_tumour_volume_ratio"] == pytest.approx(
        cerebellar["edema_volume_ml"] / cerebellar["volume_ml"]
    )
    factors = study["pf_postoperative_hydrocephalus_risk_factors"]
    assert set(factors) <= set(PF_HYDROCEPHALUS_RISK_FACTORS)
    assert "multiple_metastases" in factors and "fourth_ventricle_contact" not in factors
    assert ("edema_to_tumour_volume_ratio_low" in factors) == (study["edema_to_tumour_volume_ratio"] <= 0.85)
    assert measured.document["provenance"]["anatomy"]["midline_plane"]["normal_ras"] == pytest.approx([1, 0, 0])


def test_without_a_parcellation_the_keys_are_null_with_the_reason(tmp_path):
    seg = np.zeros(SHAPE, np.uint8)
    paint(seg, 3, (-5, 5), (-19, -15), (-30, -21))
    nib.save(nib.Nifti1Image(seg, AFFINE), tmp_path / "seg.nii.gz")
    label_map = load_segmentation(tmp_path / "seg.nii.gz")
    result = measure_label_map(label_map, FeatureParameters.from_config({"min_lesion_volume_mm3": 0}))
    study, (row,) = result.study, result.lesions
    assert study["midline_shift_reason"] == "no subject parcellation given"
    for key in (
        "midline_shift_mm",
        "evans_index",
        "fourth_ventricle_volume_ml",
        "pf_postoperative_hydrocephalus_risk_factors",
    ):
        assert key in study and study[key] is None
    for key in ("distance_to_brainstem_mm", "fourth_ventricle_contact", "near_optic_chiasm", "hemisphere"):
        assert key in row and row[key] is None
    assert any("no subject parcellation given" in note for note in study["location_notes"])
