"""Comparing a prediction with a reference: the official BraTS-METS evaluator's numbers reproduced exactly on
the four real pairs (its outputs recorded in tests/fixtures with the versions that made them), edge cases with
known answers, and the feature and Table 1 agreement."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

import brainmets
from brainmets.cli import main
from brainmets.comparison.brats_metrics import evaluate, evaluate_2023

from .conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "brats_evaluation_0.0.10_samples.json"
FIXTURE_2023 = ROOT / "tests" / "fixtures" / "brats2023_metrics_samples.json"
REGION_KEYS = ("n_ref_instances", "n_pred_instances", "tp", "fp", "fn", "prec", "rec", "rq", "sq_dsc", "sq_dsc_std",
               "sq_hd95", "sq_hd95_std", "sq_nsd", "sq_nsd_std", "pq_dsc", "global_bin_dsc", "global_bin_hd95",
               "global_bin_nsd", "global_bin_volume_ref", "global_bin_volume_pred", "instance_volume_ref",
               "instance_voxel_count_ref")  # fmt: skip


def _number(value):
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return math.nan if value is None else float(value)


def _same(a, b) -> bool:
    a, b = _number(a), _number(b)
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-6


@pytest.mark.slow
@pytest.mark.shared
def test_brats2025_equals_the_official_evaluator_on_the_real_pairs(shared):
    """brats-evaluation 0.0.10 (panoptica 2.1.7) and its mets parser: every field it writes (counts, means,
    PQ, global metrics and volumes) of every region of the four real BraTS-METS pairs, to 1e-6; per-lesion
    values as multisets."""
    recorded = json.loads(FIXTURE.read_text())
    assert recorded["versions"]["BraTS-evaluation"] == "0.0.10" and recorded["versions"]["panoptica"] == "2.1.7"
    folder = shared / "real" / "brats-evaluation-samples"
    for case, parsed in zip(recorded["cases"], recorded["parsed_mets"]):
        document = brainmets.compare(folder / case["reference"], folder / case["prediction"])
        for region, theirs in case["panoptica_result"].items():
            if not isinstance(theirs, dict):
                continue
            wrong = _agrees(document["metrics"]["regions"][region], theirs, parsed, region)
            assert wrong == [], (case["case"], region, wrong)


def _agrees(mine: dict, theirs: dict, parsed: dict, region: str) -> list[str]:
    """The names of the evaluator's fields for one region (its result and its parsed summary) that brainmets'
    result does not reproduce; per-lesion values compared as multisets."""
    scalars = [k for k in theirs if k != "reference_instances"]
    wrong = [k for k in scalars if k not in REGION_KEYS or not _same(mine.get(k), theirs[k])]
    summary = {k[: -len(region) - 1]: v for k, v in parsed.items() if k.endswith(f"_{region}")}
    wrong += [k for k, v in summary.items() if not _same(mine["summary"][k], v)]
    for field in ("sq_dsc", "sq_hd95", "sq_nsd", "volume", "voxel_count", "is_matched"):
        ours = sorted(round(float(i.get(field, -1)), 6) for i in mine["reference_instances"])
        official = sorted(round(_number(i.get(field, -1)), 6) for i in theirs["reference_instances"])
        wrong += [f"reference_instances.{field}"] if ours != official else []
    return wrong


def test_brats2025_equals_the_official_evaluator_on_generated_pairs():
    """Every field brats-evaluation 0.0.10 writes per region (PQ and volumes included) and every field of its
    mets parser, on generated pairs with edge cases: empty reference, empty prediction, both empty, a missed
    lesion, a false positive, a cavity and a small lesion, anisotropic voxels (recorded by
    tests/evaluator_pairs.py)."""
    from .evaluator_pairs import FIXTURE as GENERATED
    from .evaluator_pairs import pairs

    recorded = json.loads(GENERATED.read_text())
    assert recorded["versions"]["BraTS-evaluation"] == "0.0.10" and recorded["versions"]["panoptica"] == "2.1.7"
    built = pairs()
    assert sorted(built) == sorted(c["case"] for c in recorded["cases"])
    for case in recorded["cases"]:
        reference, prediction, zooms = built[case["case"]]
        regions = evaluate(reference, prediction, [float(np.float32(z)) for z in zooms])  # the header's float32
        for region in ("et", "tc", "wt", "rc"):
            wrong = _agrees(regions[region], case["panoptica_result"][region], case["parsed_mets"], region)
            assert wrong == [], (case["case"], region, wrong)


def _pair(tmp_path, reference, prediction, affine=None, prediction_affine=None):
    affine = np.eye(4) if affine is None else affine
    ref, pred = tmp_path / "ref.nii.gz", tmp_path / "pred.nii.gz"
    nib.save(nib.Nifti1Image(reference.astype(np.uint8), affine), ref)
    nib.save(
        nib.Nifti1Image(prediction.astype(np.uint8), affine if prediction_affine is None else prediction_affine), pred
    )
    return ref, pred


def _cube(shape, corner, size, value=3):
    a = np.zeros(shape, np.uint8)
    a[tuple(slice(c, c + size) for c in corner)] = value
    return a


def test_edge_cases_give_the_evaluators_answers():
    shape = (30, 30, 30)
    empty = np.zeros(shape, np.uint8)
    both = evaluate(empty, empty, (1, 1, 1))["et"]
    assert math.isnan(both["sq_dsc"]) and math.isnan(both["global_bin_dsc"]) and both["tp"] == 0
    assert math.isnan(both["summary"]["lesionwise_dsc_mean"])
    lesion = _cube(shape, (5, 5, 5), 4)
    missed = evaluate(lesion, empty, (1, 1, 1))["et"]
    assert (missed["fn"], missed["sq_dsc"], missed["sq_hd95"]) == (1, 0.0, math.inf)
    assert missed["summary"]["lesionwise_dsc_mean"] == 0 and missed["summary"]["lesionwise_hd95_mean"] == 373
    invented = evaluate(empty, _cube(shape, (20, 20, 20), 1), (1, 1, 1))["et"]  # a one-voxel false positive
    assert (invented["fp"], invented["fn"], invented["rq"]) == (1, 0, 0.0)
    assert math.isnan(invented["summary"]["lesionwise_dsc_mean"])  # no reference lesion: no lesion-wise mean
    two = _cube(shape, (2, 2, 2), 4) | _cube(shape, (2, 2, 8), 4)  # two reference lesions two voxels apart
    bridge = _cube(shape, (2, 2, 2), 4) | _cube(shape, (2, 2, 8), 4) | _cube(shape, (3, 3, 6), 2)  # one bridging them
    bridged = evaluate(two, bridge, (1, 1, 1))["et"]
    assert (bridged["n_ref_instances"], bridged["n_pred_instances"], bridged["tp"], bridged["fn"]) == (2, 1, 1, 1)
    split = evaluate(bridge, two, (1, 1, 1))["et"]  # the prediction splits a reference lesion: one piece is a FP
    assert (split["tp"], split["fp"]) == (1, 1)
    small = evaluate(_cube(shape, (5, 5, 5), 2), _cube(shape, (5, 5, 5), 2), (1, 1, 1))["et"]  # 8 mm3 < 20 mm3
    assert small["summary"]["small_instance_tp"] == 1 and math.isnan(small["summary"]["lesionwise_dsc_mean"])
    shifted = evaluate(_cube(shape, (5, 5, 5), 4), _cube(shape, (6, 5, 5), 4), (1, 1, 1))["et"]
    assert shifted["sq_dsc"] == pytest.approx(0.75) and shifted["sq_hd95"] == pytest.approx(1.0)
    anisotropic = evaluate(_cube(shape, (5, 5, 5), 4), _cube(shape, (5, 5, 6), 4), (1, 1, 3))["et"]
    assert anisotropic["sq_hd95"] == pytest.approx(1.0)  # the evaluator's reversed spacing: the last axis gets 1 mm


@pytest.mark.parametrize("spacing", [None, (1.0, 1.0, 1.0), (0.9375, 0.9375, 3.3), (3.0, 0.7, 1.1)])
def test_surface_distances_are_the_distance_maps_values_bit_for_bit(spacing):
    """The k-d tree's surface distances equal what panoptica reads from a distance map of the other border
    (scipy's distance_transform_edt), exactly, on irregular masks and anisotropic spacings."""
    from scipy.ndimage import binary_erosion, distance_transform_edt, gaussian_filter, generate_binary_structure

    from brainmets.comparison.brats_metrics import _border_points, _surface_distances

    rng = np.random.default_rng(5)
    a, b = (gaussian_filter(rng.random((40, 36, 30)), 2) > 0.52 for _ in range(2))
    footprint = generate_binary_structure(3, 1)
    a_border, b_border = (m ^ binary_erosion(m, structure=footprint) for m in (a, b))
    expected = distance_transform_edt(~b_border, sampling=spacing)[a_border]
    scale = np.ones(3) if spacing is None else np.asarray(spacing)
    found = _surface_distances(_border_points(a), _border_points(b), scale)
    assert len(expected) > 500 and np.array_equal(found, expected)


def test_compare_reports_missed_and_invented_lesions_and_the_verdicts_they_change(tmp_path, capsys):
    shape = (60, 60, 40)
    reference = _cube(shape, (10, 10, 10), 12)  # one 12 mm lesion
    prediction = reference | _cube(shape, (40, 40, 20), 10)  # and an invented 10 mm one
    ref, pred = _pair(tmp_path, reference, prediction)
    row = {"subject": "01", "kps": 90, "extracranial_disease": "controlled", "primary_controlled": "yes",
           "primary_histology": "nsclc_adenocarcinoma", "symptomatic": "yes"}  # fmt: skip
    document = brainmets.compare(ref, pred, clinical=row, subject="01")
    kinds = sorted(entry["agreement"] for entry in document["lesions"])
    assert kinds == ["invented", "matched"]
    matched = next(e for e in document["lesions"] if e["agreement"] == "matched")
    assert matched["difference_volume_ml"] == 0.0 and matched["difference_max_diameter_3d_mm"] == 0.0
    assert document["study"]["lesion_count"] == {"reference": 1, "prediction": 2, "difference": 1}
    changed = {c["what"] for c in document["indications"]["changes"]}
    assert changed and all(c["reference"] != c["prediction"] for c in document["indications"]["changes"])
    assert document["metrics"]["regions"]["et"]["fp"] == 1 and document["research_use_only"] is True
    out, tsv = tmp_path / "c.json", tmp_path / "c.tsv"
    assert (
        main(
            [
                "compare",
                "--reference",
                str(ref),
                "--prediction",
                str(pred),
                "--out-json",
                str(out),
                "--out-tsv",
                str(tsv),
            ]
        )
        == 0
    )
    lines = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert lines[0][:3] == ["region", "kind", "reference_instance"]
    assert [r[1] for r in lines[1:] if r[0] == "et"] == ["matched", "invented"]
    assert json.loads(out.read_text())["metrics"]["follows"].startswith("brats-evaluation 0.0.10")


def test_a_prediction_on_another_grid_is_compared_in_world_space(tmp_path):
    shape = (40, 40, 40)
    reference = _cube(shape, (10, 10, 10), 8)
    half = np.diag([0.5, 0.5, 0.5, 1.0])  # the prediction on a 0.5 mm grid, the same lesion in world space
    fine = _cube((80, 80, 80), (20, 20, 20), 16)
    ref, pred = _pair(tmp_path, reference, fine, prediction_affine=half)
    document = brainmets.compare(ref, pred)
    et = document["metrics"]["regions"]["et"]
    assert et["tp"] == 1 and et["sq_dsc"] == pytest.approx(1.0) and et["sq_hd95"] == 0.0
    assert document["lesions"][0]["agreement"] == "matched"
    assert document["lesions"][0]["difference_volume_ml"] == pytest.approx(0.0, abs=1e-9)
    shifted = tmp_path / "out.nii.gz"
    moved = half.copy()
    moved[:3, 3] = [-30, 0, 0]  # the prediction's grid covers only part of the reference's
    nib.save(nib.Nifti1Image(fine, moved), shifted)
    assert any("field of view" in w for w in brainmets.compare(ref, shifted)["warnings"])


@pytest.mark.slow
@pytest.mark.shared
def test_brats2023_equals_the_2023_script_on_the_real_pairs(shared):
    """rachitsaluja/BraTS-2023-Metrics eval.py (BraTS-MET settings), run on the same four pairs: every WT, TC
    and ET result to 1e-6 (relative), and each reference lesion's Dice and HD95."""
    recorded = json.loads(FIXTURE_2023.read_text())
    assert "0e272e697a193474ed75cef99cf2de110cc52d37" in recorded["source"]
    files = {c["case"]: c for c in json.loads(FIXTURE.read_text())["cases"]}
    folder = shared / "real" / "brats-evaluation-samples"
    for case in recorded["cases"]:
        paths = files[case["case"]]
        document = brainmets.compare(folder / paths["reference"], folder / paths["prediction"], metrics="brats2023")
        assert document["metrics"]["follows"].startswith("rachitsaluja/BraTS-2023-Metrics")
        for region, theirs in case["get_LesionWiseResults"].items():
            mine = document["metrics"]["regions"][region]
            wrong = [k for k, v in theirs.items() if abs(mine[k] - _number(v)) > 1e-6 * max(1.0, abs(_number(v)))]
            assert wrong == [], (case["case"], region, wrong)
            ours = [
                (x["gt_lesion_number"], round(x["dice"], 6), round(x["hd95_raw"], 6)) for x in mine["reference_lesions"]
            ]
            lesions = case["per_lesion"][region]["reference_lesions"]
            official = [(x["gt_lesion_number"], round(x["dice"], 6), round(_number(x["hd95_raw"]), 6)) for x in lesions]
            assert ours == official, (case["case"], region)


def test_brats2023_edge_cases():
    shape = (30, 30, 30)
    empty = np.zeros(shape, np.uint8)
    both = evaluate_2023(empty, empty, (1, 1, 1))["ET"]
    assert (both["LesionWise_Score_Dice"], both["LesionWise_Score_HD95"], both["Legacy_Dice"]) == (1.0, 0.0, 1.0)
    invented = evaluate_2023(empty, _cube(shape, (5, 5, 5), 3), (1, 1, 1))["ET"]
    assert (invented["Num_FP"], invented["LesionWise_Score_Dice"], invented["LesionWise_Score_HD95"]) == (1, 0.0, 374.0)
    near = _cube(shape, (5, 5, 5), 3) | _cube(shape, (5, 5, 10), 3)  # two voxels apart: the dilations touch
    merged = evaluate_2023(near, near, (1, 1, 1))["ET"]
    assert len(merged["reference_lesions"]) == 1 and merged["Num_TP"] == 1
    apart = _cube(shape, (5, 5, 5), 3) | _cube(shape, (5, 5, 11), 3)  # three voxels apart: two lesions
    assert len(evaluate_2023(apart, apart, (1, 1, 1))["ET"]["reference_lesions"]) == 2
    tiny = evaluate_2023(_cube(shape, (5, 5, 5), 1), empty, (1, 1, 1))["ET"]  # 1 mm3 <= 2 mm3: left out
    assert (tiny["Num_FN"], tiny["LesionWise_Score_Dice"]) == (0, 1.0)
    pooled = evaluate_2023(
        _cube(shape, (5, 5, 5), 7), _cube(shape, (5, 5, 5), 3) | _cube(shape, (9, 9, 9), 3), (1, 1, 1)
    )["ET"]
    assert pooled["reference_lesions"][0]["predicted_lesion_numbers"] == [1, 2] and pooled["Num_FP"] == 0


def test_float_label_maps_are_read_as_labels_and_fractions_refused(tmp_path):
    reference = _cube((30, 30, 30), (5, 5, 5), 6).astype(np.float32)
    ref, pred = tmp_path / "ref.nii.gz", tmp_path / "pred.nii.gz"
    nib.save(nib.Nifti1Image(reference, np.eye(4)), ref)
    nib.save(nib.Nifti1Image(reference, np.eye(4)), pred)
    assert brainmets.compare(ref, pred)["metrics"]["regions"]["et"]["sq_dsc"] == 1.0
    nib.save(nib.Nifti1Image(reference * 0.999, np.eye(4)), pred)  # 2.997: an interpolated map, not labels
    with pytest.raises(brainmets.errors.InputDataError, match="fractional"):
        brainmets.compare(ref, pred)
