import math
import re

import numpy as np
import pytest

from brainmets.errors import ConfigError
from brainmets.fields import data_dictionary
from brainmets.io import load_segmentation
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.columns import CAVITY_FIELDS, EDEMA_ONLY_FIELDS, LESION_FIELDS, STUDY_FIELDS
from brainmets.study.features import measure_label_map
from brainmets.study.rows import mark_rano_targets

from .conftest import PHANTOMS, ROOT, ball, features


def _check(where: str, spec: dict, got):
    value = spec["value"]
    if "abs_tol" in spec or "rel_tol" in spec:
        assert got == pytest.approx(value, abs=spec.get("abs_tol", 0), rel=spec.get("rel_tol", 0)), where
    else:
        assert got == value, where


def _phantom_result(case: str, expected: dict):
    params = FeatureParameters.from_config({"label_scheme": expected[case]["scheme"]})
    return measure_label_map(load_segmentation(PHANTOMS / f"{case}.nii.gz"), params)


CASES = sorted(p.name[: -len(".nii.gz")] for p in PHANTOMS.glob("*.nii.gz"))


@pytest.mark.parametrize("case", CASES)
def test_phantom_matches_its_analytic_answers(case, expected):
    answers = expected[case]
    result = _phantom_result(case, expected)
    for key, spec in answers.get("study", {}).items():
        _check(f"{case}: study.{key}", spec, result.study[key])
    assert len(result.lesions) == len(answers["lesions"])
    for i, lesion in enumerate(answers["lesions"]):
        for key, spec in lesion.items():
            _check(f"{case}: lesion {i + 1} {key}", spec, result.lesions[i][key])
    for i, comp in enumerate(answers.get("edema_only_components", [])):
        for key, spec in comp.items():
            _check(f"{case}: edema-only {i + 1} {key}", spec, result.document["edema_only_components"][i][key])
    assert len(result.document["resection_cavities"]) == len(answers.get("resection_cavities", []))
    for i, cavity in enumerate(answers.get("resection_cavities", [])):
        for key, spec in cavity.items():
            _check(f"{case}: cavity {i + 1} {key}", spec, result.document["resection_cavities"][i][key])


def test_every_phantom_has_answers(expected):
    assert set(CASES) == set(expected)


def test_flipped_and_permuted_phantom_equals_the_original(expected):
    a = _phantom_result("ellipsoid", expected).lesions[0]
    b = _phantom_result("ellipsoid_flipped_permuted", expected).lesions[0]
    for key, value in a.items():
        if key.startswith("bbox_"):
            continue
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        else:
            assert b[key] == value, key


def test_output_keys_are_exactly_the_documented_fields(expected):
    result = _phantom_result("postop", expected)
    assert set(result.document) == {"study", "lesions", "edema_only_components", "resection_cavities", "provenance"}
    assert set(result.study) == {f.name for f in STUDY_FIELDS}
    assert set(result.lesions[0]) == {f.name for f in LESION_FIELDS}
    assert set(result.document["edema_only_components"][0]) == {f.name for f in EDEMA_ONLY_FIELDS}
    assert set(result.document["resection_cavities"][0]) == {f.name for f in CAVITY_FIELDS}


def test_resection_cavities_and_the_enhancing_tissue_in_their_rim():
    labels = np.zeros((40, 30, 30), np.uint8)
    labels[5:15, 5:15, 5:15] = 4  # a 10 mm cube of cavity ...
    labels[15:17, 5:15, 5:15] = 3  # ... with a 2-voxel slab of enhancing tissue on one face
    labels[5:9, 5:9, 17:20] = 3  # a nodule 2 mm from another face (a gap of two voxels)
    labels[30:34, 5:9, 5:9] = 3  # a lesion farther away
    labels[25:27, 20:22, 20:22] = 4  # a second, smaller cavity
    result = features(labels)  # rim: touching, or centres within cavity_rim_mm = 3 mm
    first, second = result.document["resection_cavities"]
    assert result.study["resection_cavity_count"] == 2
    assert first["voxel_count"] == 1000 and second["voxel_count"] == 8
    # the whole slab, and the nodule's first layer (its centres 3 mm from the cavity's, the next at 4 mm)
    assert first["rim_enhancing_volume_ml"] == pytest.approx(0.2 + 0.016)
    slab, nodule = (next(r["lesion_id"] for r in result.lesions if r["voxel_count"] == n) for n in (200, 48))
    assert first["rim_lesion_ids"] == sorted([slab, nodule]) and second["rim_lesion_ids"] == []
    assert second["rim_enhancing_volume_ml"] == 0
    touching = features(labels, cavity_rim_mm=0).document["resection_cavities"][0]
    assert touching["rim_enhancing_volume_ml"] == pytest.approx(0.1) and touching["rim_lesion_ids"] == [slab]
    as_lesion = features(np.where(labels == 4, 3, 0).astype(np.uint8)).lesions  # the same cube as a core
    cube = next(r for r in as_lesion if r["voxel_count"] == 1000)
    for key in ("max_diameter_3d_mm", "axial_longest_diameter_mm", "centroid_x_mm", "bbox_i_min"):
        assert first[key] == pytest.approx(cube[key], rel=1e-12), key
    assert first["location"] is None  # no anatomical reference
    no_enhancing = features(labels, label_scheme={"core": [3], "cavity": [4]})
    assert no_enhancing.document["resection_cavities"][0]["rim_enhancing_volume_ml"] is None
    no_cavity_label = features(labels, label_scheme={"enhancing": [3, 4]})
    assert (
        no_cavity_label.document["resection_cavities"] == [] and no_cavity_label.study["resection_cavity_count"] is None
    )


def test_data_dictionary_is_bids_with_cmixf_units_and_levels():
    dictionary = data_dictionary(LESION_FIELDS)
    assert dictionary["volume_ml"] == {"LongName": "Volume", "Description": LESION_FIELDS[2].description, "Units": "mL"}
    assert dictionary["max_diameter_3d_mm"]["LongName"] == "Maximum diameter 3D"
    assert dictionary["surface_area_mm2"]["Units"] == "mm^2"
    assert "Units" not in dictionary["voxel_count"] and "Units" not in dictionary["bbox_i_min"]  # counts, indices
    assert dictionary["rano_bm_target"]["Levels"] == {"true": "yes", "false": "no"}
    assert set(dictionary["location"]["Levels"]) == {"supratentorial", "infratentorial", "mixed"}
    assert all(entry["Description"] and entry["LongName"] for entry in dictionary.values())
    for name, entry in dictionary.items():
        unit = re.search(r"_(ml|mm|mm2|mm3)$", name)
        if unit:
            assert entry["Units"].lower().replace("^", "") == unit.group(1), name


def test_the_generated_output_field_page_documents_every_output_field():
    """docs/reference/output-fields.md (written by docs/generate.py; tests/test_docs.py fails when it is stale)
    gives each field of the features document with the unit and definition of its data dictionary, in order."""
    page = (ROOT / "docs" / "reference" / "output-fields.md").read_text(encoding="utf-8")
    for fields in (LESION_FIELDS, STUDY_FIELDS, EDEMA_ONLY_FIELDS, CAVITY_FIELDS):
        at = 0
        for name, entry in data_dictionary(fields).items():
            row = f"| `{name}` | {entry.get('Units', '')} | {entry['Description'].replace('|', chr(92) + '|')}"
            at = page.find(row, at)
            assert at >= 0, name


def test_zero_lesions_is_valid_data():
    result = features(np.zeros((10, 10, 10), np.uint8))
    assert result.study["lesion_count"] == 0 and result.lesions == []
    assert result.study["cumulative_tumor_volume_ml"] == 0
    assert result.study["largest_max_diameter_3d_mm"] is None
    assert not result.instances.any()


def test_binary_scheme_reports_edema_as_unknown_not_zero():
    labels = ball((20, 20, 20), (10, 10, 10), 5).astype(np.uint8) * 7
    result = features(labels, label_scheme="binary")
    lesion = result.lesions[0]
    assert lesion["edema_volume_ml"] is None and lesion["edema_ratio"] is None and lesion["edema_index"] is None
    assert lesion["enhancing_volume_ml"] is None
    assert result.study["total_edema_volume_ml"] is None and result.study["edema_ratio"] is None


def test_edema_ratio_and_index():
    labels = np.zeros((30, 30, 30), np.uint8)
    labels[5:25, 5:25, 5:25] = 2
    labels[10:20, 10:20, 10:20] = 3  # core 1000 voxels, edema 7000
    lesion = features(labels).lesions[0]
    assert lesion["edema_ratio"] == pytest.approx(7.0)
    assert lesion["edema_index"] == pytest.approx(8.0)


def _row(lesion_id, longest, perpendicular, slices):
    return {
        "lesion_id": lesion_id,
        "axial_longest_diameter_mm": longest,
        "axial_perpendicular_diameter_mm": perpendicular,
        "axial_slice_count": slices,
    }


@pytest.mark.parametrize(
    "longest, perpendicular, slices, measurable",
    [
        (10.0, 5.0, 2, True),  # RBM-T2: boundaries inclusive
        (9.99, 8.0, 3, False),  # RBM-T1
        (12.0, 4.99, 3, False),  # RBM-T3
        (15.0, 10.0, 1, False),  # RBM-T4
    ],
)
def test_rano_bm_measurability_thresholds(longest, perpendicular, slices, measurable):
    rows = [_row(1, longest, perpendicular, slices)]
    mark_rano_targets(rows, FeatureParameters.from_config())
    assert rows[0]["rano_bm_measurable"] is measurable
    assert rows[0]["rano_bm_target"] is measurable


def test_rano_bm_targets_are_the_five_largest_measurable():
    rows = [_row(i, 10.0 + i, 6.0, 3) for i in range(1, 8)] + [_row(8, 50.0, 2.0, 5)]
    mark_rano_targets(rows, FeatureParameters.from_config())
    assert [r["lesion_id"] for r in rows if r["rano_bm_target"]] == [3, 4, 5, 6, 7]
    assert not rows[-1]["rano_bm_measurable"]
    rows = [_row(i, 20.0, 6.0, 3) for i in range(1, 4)]
    mark_rano_targets(rows, FeatureParameters.from_config({"rano_bm": {"max_target_lesions": 2}}))
    assert [r["rano_bm_target"] for r in rows] == [True, True, False]


def test_rano_thresholds_are_configurable():
    rows = [_row(1, 8.0, 4.0, 1)]
    config = {"rano_bm": {"min_longest_diameter_mm": 5, "min_perpendicular_diameter_mm": 4, "min_axial_slices": 1}}
    mark_rano_targets(rows, FeatureParameters.from_config(config))
    assert rows[0]["rano_bm_measurable"]


def test_single_slice_lesion_is_not_measurable():
    labels = np.zeros((40, 40, 5), np.uint8)
    labels[..., 2][ball((40, 40, 1), (20, 20, 0), 8)[..., 0]] = 3
    lesion = features(labels).lesions[0]
    assert lesion["axial_longest_diameter_mm"] > 15 and lesion["axial_slice_count"] == 1
    assert not lesion["rano_bm_measurable"]


def test_study_summary_counts_and_classes():
    shape = (120, 60, 60)
    labels = np.zeros(shape, np.uint8)
    for x, r in ((10, 3), (30, 7), (60, 12), (100, 17)):
        labels[ball(shape, (x, 30, 30), r)] = 3
    result = features(labels)
    study = result.study
    diameters = sorted(r["max_diameter_3d_mm"] for r in result.lesions)
    assert study["lesion_count"] == 4
    assert study["cumulative_tumor_volume_ml"] == pytest.approx(sum(r["volume_ml"] for r in result.lesions))
    assert study["largest_max_diameter_3d_mm"] == diameters[-1]
    classes = [
        study[k]
        for k in (
            "lesions_diameter_lt_10mm",
            "lesions_diameter_10_20mm",
            "lesions_diameter_20_30mm",
            "lesions_diameter_30_40mm",
            "lesions_diameter_gt_40mm",
        )
    ]
    assert classes == [1, 1, 1, 1, 0]
    targets = [r for r in result.lesions if r["rano_bm_target"]]
    assert study["sum_longest_diameters_mm"] == pytest.approx(sum(r["axial_longest_diameter_mm"] for r in targets))
    assert study["measurable_lesion_count"] == 3


def test_provenance_records_every_parameter_and_no_path(tmp_path):
    from brainmets.io.writers import write_json

    path = tmp_path / "PATIENT_NAME_seg.nii.gz"
    path.write_bytes((PHANTOMS / "sphere.nii.gz").read_bytes())
    params = FeatureParameters.from_config({"merge_distance_mm": 1.5})
    result = measure_label_map(load_segmentation(path), params)
    prov = result.document["provenance"]
    assert prov["parameters"] == params.as_dict()
    assert prov["parameters"]["merge_distance_mm"] == 1.5
    assert len(prov["input_sha256"]) == 64 and prov["brainmets_version"]
    assert prov["label_scheme"] == "brats-mets-2023" and prov["orientation"] == "RAS"
    write_json(tmp_path / "out.json", result.document)
    assert "PATIENT_NAME" not in (tmp_path / "out.json").read_text()


def test_invalid_parameters_are_refused():
    with pytest.raises(ConfigError, match="connectivity"):
        FeatureParameters.from_config({"connectivity": 4})
    with pytest.raises(ConfigError, match="min_lesion_volume_mm3"):
        FeatureParameters.from_config({"min_lesion_volume_mm3": -1})


def test_equivalent_sphere_and_sphericity_definitions():
    lesion = features(ball((30, 30, 30), (15, 15, 15), 9).astype(np.uint8) * 3).lesions[0]
    v = lesion["volume_ml"] * 1000
    assert lesion["equivalent_sphere_diameter_mm"] == pytest.approx((6 * v / math.pi) ** (1 / 3))
    vm, area = lesion["mesh_volume_ml"] * 1000, lesion["surface_area_mm2"]
    assert lesion["sphericity"] == pytest.approx((36 * math.pi * vm**2) ** (1 / 3) / area)


# ---- real segmentations (../shared) ---------------------------------------------------------------


@pytest.mark.shared
def test_brats2015_case_has_one_lesion_its_edema_and_an_edema_only_satellite(shared):
    path = shared / "real/deepmedic-brats2015/brats_2013_pat0005_1/OTMultiClass.nii.gz"
    result = measure_label_map(load_segmentation(path), FeatureParameters.from_config({"label_scheme": "brats-2015"}))
    study = result.study
    assert study["lesion_count"] == 1
    lesion = result.lesions[0]
    # core = labels 1, 3, 4 of the main component: 45231 voxels at 1 mm
    assert lesion["voxel_count"] == 45231 and lesion["volume_ml"] == pytest.approx(45.231)
    assert lesion["enhancing_volume_ml"] == pytest.approx(18.319)  # label 4 of the main lesion
    assert lesion["edema_volume_ml"] > 30
    satellite = result.document["edema_only_components"]
    assert study["edema_only_component_count"] == 1 and satellite[0]["voxel_count"] == 2989
    assert study["total_edema_volume_ml"] == pytest.approx(35.416)  # every label-2 voxel
    assert study["discarded_core_component_count"] == 8  # specks of 1-12 voxels
    assert lesion["rano_bm_measurable"] and lesion["axial_slice_count"] == 61


@pytest.mark.shared
def test_real_model_output_with_a_custom_scheme(shared):
    """The AURORA model output uses 1 = edema, 2 = enhancing: a custom mapping reads it."""
    path = shared / "real/aurora-brats-met-00110/aurora_t1c_segmentation_modeloutput.nii.gz"
    params = FeatureParameters.from_config({"label_scheme": {"edema": [1], "enhancing": [2]}})
    result = measure_label_map(load_segmentation(path), params)
    assert result.study["lesion_count"] >= 1
    assert result.study["cumulative_tumor_volume_ml"] == pytest.approx(
        51.796 - result.study["discarded_core_volume_ml"], rel=1e-9
    )
    assert result.study["total_edema_volume_ml"] == pytest.approx(47.078)


def test_threads_do_not_change_the_result():
    from brainmets.io.writers import to_jsonable

    lm = load_segmentation(ROOT / "test_data/cohort/sub-03_ses-01_dseg.nii.gz")
    params = FeatureParameters.from_config()
    one = measure_label_map(lm, params, threads=1)
    two = measure_label_map(lm, params, threads=2)
    assert one.study["lesion_count"] == 12
    assert to_jsonable(one.document) == to_jsonable(two.document)
    assert np.array_equal(one.instances, two.instances)


def test_sheared_grid_is_measured_through_the_full_affine_and_flagged():
    sheared = np.eye(4)
    sheared[0, 1] = 0.5  # x depends on j: a sheared (non-orthogonal) grid
    labels = np.zeros((20, 20, 10), np.uint8)
    labels[5:15, 5:15, 2:8] = 3
    result = features(labels, sheared)
    assert result.lesions[0]["volume_ml"] == pytest.approx(0.6)  # |det| = 1
    assert result.document["provenance"]["axis_shear_deg"] == pytest.approx(math.degrees(math.atan(0.5)))
    assert any("sheared" in w for w in result.document["provenance"]["warnings"])


def test_necrotic_fraction_is_necrotic_over_necrotic_plus_enhancing_core():
    """A shell of enhancing tissue (label 3) around a necrotic centre (label 1), counted voxel by voxel."""
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[ball(labels.shape, (20, 20, 20), 8)] = 3
    labels[ball(labels.shape, (20, 20, 20), 4)] = 1
    (row,) = features(labels).lesions
    necrotic, enhancing = int((labels == 1).sum()), int((labels == 3).sum())
    assert row["necrotic_fraction"] == pytest.approx(necrotic / (necrotic + enhancing))
    labels[labels == 1] = 3  # no necrosis: 0, not unknown
    assert features(labels).lesions[0]["necrotic_fraction"] == 0
    assert features(labels, label_scheme="binary").lesions[0]["necrotic_fraction"] is None  # no necrotic label


@pytest.mark.parametrize(
    ("radius", "dose", "tier", "over_60"),
    [(8, 24, "under_20mm", False), (12, 18, "20_to_under_30mm", False), (17, 15, "30_to_40mm", False),
     (25, None, "over_40mm", False), (32, None, "over_40mm", True)],
)  # fmt: skip
def test_radiotherapy_triage_follows_the_core_diameter(radius, dose, tier, over_60):
    """A ball of radius r has a maximum 3D diameter of about 2r: 16, 24, 34, 50 and 64 mm."""
    shape = (2 * radius + 10,) * 3
    labels = ball(shape, (radius + 5,) * 3, radius).astype(np.uint8) * 3
    (row,) = features(labels).lesions
    assert abs(row["max_diameter_3d_mm"] - 2 * radius) < 2
    assert (row["rtog9005_dose_level_gy"], row["astro2022_srs_tier"], row["astro2022_srs_over_60mm"]) == (
        dose,
        tier,
        over_60,
    )


def test_radiotherapy_triage_edges_are_configurable_and_inclusive_as_written():
    labels = ball((40, 40, 40), (20, 20, 20), 12).astype(np.uint8) * 3  # D about 24 mm
    d = features(labels).lesions[0]["max_diameter_3d_mm"]
    triage = {"rtog9005_dose_levels": [{"max_diameter_mm": d, "dose_gy": 21}], "astro2022_tier_edges_mm": [5, 10, d]}
    (row,) = features(labels, radiotherapy_triage=triage).lesions
    assert row["rtog9005_dose_level_gy"] == 21  # D <= the level's largest diameter
    assert row["astro2022_srs_tier"] == "30_to_40mm"  # the third tier includes its upper edge
    with pytest.raises(ConfigError, match="increasing"):
        FeatureParameters.from_config({"radiotherapy_triage": {"astro2022_tier_edges_mm": [30, 20, 40]}})
