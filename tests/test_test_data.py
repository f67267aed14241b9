"""The committed test data are exactly what test_data/generate.py makes, and the studies sheet lists them."""

import csv
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from .conftest import ROOT, TEST_DATA


@pytest.mark.slow
def test_generator_reproduces_the_committed_files(tmp_path):
    subprocess.run([sys.executable, str(TEST_DATA / "generate.py"), str(tmp_path)], check=True)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(TEST_DATA) for p in TEST_DATA.rglob("*") if p.is_file() and p.name != "generate.py"
    )
    assert made == committed
    for rel in made:
        if rel.suffix == ".json":
            assert json.loads((tmp_path / rel).read_text()) == json.loads((TEST_DATA / rel).read_text())
        elif rel.suffix in (".tsv", ".txt"):
            assert (tmp_path / rel).read_text() == (TEST_DATA / rel).read_text()
        else:
            new, old = nib.load(tmp_path / rel), nib.load(TEST_DATA / rel)
            assert np.array_equal(np.asanyarray(new.dataobj), np.asanyarray(old.dataobj)), rel
            assert np.allclose(new.affine, old.affine), rel


def test_studies_sheet_lists_the_bundled_cohort():
    sheet = TEST_DATA / "cohort" / "studies.tsv"
    with open(sheet, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    listed = {(sheet.parent / r["segmentation"]).resolve() for r in rows}
    assert listed == {p.resolve() for p in (TEST_DATA / "cohort").glob("sub-*_dseg.nii.gz")}
    assert {(sheet.parent / r["parcellation"]).resolve() for r in rows} == {(TEST_DATA / "cohort/toy_aseg.nii.gz")}


def test_the_demo_config_names_the_bundled_cohort():
    """What the quick start runs (the README's quick start; tests/test_docs.py checks that it is what .ci/run runs):
    config/demo.yaml names the bundled sheet, 15 studies of 9 patients, and a clinical table of some of them."""
    import yaml

    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    assert (ROOT / demo["studies"]).resolve() == (TEST_DATA / "cohort" / "studies.tsv").resolve()
    with open(ROOT / demo["studies"], newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 15 and len({r["subject"] for r in rows}) == 9
    with open(ROOT / demo["clinical"], newline="") as fh:
        clinical = {r["subject"] for r in csv.DictReader(fh, delimiter="\t")}
    assert clinical and clinical < {r["subject"] for r in rows}
