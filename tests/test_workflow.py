"""The Snakemake workflow end to end on a copy of the bundled cohort (run once per test session)."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.workflow


def snakemake(workdir, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    """A fresh copy of the workflow, its config and the bundled cohort, run once."""
    work = tmp_path_factory.mktemp("workflow")
    shutil.copy(ROOT / "Snakefile", work)
    for folder in ("workflow", "config"):
        shutil.copytree(ROOT / folder, work / folder)
    shutil.copytree(ROOT / "test_data" / "cohort", work / "test_data" / "cohort")  # segmentations, clinical table
    run = snakemake(work)
    assert run.returncode == 0, run.stderr[-3000:]
    return work


def _tsv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_study_gets_its_outputs(workflow_run):
    sheet = _tsv(workflow_run / "config" / "studies.tsv")
    for row in sheet:
        base = workflow_run / "results" / f"sub-{row['subject']}" / f"ses-{row['session']}" / "anat"
        prefix = f"sub-{row['subject']}_ses-{row['session']}"
        for suffix in (
            "desc-brainmets_features.json",
            "desc-lesions_features.tsv",
            "desc-lesions_features.json",
            "desc-lesions_dseg.nii.gz",
        ):
            assert (base / f"{prefix}_{suffix}").is_file()
        log = workflow_run / "results" / "logs" / "features" / f"sub-{row['subject']}" / f"ses-{row['session']}"
        assert (log / f"{prefix}.log").is_file()


def test_cohort_tables(workflow_run):
    studies = _tsv(workflow_run / "results" / "group" / "studies.tsv")
    lesions = _tsv(workflow_run / "results" / "group" / "lesions.tsv")
    assert [s["subject"] for s in studies] == ["01", "02", "03", "04", "05", "06"]
    counts = {s["subject"]: int(s["lesion_count"]) for s in studies}
    assert counts == {"01": 1, "02": 3, "03": 12, "04": 0, "05": 1, "06": 2}
    assert len(lesions) == sum(counts.values())
    post_op = next(s for s in studies if s["subject"] == "05")
    assert float(post_op["resection_cavity_volume_ml"]) > 5 and post_op["edema_only_component_count"] == "1"
    assert [s["infratentorial_lesion_count"] for s in studies] == ["0", "1", "1", "0", "0", "0"]
    cerebellar = [r for r in lesions if r["location"] == "infratentorial"]
    assert [(r["subject"], r["lesion_id"]) for r in cerebellar] == [("02", "2"), ("03", "3")]
    assert all(float(r["distance_to_fourth_ventricle_mm"]) < 30 for r in cerebellar)
    brats2021 = json.loads(
        (workflow_run / "results/sub-06/ses-01/anat/sub-06_ses-01_desc-brainmets_features.json").read_text()
    )
    assert brats2021["provenance"]["label_scheme"] == "brats-2021"


def test_indication_table(workflow_run):
    rows = {r["subject"]: r for r in _tsv(workflow_run / "results" / "group" / "indications.tsv")}
    assert set(rows) == {"01", "02", "03", "04", "05", "06"}
    assert all(r["research_use_only"] == "true" for r in rows.values())
    assert "table1.surgery.3" in rows["01"]["criteria_met"]  # lesion in the toy precentral gyrus
    assert rows["04"]["first_line"] == "none"  # no lesion, no first-line suggestion
    assert rows["05"]["srs_status"] == "indicated" and "table1.srs.2" in rows["05"]["criteria_met"]  # post-op
    assert rows["06"]["no_intervention_status"] == "undetermined"  # sparse clinical row: never guessed
    document = json.loads((workflow_run / "results/sub-02/ses-01/anat/sub-02_ses-01_desc-indications.json").read_text())
    assert document["provenance"]["clinical_row_found"] is True


def test_second_run_has_nothing_to_do(workflow_run):
    run = snakemake(workflow_run, "--dry-run")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def test_lint_is_clean():
    run = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
