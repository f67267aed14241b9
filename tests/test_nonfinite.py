"""Non-finite numbers in outputs: +inf/-inf written as "Infinity"/"-Infinity" (JSON) or inf/-inf (TSV), NaN as
null / n/a, read back as floats; the per-lesion comparison table's scored HD95 agrees with the summary."""

from __future__ import annotations

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest

import brainmets
from brainmets.cli import main
from brainmets.config import read_features_document, read_json
from brainmets.io.writers import rounded_frame, to_jsonable, tsv_cell, write_json, write_tsv

SHAPE = (30, 30, 30)


def _image(tmp_path, name: str, data: np.ndarray):
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.uint8), np.eye(4)), path)
    return path


def _lesion(corner=(5, 5, 5), size=4) -> np.ndarray:
    a = np.zeros(SHAPE, np.uint8)
    a[tuple(slice(c, c + size) for c in corner)] = 3
    return a


def _compare(tmp_path, reference: np.ndarray, prediction: np.ndarray, metrics: str = "brats2025"):
    """``brainmets compare`` on the pair: its JSON document (as text and parsed) and its TSV rows."""
    ref, pred = _image(tmp_path, "ref", reference), _image(tmp_path, "pred", prediction)
    out, tsv = tmp_path / f"{metrics}.json", tmp_path / f"{metrics}.tsv"
    args = ["compare", "--reference", str(ref), "--prediction", str(pred), "--out-json", str(out)]
    assert main([*args, "--out-tsv", str(tsv), "--metrics", metrics]) == 0
    with open(tsv, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return out.read_text(), json.loads(out.read_text()), rows


@pytest.mark.parametrize(
    ("reference", "prediction", "written"),
    [
        (np.zeros(SHAPE, np.uint8), _lesion(), "Infinity"),  # empty reference: infinitely far, not undefined
        (_lesion(), np.zeros(SHAPE, np.uint8), "Infinity"),  # empty prediction
        (np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8), None),  # both empty: undefined (NaN)
    ],
    ids=["empty-reference", "empty-prediction", "both-empty"],
)
def test_json_keeps_infinity_apart_from_undefined(tmp_path, reference, prediction, written):
    text, document, _ = _compare(tmp_path, reference, prediction)
    et = document["metrics"]["regions"]["et"]
    assert et["global_bin_hd95"] == written and et["sq_hd95"] == written
    assert "NaN" not in text and "Infinity," not in text  # no bare literal: still strict JSON
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
    api = brainmets.compare(_image(tmp_path, "r", reference), _image(tmp_path, "p", prediction))
    value = api["metrics"]["regions"]["et"]["global_bin_hd95"]  # the Python API keeps the float
    assert (value == math.inf) if written else math.isnan(value)
    assert math.isnan(api["metrics"]["regions"]["et"]["sq_hd95_std"])
    back = read_json(tmp_path / "brats2025.json", "brainmets comparison document")
    assert (
        (back["metrics"]["regions"]["et"]["global_bin_hd95"] == math.inf)
        if written
        else (back["metrics"]["regions"]["et"]["global_bin_hd95"] is None)
    )


def test_writers_spell_non_finite_numbers(tmp_path):
    values = {"a": math.inf, "b": -math.inf, "c": math.nan, "d": np.float32(np.inf), "e": 1.23456789, "f": None}
    assert to_jsonable(values) == {
        "a": "Infinity",
        "b": "-Infinity",
        "c": None,
        "d": "Infinity",
        "e": 1.23457,
        "f": None,
    }
    assert [tsv_cell(v) for v in values.values()] == ["inf", "-inf", "n/a", "inf", "1.23457", "n/a"]
    assert tsv_cell([1.0, math.inf]) == "1.0,inf"
    write_tsv(tmp_path / "t.tsv", list(values), [values])
    assert (tmp_path / "t.tsv").read_text().splitlines()[1].split("\t") == [
        "inf",
        "-inf",
        "n/a",
        "inf",
        "1.23457",
        "n/a",
    ]
    write_json(tmp_path / "t.json", {"nested": [values]})
    assert json.loads((tmp_path / "t.json").read_text())["nested"][0]["b"] == "-Infinity"
    back = read_json(tmp_path / "t.json", "document")["nested"][0]
    assert back["a"] == math.inf and back["b"] == -math.inf and back["c"] is None and back["e"] == 1.23457
    frame = rounded_frame([values], list(values), None)  # DataFrames keep real floats
    assert frame["a"][0] == math.inf and frame["b"][0] == -math.inf and math.isnan(frame["c"][0])


def test_parquet_keeps_float_inf_and_nan(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from brainmets.cohort_tables import _write_parquet

    _write_parquet(tmp_path / "t.parquet", ["x"], [{"x": math.inf}, {"x": -math.inf}, {"x": math.nan}, {"x": 2.0}])
    column = pq.read_table(tmp_path / "t.parquet").column("x").to_pylist()
    assert column[:2] == [math.inf, -math.inf] and math.isnan(column[2]) and column[3] == 2.0


def test_a_features_document_with_infinity_reads_back_as_inf(tmp_path):
    document = {
        "study": {"lesion_count": 1, "cumulative_tumor_volume_ml": 1.0, "largest_max_diameter_3d_mm": "Infinity"},
        "lesions": [{"volume_ml": 1.0, "max_diameter_3d_mm": "Infinity", "axial_longest_diameter_mm": 3.0}],
    }
    (tmp_path / "f.json").write_text(json.dumps(document))
    read = read_features_document(tmp_path / "f.json")
    assert read["study"]["largest_max_diameter_3d_mm"] == math.inf
    assert read["lesions"][0]["max_diameter_3d_mm"] == math.inf


def test_the_schema_itself_accepts_the_written_infinity_and_nothing_else():
    """A document as written (the string "Infinity") validates with plain jsonschema against the shipped schema;
    "-Infinity" (a negative size), other strings and negative numbers do not."""
    import jsonschema
    import yaml

    from brainmets.config import schema_path

    schema = yaml.safe_load(schema_path("features_document.schema.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema)

    def errors(value) -> list[str]:
        document = {"study": {"lesion_count": 1, "cumulative_tumor_volume_ml": 1.0, "largest_max_diameter_3d_mm": value},
                    "lesions": [{"volume_ml": 1.0, "max_diameter_3d_mm": value, "axial_longest_diameter_mm": 3.0}]}  # fmt: skip
        return [e.message for e in validator.iter_errors(document)]

    assert (
        errors("Infinity") == [] and errors(12.5) == [] and errors(None) == ["None is not of type 'number', 'string'"]
    )
    for wrong in ("-Infinity", "NaN", "12", -1.0):
        assert errors(wrong), wrong


@pytest.mark.parametrize(("metrics", "penalty"), [("brats2025", 373.0), ("brats2023", 374.0)])
def test_per_lesion_table_scores_hd95_as_the_summary_does(tmp_path, metrics, penalty):
    reference = _lesion((3, 3, 3), 5) | _lesion((15, 15, 15), 5)  # two 125 mm3 (large) lesions
    prediction = _lesion((15, 15, 16), 5) | _lesion((3, 20, 20), 3)  # one matched, one missed, one invented
    _, document, rows = _compare(tmp_path, reference, prediction, metrics)
    et = [r for r in rows if r["region"].lower() == "et"]
    assert sorted(r["kind"] for r in et) == ["invented", "matched", "missed"]
    missed = next(r for r in et if r["kind"] == "missed")
    assert missed["large"] == "true" and missed["hd95_mm"] == "n/a" and float(missed["hd95_mm_scored"]) == penalty
    invented = next(r for r in et if r["kind"] == "invented")
    assert invented["hd95_mm"] == "n/a" and float(invented["hd95_mm_scored"]) == penalty
    matched = next(r for r in et if r["kind"] == "matched")
    assert matched["hd95_mm"] == matched["hd95_mm_scored"] and float(matched["hd95_mm"]) == pytest.approx(1.0)
    scored = [float(r["hd95_mm_scored"]) for r in et]
    if metrics == "brats2025":  # the summary's lesion-wise HD95: large lesions and false positives
        assert document["metrics"]["regions"]["et"]["summary"]["lesionwise_hd95_mean"] == pytest.approx(
            sum(scored) / len(scored), rel=1e-5
        )
    else:
        assert document["metrics"]["regions"]["ET"]["LesionWise_Score_HD95"] == pytest.approx(
            sum(scored) / len(scored), rel=1e-5
        )
