"""The Snakemake workflow end to end on a copy of the bundled cohort plus one corrupt study (run once)."""

import csv
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow.parquet as pq
import pytest

from .conftest import ROOT, workflow_copy
from .hostile import bomb

pytestmark = pytest.mark.workflow
SUBJECTS = ["01", "02", "03", "04", "05", "06"]  # one session each
#: The longitudinal demo: dated sessions of subjects 10, 11 and 12 (test_data/generate.py, LONGITUDINAL).
FOLLOWED = {"10": ["01", "02", "03", "04"], "11": ["01", "02", "03"], "12": ["01", "02"]}
STUDY_COUNT = len(SUBJECTS) + sum(map(len, FOLLOWED.values()))  # the bundled sheet's
#: What the fixture adds: two studies that fail, two whose follow-up fails.
RUN_COUNT = STUDY_COUNT + 4


def snakemake(workdir, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir, capture_output=True, text=True
    )


def _tsv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    """A fresh copy of the workflow, its config and the bundled cohort, with a corrupt 7th study, a bomb 8th,
    and a 13th subject whose two sessions are dated out of order (its follow-up fails), run once with
    --keep-going (as the default profile does)."""
    work = workflow_copy(tmp_path_factory.mktemp("workflow"))
    (work / "test_data" / "cohort" / "sub-07_ses-01_dseg.nii.gz").write_bytes(b"\x1f\x8bnot really gzip")
    bomb(work / "test_data" / "cohort" / "sub-08_ses-01_dseg.nii.gz")  # claims 2048^3 voxels in 100 bytes
    with open(work / "test_data" / "cohort" / "studies.tsv", "a") as fh:
        fh.write("07\t01\tsub-07_ses-01_dseg.nii.gz\t\t\n")
        fh.write("08\t01\tsub-08_ses-01_dseg.nii.gz\t\t\n")
        fh.write("13\t01\tsub-02_ses-01_dseg.nii.gz\t\t\t2024-05-01\t\t\n")
        fh.write("13\t02\tsub-02_ses-01_dseg.nii.gz\t\t\t2024-01-01\t\t\n")
    config = work / "config" / "config.yaml"  # batches of two studies, in sheet order
    config.write_text(config.read_text().replace("batch_size: 25", "batch_size: 2"))
    run = snakemake(work, "--keep-going")
    assert run.returncode == 0, run.stderr[-3000:]
    (work / "run.stderr").write_text(run.stderr)
    return work


def test_every_study_gets_its_outputs(workflow_run):
    for subject in SUBJECTS:
        session = "02" if subject == "05" else "01"
        base = workflow_run / "results" / f"sub-{subject}" / f"ses-{session}" / "anat"
        prefix = f"sub-{subject}_ses-{session}"
        for suffix in (
            "desc-brainmets_features.json",
            "desc-lesions_features.tsv",
            "desc-lesions_features.json",
            "desc-lesions_dseg.nii.gz",
            "desc-lesions_dseg.tsv",
            "desc-lesions_dseg.json",
            "desc-brainmets_indications.json",
            "desc-brainmets_status.json",
            "desc-lesions_overlay.png",
        ):
            assert (base / f"{prefix}_{suffix}").is_file(), suffix
        for step in ("features", "indications"):
            log = workflow_run / "results" / "logs" / step / f"sub-{subject}" / f"ses-{session}" / f"{prefix}.log"
            assert log.is_file()
    batch_log = (workflow_run / "results/logs/features/batch-0004.log").read_text()  # sub-07 and sub-08
    assert "features: 2 of 2 studies completed" in batch_log  # completed = their failures are recorded


def test_a_corrupt_study_fails_alone_and_is_listed(workflow_run):
    status = {r["participant_id"]: r for r in _tsv(workflow_run / "results/group/status.tsv")}
    failed = {s for s, r in status.items() if r["features_status"] != "ok"}
    assert failed == {"sub-07", "sub-08"} and len(status) == len(SUBJECTS) + len(FOLLOWED) + 3
    failed = status["sub-07"]
    assert failed["features_status"] == "failed" and failed["indications_status"] == "not_evaluated"
    assert (
        "sub-07_ses-01_dseg.nii.gz" in failed["features_error"] and "not a readable NIfTI" in failed["features_error"]
    )
    anat = workflow_run / "results/sub-07/ses-01/anat"
    assert sorted(p.name for p in anat.iterdir()) == [
        "sub-07_ses-01_desc-brainmets_indications.json",
        "sub-07_ses-01_desc-brainmets_status.json",
        "sub-07_ses-01_desc-lesions_overlay.png",
        "sub-07_ses-01_desc-lesions_viewer.html",  # the page saying why
    ]  # no features document, nothing half-written
    log = (workflow_run / "results/logs/features/sub-07/ses-01/sub-07_ses-01.log").read_text()
    assert "sub-07_ses-01_dseg.nii.gz: not a readable NIfTI" in log
    assert "sub-07" not in {r["participant_id"] for r in _tsv(workflow_run / "results/group/studies.tsv")}


def test_a_decompression_bomb_fails_its_study_with_a_message(workflow_run):
    """A header claiming 8.6 G voxels: refused before reading (a message, not a job killed for memory)."""
    bombed = {r["participant_id"]: r for r in _tsv(workflow_run / "results/group/status.tsv")}["sub-08"]
    assert bombed["features_status"] == "failed" and bombed["indications_status"] == "not_evaluated"
    assert "sub-08_ses-01_dseg.nii.gz" in bombed["features_error"] and "over the limit" in bombed["features_error"]
    status = json.loads(
        (workflow_run / "results/sub-08/ses-01/anat/sub-08_ses-01_desc-brainmets_status.json").read_text()
    )
    assert status["seconds"] < 1.0


def test_cohort_tables(workflow_run):
    group = workflow_run / "results" / "group"
    assert len(_tsv(group / "studies.tsv")) == RUN_COUNT - 2
    studies = [s for s in _tsv(group / "studies.tsv") if s["participant_id"][4:] in SUBJECTS]
    lesions = [r for r in _tsv(group / "lesions.tsv") if r["participant_id"][4:] in SUBJECTS]
    assert [s["participant_id"][4:] for s in studies] == SUBJECTS
    counts = {s["participant_id"][4:]: int(s["lesion_count"]) for s in studies}
    assert counts == {"01": 1, "02": 3, "03": 12, "04": 0, "05": 1, "06": 2}
    assert len(lesions) == sum(counts.values())
    post_op = next(s for s in studies if s["participant_id"][4:] == "05")
    assert float(post_op["resection_cavity_volume_ml"]) > 5 and post_op["edema_only_component_count"] == "1"
    assert [s["infratentorial_lesion_count"] for s in studies] == ["0", "1", "1", "0", "0", "0"]
    cerebellar = [r for r in lesions if r["location"] == "infratentorial"]
    assert [(r["participant_id"][4:], r["lesion_id"]) for r in cerebellar] == [("02", "2"), ("03", "3")]
    for name in ("lesions", "studies", "indications", "status"):
        table = pq.read_table(group / f"{name}.parquet")
        assert table.num_rows == len(_tsv(group / f"{name}.tsv"))
        assert json.loads((group / f"{name}.json").read_text())
    parquet_lesions = pq.read_table(group / "lesions.parquet").to_pylist()
    assert parquet_lesions[0]["volume_ml"] == pytest.approx(float(lesions[0]["volume_ml"]))


def test_indication_table(workflow_run):
    rows = {r["participant_id"][4:]: r for r in _tsv(workflow_run / "results" / "group" / "indications.tsv")}
    assert set(rows) == set(SUBJECTS) | set(FOLLOWED) | {"13"}
    assert all(r["research_use_only"] == "true" for r in rows.values())
    assert "table1.surgery.3" in rows["01"]["criteria_met"]  # lesion in the toy precentral gyrus
    assert rows["04"]["first_line"] == "none"  # no lesion, no first-line suggestion
    # post-op renal: SRS through radioresistance; not row (ii), as a new lesion means the metastasis was not solitary
    assert rows["05"]["srs_status"] == "indicated" and "table1.srs.1" in rows["05"]["criteria_met"]
    assert "table1.srs.2" not in rows["05"]["criteria_met"] + rows["05"]["criteria_undetermined"]
    assert rows["06"]["no_intervention_status"] == "undetermined"  # sparse clinical row: never guessed


def test_bids_derivatives_dataset_and_figures(workflow_run):
    description = json.loads((workflow_run / "results/dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "brainmets"
    for name in ("lesion_size", "volume_vs_count", "location", "indications"):
        png = (workflow_run / "results/group" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24])[0] > 300


def test_the_results_are_bids_derivatives_the_validator_accepts(workflow_run):
    """The real BIDS validator (bids-validator-deno, offline with its bundled schema): no error. Its one
    warning is TOO_FEW_AUTHORS (brainmets cannot know who made the results)."""
    validator = Path(sys.executable).with_name("bids-validator-deno")
    run = subprocess.run(
        [str(validator), "results", "--format", "json"], cwd=workflow_run, capture_output=True, text=True
    )
    issues = json.loads(run.stdout)["issues"]["issues"]
    assert [i for i in issues if i["severity"] == "error"] == [], run.stdout[:3000]
    assert {i["code"] for i in issues} <= {"TOO_FEW_AUTHORS"}
    assert run.returncode == 0
    description = json.loads((workflow_run / "results/dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["CodeURL"].startswith("https://")
    assert "Sun P, Zhang X" in description["HowToAcknowledge"] and "brainmets" in description["HowToAcknowledge"]
    assert "SourceDatasets" not in description  # none configured: none claimed


def test_pybids_and_pandas_read_the_results_without_surprises(workflow_run):
    from bids import BIDSLayout

    layout = BIDSLayout(workflow_run / "results", validate=False, is_derivative=True)
    assert repr(layout).startswith("BIDS Layout")  # pybids 0.22 crashed here on subject/session dictionaries
    assert layout.get_subjects() == [*SUBJECTS, "07", "08", *FOLLOWED, "13"]  # failed ones keep their status
    maps = layout.get(suffix="dseg", extension=".nii.gz", desc="lesions")
    assert len(maps) == RUN_COUNT - 2 and "lesion_id" in maps[0].get_metadata()["Description"]
    table = layout.get(subject="02", suffix="dseg", extension=".tsv")[0].get_df()
    assert list(table.columns) == ["index", "name"] and list(table["name"]) == ["lesion-1", "lesion-2", "lesion-3"]
    studies = pd.read_csv(workflow_run / "results/group/studies.tsv", sep="\t")
    assert list(studies["participant_id"])[: len(SUBJECTS)] == [f"sub-{s}" for s in SUBJECTS]  # strings, not numbers
    dictionary = json.loads((workflow_run / "results/group/studies.json").read_text())
    assert set(dictionary) == set(studies.columns)
    assert all("LongName" in entry and "Description" in entry for entry in dictionary.values())
    lesions = (workflow_run / "results/group/lesions.tsv").read_text()
    mantissas = [m.replace(".", "").lstrip("0") for m in re.findall(r"(?<![\w.])\d+\.\d+", lesions)]
    assert mantissas and max(len(m.rstrip("0")) for m in mantissas) <= 6  # 6 significant digits: no float noise


def test_dated_sessions_are_followed_up_with_their_known_answers(workflow_run):
    """The longitudinal demo (test_data/generate.py): tracks, events and responses as generated; the latest
    session's indications use the follow-up; a subject whose dates are out of order fails alone."""
    group = workflow_run / "results" / "group"
    responses = {}
    for row in _tsv(group / "responses.tsv"):
        responses.setdefault(row["participant_id"], []).append((row["response"], row["confirmed"]))
    assert responses == {
        "sub-10": [("baseline", "n/a"), ("PR", "false"), ("SD", "n/a"), ("PD", "n/a")],  # past the nadir
        "sub-11": [("baseline", "n/a"), ("SD", "n/a"), ("PD", "n/a")],  # a new lesion
        "sub-12": [("baseline", "n/a"), ("NE", "n/a")],  # no measurable lesion at baseline
    }
    merged = [r for r in _tsv(group / "responses.tsv") if r["participant_id"] == "sub-12"][-1]
    assert merged["progression_by"] == "none" and merged["baseline_session"] == "01"  # 9 + 9 mm merged into 19 mm
    tracks = _tsv(group / "lesion_tracks.tsv")
    assert {"rano_bm_role", "treated_with", "growth_beyond_noise", "growth_percent_per_month_uncertainty"} <= set(
        tracks[0]
    )
    srs = [r for r in tracks if r["participant_id"] == "sub-10" and r["session_id"] == "ses-01"]
    assert [r["treated_with"] for r in srs] == ["srs", "srs"]  # no treated_lesions: every lesion present
    sd = next(r for r in _tsv(group / "responses.tsv") if r["participant_id"] == "sub-10" and r["response"] == "SD")
    assert float(sd["percent_change_from_nadir"]) > 20 and "no target grew >= 5 mm" in sd["reasons"]
    events = {}
    for row in _tsv(group / "lesion_tracks.tsv"):
        events.setdefault(row["participant_id"], []).append((row["session_id"], row["track_id"], row["event"]))
    assert events["sub-11"] == [
        ("ses-01", "1", "baseline"), ("ses-01", "2", "baseline"),
        ("ses-02", "1", "split"), ("ses-02", "2", "resolved"), ("ses-02", "3", "split"),  # shifted 6 mm: transform
        ("ses-03", "1", "persisting"), ("ses-03", "2", "reappeared"), ("ses-03", "3", "persisting"), ("ses-03", "4", "new"),
    ]  # fmt: skip
    assert [e[2] for e in events["sub-12"]] == ["baseline", "baseline", "merged", "merged"]
    latest = json.loads(
        (workflow_run / "results/sub-11/ses-03/anat/sub-11_ses-03_desc-brainmets_indications.json").read_text()
    )
    # after WBRT a lesion new elsewhere is distant progression, not recurrence (issue 21: recurrence was true);
    # the treated lesion that resolved and came back at 7 mm is under the measurable size: equivocal, re-scan
    recurrence = latest["followup"]["facts"]["recurrence_after_wbrt"]
    assert recurrence["used"] is None and "equivocal, re-scan" in recurrence["evidence"]
    assert latest["followup"]["facts"]["distant_intracranial_progression_after_wbrt"]["used"] is True
    assert latest["modalities"]["wbrt"]["status"] == "indicated"  # WBRT (vi): recurrent metastases after WBRT
    assert latest["followup"]["facts"]["cns_progression"]["source"] == "follow-up"
    earlier = json.loads(
        (workflow_run / "results/sub-11/ses-01/anat/sub-11_ses-01_desc-brainmets_indications.json").read_text()
    )
    assert "followup" not in earlier
    status = json.loads((workflow_run / "results/sub-13/sub-13_desc-followup_status.json").read_text())
    assert status["status"] == "failed" and "dates out of order" in status["error"]
    assert not (workflow_run / "results/sub-13/sub-13_desc-followup.json").exists()
    broken = json.loads(
        (workflow_run / "results/sub-13/ses-02/anat/sub-13_ses-02_desc-brainmets_indications.json").read_text()
    )
    assert broken["followup"]["status"] == "failed" and broken["status"] == "evaluated"
    for subject in (*FOLLOWED, "13"):
        png = (workflow_run / "results" / f"sub-{subject}" / f"sub-{subject}_desc-followup_spider.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (group / "swimmer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dictionary = json.loads((group / "responses.json").read_text())
    assert set(dictionary["response"]["Levels"]) == {"baseline", "CR", "PR", "SD", "PD", "NE"}


def test_predictions_in_the_sheet_are_compared(workflow_run):
    """sub-02's model prediction misses its cerebellar lesion and invents one: the comparison tables say so,
    with the infratentorial count and the Table 1 verdicts that change; sub-03's finds all twelve."""
    group = workflow_run / "results" / "group"
    studies = {r["participant_id"]: r for r in _tsv(group / "comparison_studies.tsv")}
    assert set(studies) == {"sub-02", "sub-03"} and studies["sub-02"]["metrics"] == "brats2025"
    assert (studies["sub-02"]["missed_lesion_count"], studies["sub-02"]["invented_lesion_count"]) == ("1", "1")
    assert studies["sub-02"]["infratentorial_lesion_count_difference"] == "-1"
    assert int(studies["sub-02"]["verdict_changes"]) > 0
    assert (studies["sub-03"]["missed_lesion_count"], studies["sub-03"]["invented_lesion_count"]) == ("0", "0")
    assert float(studies["sub-03"]["et_f1"]) == 1.0 and 0.5 < float(studies["sub-03"]["et_lesionwise_dice"]) < 1
    lesions = [r for r in _tsv(group / "comparison_lesions.tsv") if r["participant_id"] == "sub-03"]
    assert len(lesions) == 12 and all(r["agreement"] == "matched" and float(r["dice"]) > 0.5 for r in lesions)
    document = json.loads(
        (workflow_run / "results/sub-02/ses-01/anat/sub-02_ses-01_desc-brainmets_comparison.json").read_text()
    )
    assert document["indications"]["changes"] and document["metrics"]["regions"]["et"]["fp"] == 1
    assert (group / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    detection = _tsv(group / "comparison_detection.tsv")  # per study, region and size bin (brats2025)
    assert {r["participant_id"] for r in detection} == {"sub-02", "sub-03"}
    et = {s: [r for r in detection if r["participant_id"] == s and r["region"] == "et"] for s in ("sub-02", "sub-03")}
    assert [r["bin"] for r in et["sub-03"]] == ["[0, 20)", "[20, 100)", "[100, 1000)", ">= 1000"]
    assert sum(int(r["reference_lesions"]) for r in et["sub-03"]) == 12  # all twelve, all found, none invented
    assert sum(int(r["detected"]) for r in et["sub-03"]) == 12
    assert sum(int(r["false_positives"]) for r in et["sub-03"]) == 0
    assert sum(int(r["false_positives"]) for r in et["sub-02"]) == document["metrics"]["regions"]["et"]["fp"]
    assert sum(int(r["missed"]) for r in et["sub-02"]) == document["metrics"]["regions"]["et"]["fn"]
    assert (group / "detection_by_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    both_sides = [r for r in _tsv(group / "comparison_lesion_table.tsv") if r["participant_id"] == "sub-02"]
    assert len(both_sides) == len(document["lesion_table"]) > 0  # every lesion of both sides, each region
    et_rows = [r for r in both_sides if r["region"] == "et"]
    assert sum(r["detection"] == "fp" for r in et_rows) == document["metrics"]["regions"]["et"]["fp"]
    assert sum(r["detection"] == "fn" for r in et_rows) == document["metrics"]["regions"]["et"]["fn"]


def test_the_run_ends_saying_how_many_studies_failed_and_where(workflow_run):
    last = (workflow_run / "run.stderr").read_text().splitlines()
    summary = [line for line in last if line.startswith(f"brainmets: {RUN_COUNT} studies")]
    warned = {}  # the features step's warnings, as the status documents record them
    for path in sorted((workflow_run / "results").rglob("*_desc-brainmets_status.json")):
        warned[path.name.split("_desc-")[0].replace("_", " ")] = json.loads(path.read_text()).get("warnings", [])
    warnings = [(study, w) for study, found in warned.items() for w in found]
    expected = (
        f"brainmets: {RUN_COUNT} studies: {RUN_COUNT - 2} ok, 2 failed; the failures are listed in results/group/status.tsv "
        "(column features_error), one log per study under results/logs/features/; follow-up of 4 subjects: 3 ok, "
        "1 failed (results/logs/followup/); 11 studies have no row in the clinical table (clinical inputs unknown)"
    )  # the dated sessions of subjects 10 to 13: the demo's clinical table has no row for them
    if warnings:
        expected += f"; {len(warnings)} warnings in {sum(map(bool, warned.values()))} studies"
    assert len(summary) == 1 and summary[0].startswith(expected), summary
    assert summary == [last[-1 - last[::-1].index(summary[0])]] and len(summary[0]) < 1000
    for study, warning in warnings[:3]:
        assert f"{study}: {warning[:60]}" in summary[0]


def test_the_console_says_how_it_goes_in_short_lines(workflow_run):
    """Per-study progress from the main process, throttled, ending with every study; one short line per job;
    no shell command (whose jobs document runs to kilobytes) and no line of a thousand characters."""
    lines = (workflow_run / "run.stderr").read_text().splitlines()
    progress = [line for line in lines if re.fullmatch(r"brainmets: \d+/\d+ studies done \(\d+ failed\)", line)]
    assert progress and progress[-1] == f"brainmets: {RUN_COUNT}/{RUN_COUNT} studies done (2 failed)", progress
    done = [int(line.split()[1].split("/")[0]) for line in progress]
    assert done == sorted(set(done))  # a line only when the count changed
    summary = next(i for i, line in enumerate(lines) if line.startswith(f"brainmets: {RUN_COUNT} studies:"))
    assert lines.index(progress[-1]) < summary  # the progress stops before the last line
    assert [line for line in lines if len(line) > 1000] == []
    assert max(len(line) for line in lines if not line.startswith(f"brainmets: {RUN_COUNT} studies:")) < 300
    assert "Shell command" not in "\n".join(lines) and "--jobs-json" not in "\n".join(lines)
    batch = "brainmets features, batch 0002: 2 studies (sub-03_ses-01 to sub-04_ses-01); logs under results/logs/"
    assert [line for line in lines if line.endswith(f"{batch}features/")] != []
    rerun = snakemake(workflow_run)
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stderr
    assert "studies done" not in rerun.stderr  # nothing made: no progress


def test_failed_studies_can_fail_the_run(workflow_run):
    run = snakemake(workflow_run, "--forcerun", "dataset_description", "--config", "fail_on_failed_studies=True")
    assert run.returncode == 1
    assert "2 studies failed (config fail_on_failed_studies)" in run.stderr
    assert (workflow_run / "results/group/status.tsv").is_file()  # the cohort tables are still written


def test_second_run_has_nothing_to_do(workflow_run):
    run = snakemake(workflow_run, "--dry-run")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def _planned(workdir, *args) -> dict[str, int]:
    """Jobs a dry run would run, by rule."""
    run = snakemake(workdir, "--dry-run", "--quiet", "rules", *args)
    assert run.returncode == 0, run.stderr
    jobs = {}
    for line in (run.stdout + run.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            jobs[parts[0]] = int(parts[1])
    return jobs


def test_changes_rerun_only_what_depends_on_them(workflow_run, tmp_path):
    seg = workflow_run / "test_data/cohort/sub-04_ses-01_dseg.nii.gz"
    original = seg.read_bytes()
    try:
        shutil.copy(workflow_run / "test_data/cohort/sub-06_ses-01_dseg.nii.gz", seg)
        assert _planned(workflow_run) == {
            "features_0002": 1,  # sub-03 and sub-04
            "indications_0002": 1,
            "cohort": 1,
            "cohort_figures": 1,
            "front_page": 1,
            "all": 1,
        }
    finally:
        seg.write_bytes(original)
        Path(seg).touch()
    extra = tmp_path / "stricter.yaml"
    extra.write_text("indications:\n  thresholds:\n    marked_edema_ratio: 1.5\n")
    planned = _planned(workflow_run, "--configfile", "config/config.yaml", str(extra))
    batches = (RUN_COUNT + 1) // 2  # batch_size 2
    assert planned == {f"indications_{b:04d}": 1 for b in range(1, batches + 1)} | {
        "cohort": 1,
        "cohort_figures": 1,
        "front_page": 1,
        "all": 1,
    }


def test_a_study_that_fails_on_a_rerun_keeps_none_of_its_features(workflow_run, tmp_path):
    """sub-01 succeeded; its segmentation is then replaced by a corrupt file. The rerun lists it as failed,
    removes its features, lesion table and instance map (its status document says which), and a temporary file
    a killed job left behind is swept before the first job."""
    work = tmp_path / "rerun"
    shutil.copytree(workflow_run, work, symlinks=True)
    (work / "test_data/cohort/sub-01_ses-01_dseg.nii.gz").write_bytes(b"\x1f\x8bnot gzip any more")
    leftover = work / "results/sub-02/ses-01/anat/.brainmets-k1ll3d.tmp.nii.gz"
    leftover.write_bytes(b"half an instance map")
    os.utime(leftover, (time.time() - 3600,) * 2)  # a killed job's, an hour ago
    orphan = work / "results/sub-02/ses-01/anat/sub-02_ses-01_desc-brainmets_status.json"
    orphan.unlink()  # as Snakemake does to a failed job group's outputs: sub-02's features no longer count
    run = snakemake(work, "--keep-going")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "removed 1 temporary files of killed jobs" in run.stderr and not leftover.exists()
    assert "removed the features of 1 studies that have no status document" in run.stderr
    assert orphan.is_file()  # and its batch ran again
    anat = work / "results/sub-01/ses-01/anat"
    assert sorted(p.name for p in anat.iterdir()) == [
        "sub-01_ses-01_desc-brainmets_indications.json",
        "sub-01_ses-01_desc-brainmets_status.json",
        "sub-01_ses-01_desc-lesions_overlay.png",
        "sub-01_ses-01_desc-lesions_viewer.html",  # the page saying why
    ]
    status = json.loads((anat / "sub-01_ses-01_desc-brainmets_status.json").read_text())
    assert status["status"] == "failed" and {Path(p).name for p in status["removed_outputs"]} == {
        f"sub-01_ses-01_{suffix}"
        for suffix in ("desc-brainmets_features.json", "desc-lesions_features.tsv", "desc-lesions_features.json",
                       "desc-lesions_dseg.nii.gz", "desc-lesions_dseg.tsv", "desc-lesions_dseg.json")
    }  # fmt: skip
    indications = json.loads((anat / "sub-01_ses-01_desc-brainmets_indications.json").read_text())
    assert indications["status"] == "not_evaluated"
    rows = {r["participant_id"]: r for r in _tsv(work / "results/group/status.tsv")}
    assert rows["sub-01"]["features_status"] == "failed"
    assert "sub-01" not in {r["participant_id"] for r in _tsv(work / "results/group/lesions.tsv")}


def _study_commands(workdir, run) -> list[str]:
    """Every study's command of the batches a run with --printshellcmds shows: a batch's shell command names its
    jobs file (the user's way to see them all), which holds each study's arguments."""
    commands = []
    for path in re.findall(r"batch --jobs-file (\S+)", run.stdout + run.stderr):
        jobs = json.loads((workdir / path).read_text())
        commands += [" ".join([jobs["command"], *s["args"], *jobs["common"]]) for s in jobs["studies"]]
    return commands


def test_study_figures_can_be_turned_off(workflow_run):
    """`study_figures: false`: no study picture or spider plot is asked for, drawn or put in the report."""
    shown = snakemake(workflow_run, "--dry-run", "--forceall", "--printshellcmds")
    commands = _study_commands(workflow_run, shown)
    followed = len(FOLLOWED) + 1  # and subject 13
    assert shown.returncode == 0 and len(commands) == 2 * RUN_COUNT + followed + 2  # and 2 compared
    assert sum("--out-figure" in c and "desc-lesions_overlay.png" in c for c in commands) == RUN_COUNT
    assert sum("--out-figure" in c and "_spider.png" in c for c in commands) == followed
    run = snakemake(workflow_run, "--dry-run", "--forceall", "--printshellcmds", "--config", "study_figures=False")
    assert run.returncode == 0, run.stderr[-2000:]
    commands = _study_commands(workflow_run, run)
    assert commands and not any("--out-figure" in c or "overlay.png" in c or "spider.png" in c for c in commands)
    assert "overlay.png" not in run.stdout and "spider.png" not in run.stdout


def test_lint_is_clean():
    run = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# ---- the HTML report, opened in a headless browser ----------------------------------------------------


def _browser():
    """Debian's chromium driven by its chromedriver (skip where they are not installed)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium and chromedriver are not installed (Debian packages chromium, chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--use-angle=swiftshader",  # WebGL2 for the viewer pages, in software
        "--enable-unsafe-swiftshader",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def _front_page_answers_how_the_run_went(work, browser):
    """The report's front page: the run's counts (as the cohort tables and the documents have them), the failed
    studies, a row and a link per study; a study's link shows its picture."""
    from selenium.webdriver.common.by import By

    status = _tsv(work / "results/group/status.tsv")
    lesions = sum(int(r["lesion_count"]) for r in status if r["features_status"] == "ok")
    warnings = [w for p in (work / "results").rglob("*_desc-brainmets_status.json")
                for w in json.loads(p.read_text()).get("warnings", [])]  # fmt: skip
    page = browser.execute_script("return document.body.innerText")  # also what is scrolled out of view
    front = " ".join(page[page.index("How the run went") : page.index("About these results")].split())
    assert f"Studies: {RUN_COUNT}: {RUN_COUNT - 2} ok, 2 failed (listed below" in front
    assert "Follow-up: 4 subjects: 3 ok, 1 failed (sub-10, sub-11, sub-12, sub-13)" in front
    assert (f"Warnings: {len(warnings)} in" if warnings else "Warnings: none") in front
    assert f"Clinical table: 11 of {RUN_COUNT - 2} evaluated studies have no row" in front
    assert f"Lesions: {lesions} in {RUN_COUNT - 2} studies, per study median " in front
    assert f"Table 1: studies where it is indicated, of {RUN_COUNT - 2} evaluated: SRS " in front
    assert "sub-07 ses-01: " in front and "not a readable NIfTI" in front and "sub-08 ses-01: " in front
    rows = [" ".join(r.get_attribute("innerText").split()) for r in browser.find_elements(By.XPATH, "//tr[td]")]
    rows = [r for r in rows if r.startswith("sub-")]
    assert len(rows) == RUN_COUNT and rows[0].startswith(f"sub-01 ses-01 ok {status[0]['lesion_count']} ")
    assert sum(" failed " in f" {r} " for r in rows) == 2
    viewers = [a.get_attribute("href") for a in browser.find_elements(By.XPATH, "//a[normalize-space(.)='open']")]
    assert len(viewers) == RUN_COUNT and all(h.endswith("_desc-lesions_viewer.html") for h in viewers)
    assert all(Path(unquote(urlparse(h).path)).is_file() for h in viewers)  # each study's page, beside the report
    links = browser.find_elements(By.XPATH, "//a[starts-with(@href, 'javascript:app.showResultInfo')]")
    assert len(links) == RUN_COUNT + 2 + 4 + 7  # each study (the failed ones twice), follow-ups, cohort figures
    browser.find_element(By.XPATH, "//a[normalize-space(.)='sub-02 ses-01']").click()  # the study's result panel
    time.sleep(1)
    panel = browser.execute_script("return document.body.innerText")
    assert "results/sub-02/ses-01/anat/sub-02_ses-01_desc-lesions_overlay.png" in panel
    assert "Axial slices" in panel  # its caption
    next(a for a in browser.find_elements(By.XPATH, "//a[@iconname='eye']") if a.is_displayed()).click()
    time.sleep(1)
    shown = [i for i in browser.find_elements(By.TAG_NAME, "img") if "data:image/png" in i.get_attribute("src")]
    assert shown and browser.execute_script("return arguments[0].naturalWidth", shown[-1]) > 100


def test_report_opens_and_shows_the_figures(workflow_run):
    import time

    from selenium.webdriver.common.by import By

    report = workflow_run / "report.html"
    run = snakemake(workflow_run, "--report", str(report))
    assert run.returncode == 0, run.stderr[-2000:]
    browser = _browser()
    try:
        browser.get(report.as_uri())
        time.sleep(2)
        assert "Research use only" in browser.find_element(By.TAG_NAME, "body").text
        _front_page_answers_how_the_run_went(workflow_run, browser)
        browser.get(report.as_uri())
        time.sleep(2)
        expected = {
            "Cohort": [
                "comparison",
                "detection by size",
                "indications",
                "lesion size",
                "location",
                "swimmer",
                "volume vs count",
            ],
            "Studies": None,
            "Follow-up": [f"sub-{s}" for s in [*FOLLOWED, "13"]],
        }
        for category, entries in expected.items():
            browser.find_element(By.XPATH, f"//a[normalize-space(.)='{category}']").click()
            time.sleep(1)
            rows = browser.find_elements(By.XPATH, "//tr[td][not(ancestor::div[@class='document'])]")  # no front page
            names = [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows]
            if entries:
                assert names == entries
            else:
                assert len(names) == RUN_COUNT  # one picture per study, the failed ones included
            for row in rows:
                row.find_element(By.XPATH, ".//a[@iconname='eye']").click()
                time.sleep(0.5)
                shown = [
                    img
                    for img in browser.find_elements(By.TAG_NAME, "img")
                    if img.get_attribute("src").startswith("data:image/png")
                ]
                assert shown, f"{category}: no picture shown for {row.text}"
                assert browser.execute_script("return arguments[0].naturalWidth", shown[-1]) > 100
            browser.find_element(By.XPATH, "//a[normalize-space(.)='Results']").click()
            time.sleep(0.5)
        _a_viewer_page_goes_to_each_lesion(workflow_run, browser)
    finally:
        browser.quit()


def _a_viewer_page_goes_to_each_lesion(work, browser):
    """sub-02 ses-01's viewer page, as the workflow wrote it: it renders with WebGL2 and each row of its lesion
    table moves NiiVue's crosshair to that lesion's centroid in the study's lesion table (within a voxel)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    anat = work / "results/sub-02/ses-01/anat"
    browser.get((anat / "sub-02_ses-01_desc-lesions_viewer.html").as_uri())
    if not browser.execute_script("return !!document.createElement('canvas').getContext('webgl2')"):
        pytest.skip("this chromium gives no WebGL2 context (SwiftShader missing?)")
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return !!(window.bmViewer && bmViewer.ready)"))
    lesions = _tsv(anat / "sub-02_ses-01_desc-lesions_features.tsv")
    assert len(lesions) == 3
    for lesion in lesions:
        browser.find_element(By.CSS_SELECTOR, f"#rows tr[data-id='{lesion['lesion_id']}']").click()
        mm = browser.execute_script("return Array.from(bmViewer.nv.frac2mm(bmViewer.nv.scene.crosshairPos))")
        centroid = [float(lesion[f"centroid_{c}_mm"]) for c in "xyz"]
        assert max(abs(a - b) for a, b in zip(mm[:3], centroid)) <= 1.0  # the 1 mm grid's voxel


def test_bids_folder_discovery(tmp_path):
    """Studies found in sub-*/[ses-*/]anat/, with and without sessions, with a parcellation when present."""
    cohort = ROOT / "test_data" / "cohort"
    with_session = tmp_path / "bids" / "sub-a1" / "ses-pre" / "anat"
    without = tmp_path / "bids" / "sub-b2" / "anat"
    for folder in (with_session, without):
        folder.mkdir(parents=True)
    shutil.copy(cohort / "sub-02_ses-01_dseg.nii.gz", with_session / "sub-a1_ses-pre_dseg.nii.gz")
    shutil.copy(cohort / "toy_aseg.nii.gz", with_session / "sub-a1_ses-pre_desc-aseg_dseg.nii.gz")
    shutil.copy(cohort / "sub-04_ses-01_dseg.nii.gz", without / "sub-b2_dseg.nii.gz")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(f"bids_dir: {tmp_path / 'bids'}\nclinical: null\n")

    def run_snakemake(*args):
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)

    run = run_snakemake("--cores", "2")
    assert run.returncode == 0, run.stderr[-2000:]
    status = {(r["participant_id"], r["session_id"]): r for r in _tsv(tmp_path / "results/group/status.tsv")}
    assert set(status) == {("sub-a1", "ses-pre"), ("sub-b2", "n/a")} and all(
        r["features_status"] == "ok" for r in status.values()
    )
    document = json.loads(
        (tmp_path / "results/sub-a1/ses-pre/anat/sub-a1_ses-pre_desc-brainmets_features.json").read_text()
    )
    assert document["study"]["infratentorial_lesion_count"] == 1  # located with the discovered parcellation
    assert (tmp_path / "results/sub-b2/anat/sub-b2_desc-brainmets_indications.json").is_file()
    shutil.copy(cohort / "sub-03_ses-01_dseg.nii.gz", without / "sub-b2_desc-other_dseg.nii.gz")
    run = run_snakemake("-n")
    assert run.returncode != 0 and "more than one segmentation matches" in run.stdout + run.stderr
    (without / "sub-b2_desc-other_dseg.nii.gz").unlink()
    odd = tmp_path / "bids" / "sub-c_3" / "anat"  # an underscore: not a BIDS label, and never a path part
    odd.mkdir(parents=True)
    shutil.copy(cohort / "sub-04_ses-01_dseg.nii.gz", odd / "sub-c_3_dseg.nii.gz")
    run = run_snakemake("-n")
    assert run.returncode != 0 and "subject 'c_3' is not a BIDS label" in run.stdout + run.stderr


def test_a_users_own_sheet_takes_nothing_from_the_demo(tmp_path):
    """A user's three studies (a binary model mask, a custom scheme spec, a BraTS-METS map) given with
    --config studies=...: they run, the binary mask is read as binary with a warning, and nothing under the
    results or logs mentions the demo's clinical table."""
    import nibabel as nib
    import numpy as np

    work = workflow_copy(tmp_path / "work")
    mine = tmp_path / "mine"
    mine.mkdir()
    source = nib.load(ROOT / "test_data" / "cohort" / "sub-02_ses-01_dseg.nii.gz")
    labels = np.asanyarray(source.dataobj)
    nib.save(nib.Nifti1Image((labels > 0).astype(np.uint8), source.affine), mine / "a_mask.nii.gz")
    remapped = np.choose(labels, [0, 6, 7, 5, 0]).astype(np.uint8)  # necrotic 6, edema 7, enhancing 5
    nib.save(nib.Nifti1Image(remapped, source.affine), mine / "b_custom.nii.gz")
    nib.save(source, mine / "c_brats.nii.gz")
    (mine / "my.tsv").write_text(
        "subject\tsegmentation\tlabel_scheme\n"
        "a\ta_mask.nii.gz\t\n"
        "b\tb_custom.nii.gz\tenhancing=5;necrotic=6;edema=7\n"
        "c\tc_brats.nii.gz\tbrats-mets-2023\n"
    )
    run = snakemake(work, "--config", f"studies={mine / 'my.tsv'}", "results_dir=mine_results")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "brainmets: 3 studies: 3 ok, 0 failed" in run.stderr
    assert "running the bundled demo" not in run.stderr
    results = work / "mine_results"
    features = {s: json.loads(next(results.glob(f"sub-{s}/anat/*_desc-brainmets_features.json")).read_text())
                for s in "abc"}  # fmt: skip
    assert features["a"]["provenance"]["label_scheme"] == "binary"
    assert any("read as a binary tumour mask" in w for w in features["a"]["provenance"]["warnings"])
    assert (
        features["b"]["study"]["cumulative_enhancing_volume_ml"]
        == features["c"]["study"]["cumulative_enhancing_volume_ml"]
    )
    assert features["b"]["study"]["total_edema_volume_ml"] == features["c"]["study"]["total_edema_volume_ml"] > 0
    mentions = [p for p in [*results.rglob("*"), *(work / ".snakemake" / "log").rglob("*")]
                if p.is_file() and b"test_data/cohort/clinical.tsv" in p.read_bytes()]  # fmt: skip
    assert mentions == []
    indications = json.loads(next(results.glob("sub-a/anat/*_desc-brainmets_indications.json")).read_text())
    assert "age_years" in indications["missing_inputs"]  # imaging only: no clinical table was given


def test_a_bad_cell_of_the_studies_sheet_stops_the_run_with_one_line(tmp_path):
    work = workflow_copy(tmp_path / "work")
    sheet = tmp_path / "my.tsv"
    sheet.write_text("subject\tsegmentation\tlabel_scheme\na\ta.nii.gz\t\nb\tb.nii.gz\tenhancing=3;tumour=1\n")
    run = snakemake(work, "-n", "--config", f"studies={sheet}")
    assert run.returncode != 0
    assert f"{sheet}: row 2 (subject b), column label_scheme: custom label scheme: unknown role 'tumour'" in (
        run.stdout + run.stderr
    )


def test_the_workflow_exports_dicom_seg_and_rtstruct_numbered_by_track(tmp_path):
    """`export: [dicom-seg, rtstruct]` on a study without lesions and a subject followed over four sessions: every
    export status is ok (the empty study's says nothing was written), each followed session's SEG gives a lesion
    the same Tracking ID and UID in every session and its RTSTRUCT ROI the track's number, the SEG reads back to
    the lesion table's volumes, and no identifier is invented (the derived series' patient is empty)."""
    import pydicom

    work = workflow_copy(tmp_path / "work")
    sheet = work / "test_data" / "cohort" / "studies.tsv"
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.startswith(("04\t", "10\t")))]) + "\n")
    run = snakemake(work, "--config", "export=[dicom-seg,rtstruct]", "study_figures=False", "study_viewers=False")
    assert run.returncode == 0, run.stderr[-3000:]
    statuses = sorted((work / "results").rglob("*_desc-*_status.json"))
    exports = [json.loads(p.read_text()) for p in statuses if "dicomseg" in p.name or "rtstruct" in p.name]
    assert len(exports) == 10 and all(d["status"] == "ok" for d in exports)
    empty = work / "results/sub-04/ses-01/anat"
    assert (
        "no lesion: no dicom-seg written"
        in json.loads((empty / "sub-04_ses-01_desc-dicomseg_status.json").read_text())["warnings"][0]
    )
    assert not list(empty.glob("*.dcm"))
    uids = {}
    for session in ("01", "02", "03", "04"):
        anat = work / f"results/sub-10/ses-{session}/anat"
        seg = pydicom.dcmread(anat / f"sub-10_ses-{session}_desc-lesions_seg.dcm")
        assert str(seg.PatientName) == "" and seg.PatientID == ""
        for segment in seg.SegmentSequence:
            uids.setdefault(segment.TrackingID, set()).add(segment.TrackingUID)
        rois = pydicom.dcmread(anat / f"sub-10_ses-{session}_desc-lesions_rtstruct.dcm").StructureSetROISequence
        tracks = {int(r.ROINumber) for r in rois}
        assert tracks == {int(t.removeprefix("lesion ")) for t in {s.TrackingID for s in seg.SegmentSequence}}
        table = _tsv(anat / f"sub-10_ses-{session}_desc-lesions_features.tsv")
        rerun = tmp_path / f"back_{session}.tsv"
        done = subprocess.run([sys.executable, "-m", "brainmets", "features", "-q",
                               str(anat / f"sub-10_ses-{session}_desc-lesions_seg.dcm"), "--reference-series",
                               str(anat / f"sub-10_ses-{session}_desc-lesions_seg_series"), "--out-tsv", str(rerun)],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert sorted(r["volume_ml"] for r in _tsv(rerun)) == sorted(r["volume_ml"] for r in table)
    assert set(uids) == {"lesion 1", "lesion 2"}  # sub-10's two lesions, followed over the four sessions
    assert all(len(u) == 1 for u in uids.values())  # one Tracking UID per track, in every session
