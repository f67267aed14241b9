"""Detection by lesion size (brats2025): the parser's ``all``, ``small`` and ``large`` detection values
reproduced by one bin and by the bins [0, 20), [20, inf), on the evaluator's recorded generated pairs and on
seeded random pairs; a hand-built pair with known counts per bin; bad bins refused."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

import brainmets
from brainmets.cli import main
from brainmets.comparison.brats_metrics import evaluate
from brainmets.comparison.detection import check_bins, detection_by_size, parse_bins
from brainmets.errors import ConfigError

from .conftest import ROOT
from .evaluator_pairs import pairs

GENERATED = ROOT / "tests" / "fixtures" / "brats_evaluation_0.0.10_generated.json"
FIELDS = ("tp", "fn", "fp", "rec", "f1")


def _value(value) -> float:
    """A parser's number (NaN, "NaN" or a number) or a bin's (None) as a float, NaN for missing."""
    if value is None or value == "NaN":
        return math.nan
    return float(value)


def _same(a, b) -> bool:
    a, b = _value(a), _value(b)
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


def _as_parser(entry: dict, fp: int) -> dict:
    """A bin in the parser's terms, with the parser's false positives (every one, unbinned) for its F1."""
    tp, fn = entry["detected"], entry["missed"]
    if not entry["reference_lesions"]:
        return dict.fromkeys(FIELDS, math.nan)
    return {"tp": tp, "fn": fn, "fp": fp, "rec": entry["recall"], "f1": 2 * tp / (2 * tp + fn + fp)}


def _check_invariants(result: dict, summary: dict) -> None:
    """One bin [0, inf) = the summary's ``all`` values (any overlap: the parser's ``all`` counts every match);
    [0, 20), [20, inf) = its ``small`` and ``large`` ones (false positives: the bins' sum)."""
    (whole,) = detection_by_size(result, (0,), overlap_threshold=0.0)
    assert whole["reference_lesions"] == result["n_ref_instances"]
    mine = {"tp": whole["detected"], "fn": whole["missed"], "fp": whole["false_positives"], "rec": whole["recall"],
            "f1": whole["f1"]}  # fmt: skip
    assert all(_same(mine[k], summary[f"all_instance_{k}"]) for k in FIELDS), (mine, summary)
    weak = [x for x in result["reference_instances"] if x["is_matched"] and x["sq_dsc"] < 0.1]
    (default,) = detection_by_size(result, (0,))
    assert default["detected"] == whole["detected"] - len(weak)
    if not weak:
        assert default == whole
    small, large = detection_by_size(result, (0, 20))
    assert small["false_positives"] + large["false_positives"] == summary["all_instance_fp"] == result["fp"]
    for entry, prefix in ((small, "small"), (large, "large")):
        theirs = {k: summary[f"{prefix}_instance_{k}"] for k in FIELDS}
        assert all(_same(v, theirs[k]) for k, v in _as_parser(entry, result["fp"]).items()), (prefix, entry, theirs)


def test_invariants_on_the_evaluators_generated_pairs():
    """The recorded parser output of brats-evaluation 0.0.10 on the generated pairs (edge cases included)."""
    recorded = {c["case"]: c["parsed_mets"] for c in json.loads(GENERATED.read_text())["cases"]}
    for name, (reference, prediction, zooms) in pairs().items():
        for region, result in evaluate(reference, prediction, zooms).items():
            parsed = {k[: -len(region) - 1]: v for k, v in recorded[name].items() if k.endswith(f"_{region}")}
            _check_invariants(result, parsed)
            _check_invariants(result, result["summary"])


def _random_labels(rng: np.random.Generator, shape=(40, 40, 30)) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    grid = np.indices(shape, dtype=np.float32)
    for _ in range(rng.integers(0, 8)):
        centre = rng.uniform(3, np.array(shape) - 3)
        d2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
        labels[d2 <= rng.uniform(0.5, 5) ** 2] = rng.choice([1, 2, 3, 4])
    return labels


def test_invariants_on_seeded_random_pairs():
    """Random balls of every label (tiny to large, touching or not) against a jittered and edited copy."""
    rng = np.random.default_rng(27)
    for _ in range(12):
        reference = _random_labels(rng)
        prediction = np.roll(reference, tuple(rng.integers(-2, 3, 3)), axis=(0, 1, 2))
        prediction[_random_labels(rng) > 0] = rng.choice([1, 3])
        zooms = tuple(rng.choice([0.5, 1.0, 1.2], 3))
        for result in evaluate(reference, prediction, zooms).values():
            _check_invariants(result, result["summary"])


def _box(labels: np.ndarray, corner, size, value: int = 3) -> None:
    labels[tuple(slice(c, c + s) for c, s in zip(corner, size))] = value


def _hand_built() -> tuple[np.ndarray, np.ndarray]:
    """Enhancing lesions of 10, 50, 500 and 5000 mm3 (1 mm voxels); the prediction finds all but the 50 mm3 one
    and invents one of 30 mm3."""
    reference = np.zeros((70, 70, 40), np.uint8)
    for corner, size in (((2, 2, 2), (2, 5, 1)), ((2, 20, 2), (5, 5, 2)), ((2, 40, 2), (10, 10, 5)),
                         ((30, 30, 20), (20, 25, 10))):  # fmt: skip
        _box(reference, corner, size)
    prediction = reference.copy()
    prediction[2:7, 20:25, 2:4] = 0
    _box(prediction, (55, 2, 30), (5, 3, 2))
    return reference, prediction


EXPECTED = [  # (reference lesions, detected, false positives, recall, f1) per default bin
    (1, 1, 0, 1.0, 1.0),
    (1, 0, 1, 0.0, 0.0),
    (1, 1, 0, 1.0, 1.0),
    (1, 1, 0, 1.0, 1.0),
]


def test_a_hand_built_pair_has_known_counts_per_bin():
    regions = evaluate(*_hand_built(), (1.0, 1.0, 1.0))
    bins = detection_by_size(regions["et"])
    assert [(b["min_volume_mm3"], b["max_volume_mm3"]) for b in bins] == [(0, 20), (20, 100), (100, 1000),
                                                                         (1000, None)]  # fmt: skip
    got = [(b["reference_lesions"], b["detected"], b["false_positives"], b["recall"], b["f1"]) for b in bins]
    assert got == EXPECTED
    assert [b["missed"] for b in bins] == [0, 1, 0, 0]
    empty = detection_by_size(regions["rc"])
    assert all(b["reference_lesions"] == b["false_positives"] == 0 and b["recall"] is None and b["f1"] is None
               for b in empty)  # fmt: skip


def test_false_positive_volumes_use_the_reference_volumes_convention():
    """Voxel count x the product of the voxel sizes, as the reference lesions' ``volume``."""
    reference, prediction = _hand_built()
    result = evaluate(reference, prediction, (0.5, 1.0, 2.0))["et"]
    assert result["prediction_instances_unmatched_volume"] == [30.0]
    assert sorted(x["volume"] for x in result["reference_instances"]) == [10.0, 50.0, 500.0, 5000.0]


def _write(tmp_path, name: str, labels: np.ndarray):
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), path)
    return path


def test_document_api_and_cli(tmp_path):
    """``metrics.detection_by_size`` in the document, the ``detection_by_size`` frame, configurable bins."""
    ref, pred = (_write(tmp_path, n, a) for n, a in zip(("ref", "pred"), _hand_built()))
    result = brainmets.compare(ref, pred)
    table = result["metrics"]["detection_by_size"]
    assert set(table) == {"et", "tc", "wt", "rc"}
    frame = result.detection_by_size
    assert list(frame.index.names) == ["region", "bin"]
    et = frame.loc["et"]
    assert et.index.tolist() == ["[0, 20)", "[20, 100)", "[100, 1000)", ">= 1000"]
    assert et["detected"].tolist() == [1, 0, 1, 1] and et["false_positives"].tolist() == [0, 1, 0, 0]
    two = brainmets.compare(ref, pred, detection_bins_mm3=[0, 20])
    assert [b["reference_lesions"] for b in two["metrics"]["detection_by_size"]["et"]] == [1, 3]
    configured = brainmets.compare(ref, pred, config={"compare_detection_bins_mm3": [100]})
    assert [b["reference_lesions"] for b in configured["metrics"]["detection_by_size"]["et"]] == [2]
    assert "detection_by_size" not in brainmets.compare(ref, pred, metrics="brats2023")["metrics"]
    out = tmp_path / "c.json"
    argv = ["compare", "--reference", str(ref), "--prediction", str(pred), "--out-json", str(out)]
    assert main([*argv, "--detection-bins-mm3", "0,20,100"]) == 0
    bins = json.loads(out.read_text())["metrics"]["detection_by_size"]["et"]
    assert [(b["min_volume_mm3"], b["max_volume_mm3"], b["detected"]) for b in bins] == [
        (0, 20, 1), (20, 100, 0), (100, None, 2)]  # fmt: skip
    assert main([*argv, "--detection-bins-mm3", "20,0"]) != 0


@pytest.mark.parametrize(
    ("edges", "message"),
    [([], "at least one edge"), ([0, 20, 20], "strictly ascending"), ([100, 20], "strictly ascending"),
     ([-1, 20], "non-negative"), ([0, math.inf], "finite"), ([0, math.nan], "finite"), ("0,20", "not a list"),
     ([0, "x"], "not a list"), ([True], "not a list")],
)  # fmt: skip
def test_bad_bins_are_refused(edges, message):
    with pytest.raises(ConfigError, match=message):
        check_bins(edges)


def test_bad_bins_option_and_config_are_refused():
    assert parse_bins("0, 20,100") == (0.0, 20.0, 100.0)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_bins("0;20")
    with pytest.raises(ConfigError, match="strictly ascending"):
        parse_bins("20,0")
    for bad, message in (([20, 10], "strictly ascending"), ([-1], "minimum"), ([0, math.inf], "finite"),
                         ([], "non-empty")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"compare_detection_bins_mm3.*{message}"):
            brainmets.load_config({"compare_detection_bins_mm3": bad})
