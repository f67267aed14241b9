"""The comparison's lesion table: hand-built pairs with known answers (a 1:1 match, a missed, an invented, a merged
pair, a split, a weak match below the overlap threshold), physical sizes on an oblique anisotropic grid, the
invariants tying it to the evaluator's counts, ``--out-tsv`` and ``detection_by_size`` on the generated pairs,
brats2023, and ``brainmets compare --out-lesions-tsv``."""

from __future__ import annotations

import math
from collections import Counter

import nibabel as nib
import numpy as np
import pytest

import brainmets
from brainmets.cli import main
from brainmets.cli.compare import rows as tsv_rows
from brainmets.comparison.brats_metrics import evaluate
from brainmets.comparison.detection import bin_label, detection_by_size
from brainmets.comparison.lesion_table import COLUMNS, lesion_table, match_kind, overlap_groups

from .evaluator_pairs import pairs

SHAPE = (54, 52, 58)
#: Where the lesions start: off the grid's corner, so that the evaluator's crop starts elsewhere than voxel 0.
SHIFT = (6, 4, 9)
#: (side, voxel box before the shift) of every hand-built lesion, label 3 (the same lesions in et, tc and wt).
BOXES = {
    "one_ref": ("reference", (slice(2, 6), slice(2, 6), slice(2, 6))),
    "one_pred": ("prediction", (slice(3, 7), slice(2, 6), slice(2, 6))),  # shifted by one voxel: Dice 0.75
    "missed": ("reference", (slice(2, 5), slice(20, 23), slice(2, 5))),
    "invented": ("prediction", (slice(40, 42), slice(40, 42), slice(40, 42))),
    "merged_ref_a": ("reference", (slice(2, 5), slice(2, 5), slice(20, 23))),
    "merged_ref_b": ("reference", (slice(2, 5), slice(2, 5), slice(26, 29))),
    "merged_pred": ("prediction", (slice(2, 5), slice(2, 5), slice(20, 29))),  # one bar over both
    "split_ref": ("reference", (slice(20, 23), slice(2, 5), slice(2, 11))),
    "split_pred_a": ("prediction", (slice(20, 23), slice(2, 5), slice(2, 5))),
    "split_pred_b": ("prediction", (slice(20, 23), slice(2, 5), slice(8, 11))),
    "weak_ref": ("reference", (slice(20, 26), slice(20, 26), slice(20, 26))),  # 216 voxels
    "weak_pred": ("prediction", (slice(20, 22), slice(20, 22), slice(20, 22))),  # 8 inside: Dice 16/224
}


def _maps() -> tuple[np.ndarray, np.ndarray]:
    maps = {"reference": np.zeros(SHAPE, np.uint8), "prediction": np.zeros(SHAPE, np.uint8)}
    for side, box in BOXES.values():
        maps[side][_moved(box)] = 3
    return maps["reference"], maps["prediction"]


def _moved(box) -> tuple[slice, ...]:
    return tuple(slice(s.start + k, s.stop + k) for s, k in zip(box, SHIFT))


def _centre(box) -> np.ndarray:
    return np.array([(s.start + s.stop - 1) / 2 for s in _moved(box)])


def _table(reference, prediction, affine, edges=(0, 20, 100, 1000)):
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    parts: dict = {}
    regions = evaluate(reference, prediction, zooms, parts)
    return regions, lesion_table(parts, affine, reference.shape, zooms, regions, edges)


def _lookup(table, region, affine):
    """Each hand-built lesion's row in ``region``, found by its world centroid (not by the code's ids)."""
    out = {}
    for name, (side, box) in BOXES.items():
        where = (affine @ [*_centre(box), 1.0])[:3]
        found = [r for r in table if r["region"] == region and r["side"] == side
                 and np.allclose([r[f"centroid_{c}_mm"] for c in "xyz"], where, atol=1e-9)]  # fmt: skip
        assert len(found) == 1, (name, found)
        out[name] = found[0]
    return out


def test_known_pairs_get_their_match_dice_and_detection():
    reference, prediction = _maps()
    regions, table = _table(reference, prediction, np.eye(4))
    assert {r["region"] for r in table} == {"et", "tc", "wt"}  # no cavity: no rc row
    for region in ("et", "tc", "wt"):
        row = _lookup(table, region, np.eye(4))
        assert len([r for r in table if r["region"] == region]) == len(BOXES)
        one, other = row["one_ref"], row["one_pred"]
        assert (one["match"], one["detection"], other["detection"]) == ("matched", "tp", "tp")
        assert one["panoptica_match"] == other["lesion_id"] and other["panoptica_match"] == one["lesion_id"]
        assert one["dice"] == other["dice"] == one["group_dice"] == pytest.approx(0.75)  # 2 x 48 / 128
        assert one["overlapping_lesion_ids"] == [other["lesion_id"]]
        assert (one["voxel_count"], one["volume_mm3"]) == (64, 64.0)

        missed = row["missed"]
        assert (missed["match"], missed["detection"], missed["dice"], missed["group_dice"]) == ("missed", "fn", 0, 0)
        assert missed["panoptica_match"] is None and missed["overlapping_lesion_ids"] is None
        invented = row["invented"]
        assert (invented["match"], invented["detection"], invented["dice"]) == ("invented", "fp", 0)
        assert invented["size_bin"] == "[0, 20)"  # 8 voxels of 1 mm3

        a, b, bar = row["merged_ref_a"], row["merged_ref_b"], row["merged_pred"]
        assert {a["match"], b["match"], bar["match"]} == {"merged"}
        assert bar["overlapping_lesion_ids"] == sorted([a["lesion_id"], b["lesion_id"]])
        assert a["group_dice"] == b["group_dice"] == bar["group_dice"] == pytest.approx(0.8)  # 2 x 54 / (54 + 81)
        paired, unpaired = sorted((a, b), key=lambda r: r["panoptica_match"] is None)
        assert paired["panoptica_match"] == bar["lesion_id"] and paired["dice"] == pytest.approx(0.5)  # 54 / 108
        assert (paired["detection"], bar["detection"]) == ("tp", "tp")
        assert (unpaired["panoptica_match"], unpaired["dice"], unpaired["detection"]) == (None, 0.0, "fn")

        whole, pa, pb = row["split_ref"], row["split_pred_a"], row["split_pred_b"]
        assert {whole["match"], pa["match"], pb["match"]} == {"split"}
        assert whole["overlapping_lesion_ids"] == sorted([pa["lesion_id"], pb["lesion_id"]])
        assert whole["group_dice"] == pytest.approx(0.8) and whole["dice"] == pytest.approx(0.5)
        assert sorted([pa["detection"], pb["detection"]]) == ["fp", "tp"]

        weak_ref, weak_pred = row["weak_ref"], row["weak_pred"]
        assert weak_ref["match"] == weak_pred["match"] == "matched"
        assert weak_ref["dice"] == weak_pred["dice"] == pytest.approx(16 / 224) and weak_ref["dice"] < 0.1
        assert weak_ref["panoptica_match"] == weak_pred["lesion_id"]
        assert weak_ref["detection"] == "fn" and weak_pred["detection"] is None  # the parser counts it neither way
        assert weak_ref["size_bin"] == "[100, 1000)"
    et = regions["et"]
    assert (et["tp"], et["fp"], et["fn"]) == (4, 2, 2)  # the evaluator agrees: 4 matches, 2 left on each side


def test_overlap_groups_and_their_kinds():
    groups = overlap_groups(4, 4, [(1, 1), (2, 1), (2, 2), (3, 3)])  # ref 4 and pred 4 alone
    assert sorted(groups) == [([], [4]), ([1, 2], [1, 2]), ([3], [3]), ([4], [])]
    assert [match_kind(len(r), len(p)) for r, p in sorted(groups)] == [
        "invented", "merged and split", "matched", "missed"
    ]  # fmt: skip
    assert (match_kind(2, 1), match_kind(1, 3)) == ("merged", "split")


def test_sizes_and_centroids_are_physical_on_an_oblique_anisotropic_grid():
    reference, prediction = _maps()
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.5, 0.8, 2.0])
    affine[:3, 3] = [-12.0, 30.0, 5.0]
    _regions, table = _table(reference, prediction, affine)
    row = _lookup(table, "et", affine)  # centroids: the affine applied to the boxes' centres
    assert row["one_ref"]["volume_mm3"] == pytest.approx(64 * 0.8)  # |det| = 0.5 x 0.8 x 2
    assert row["weak_ref"]["volume_mm3"] == pytest.approx(216 * 0.8)
    assert all(r["volume_mm3"] == pytest.approx(r["voxel_count"] * 0.8) for r in table)
    bar = row["merged_pred"]  # 3 x 3 x 9 voxels of 0.5 x 0.8 x 2 mm: its 3D diameter is along the third axis
    assert 9 * 2.0 - 2.0 <= bar["max_diameter_3d_mm"] <= math.dist((0, 0, 0), (1.5, 2.4, 18))
    assert bar["axial_longest_diameter_mm"] <= bar["max_diameter_3d_mm"]
    assert bar["axial_perpendicular_diameter_mm"] <= bar["axial_longest_diameter_mm"]


def test_diameters_equal_the_features_of_the_same_lesions(tmp_path):
    reference, _prediction = _maps()
    affine = np.diag([0.9, 1.1, 1.6, 1.0])
    affine[:3, 3] = [-20.0, -25.0, -30.0]
    path = tmp_path / "ref.nii.gz"
    nib.save(nib.Nifti1Image(reference, affine), path)
    features = brainmets.measure(path).lesions
    _regions, table = _table(reference, np.zeros_like(reference), affine)
    rows = [r for r in table if r["region"] == "et"]
    assert len(rows) == len(features) == 6
    for r in rows:
        near = features[np.isclose(features["centroid_x_mm"], r["centroid_x_mm"])
                        & np.isclose(features["centroid_y_mm"], r["centroid_y_mm"])
                        & np.isclose(features["centroid_z_mm"], r["centroid_z_mm"])]  # fmt: skip
        assert len(near) == 1
        for name in ("max_diameter_3d_mm", "axial_longest_diameter_mm", "axial_perpendicular_diameter_mm"):
            assert r[name] == pytest.approx(float(near[name].iloc[0]), rel=1e-5), name
        assert r["volume_mm3"] == pytest.approx(float(near["volume_ml"].iloc[0]) * 1000, rel=1e-5)


@pytest.mark.parametrize("name", sorted(pairs()))
def test_the_table_agrees_with_the_counts_the_tsv_and_the_size_bins(name):
    reference, prediction, zooms = pairs()[name]
    affine = np.diag([*zooms, 1.0])
    edges = (0, 20, 100)
    regions, table = _table(reference, prediction, affine, edges)
    tsv = tsv_rows({"metrics": {"mode": "brats2025", "regions": regions}})
    for region, result in regions.items():
        mine = [r for r in table if r["region"] == region]
        refs = [r for r in mine if r["side"] == "reference"]
        preds = [r for r in mine if r["side"] == "prediction"]
        assert [r["lesion_id"] for r in refs] == list(range(1, result["n_ref_instances"] + 1))
        assert [r["lesion_id"] for r in preds] == list(range(1, result["n_pred_instances"] + 1))
        theirs = [t for t in tsv if t["region"] == region and t["kind"] != "invented"]
        assert [r["dice"] for r in refs] == [t["dice"] for t in theirs]
        assert [r["panoptica_match"] for r in refs] == [t["prediction_instance"] for t in theirs]
        assert [r["voxel_count"] * math.prod(zooms) for r in refs] == pytest.approx(
            [t["reference_volume_mm3"] for t in theirs]
        )
        invented = {t["prediction_instance"] for t in tsv if t["region"] == region and t["kind"] == "invented"}
        assert {r["lesion_id"] for r in preds if r["detection"] == "fp"} == invented
        assert sum(r["detection"] == "tp" for r in refs) == sum(r["detection"] == "tp" for r in preds)
        assert sum(r["detection"] == "fn" for r in refs) + sum(r["detection"] == "tp" for r in refs) == len(refs)
        for entry in detection_by_size(result, edges):
            label = bin_label(entry)
            assert sum(r["size_bin"] == label for r in refs) == entry["reference_lesions"], (region, label)
            assert sum(r["size_bin"] == label and r["detection"] == "tp" for r in refs) == entry["detected"]
            assert sum(r["size_bin"] == label and r["detection"] == "fp" for r in preds) == entry["false_positives"]
        for r in mine:  # one-to-one groups: the group's Dice is the pair's
            if r["match"] == "matched" and r["panoptica_match"] is not None:
                assert r["group_dice"] == pytest.approx(r["dice"])
            assert (r["match"] in ("missed", "invented")) == (r["overlapping_lesion_ids"] is None)


def _files(tmp_path, affine=None):
    reference, prediction = _maps()
    affine = np.diag([1.0, 1.2, 0.8, 1.0]) if affine is None else affine
    ref, pred = tmp_path / "ref.nii.gz", tmp_path / "pred.nii.gz"
    nib.save(nib.Nifti1Image(reference, affine), ref)
    nib.save(nib.Nifti1Image(prediction, affine), pred)
    return ref, pred


def test_brats2023_builds_the_same_lesions_without_panoptica(tmp_path):
    ref, pred = _files(tmp_path)
    new, old = (brainmets.compare(ref, pred, metrics=m) for m in ("brats2025", "brats2023"))
    assert len(new["lesion_table"]) == len(old["lesion_table"]) == 3 * len(BOXES)
    shared = [c for c in COLUMNS if c not in ("panoptica_match", "dice", "detection")]
    assert [{c: r[c] for c in shared} for r in old["lesion_table"]] == [
        {c: r[c] for c in shared} for r in new["lesion_table"]
    ]
    assert all(r["panoptica_match"] is r["dice"] is r["detection"] is None for r in old["lesion_table"])
    frame = old.lesion_table
    assert list(frame.index.names) == ["region", "side", "lesion_id"] and len(frame) == 3 * len(BOXES)
    assert Counter(frame.loc["et"]["match"]) == {"matched": 4, "merged": 3, "split": 3, "missed": 1, "invented": 1}


def test_cli_writes_the_lesion_table_and_refuses_to_overwrite_an_input(tmp_path, capsys):
    ref, pred = _files(tmp_path)
    out, tsv, lesions = tmp_path / "c.json", tmp_path / "c.tsv", tmp_path / "lesions.tsv"
    command = ["compare", "--reference", str(ref), "--prediction", str(pred), "--out-json", str(out)]
    assert main([*command, "--out-tsv", str(tsv), "--out-lesions-tsv", str(lesions)]) == 0
    lines = [line.split("\t") for line in lesions.read_text().splitlines()]
    assert lines[0] == COLUMNS and len(lines) == 1 + 3 * len(BOXES)
    column = {name: [row[k] for row in lines[1:]] for k, name in enumerate(lines[0])}
    assert Counter(column["detection"]) == {"tp": 3 * 6, "fn": 3 * 3, "fp": 3 * 2, "n/a": 3}
    assert "n/a" in column["overlapping_lesion_ids"] and "n/a" in column["panoptica_match"]
    assert sum(1 for line in tsv.read_text().splitlines()[1:]) == 3 * (6 + 2)  # --out-tsv keeps its rows
    capsys.readouterr()
    before = ref.read_bytes()
    assert main([*command, "--out-lesions-tsv", str(ref)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and ref.read_bytes() == before
