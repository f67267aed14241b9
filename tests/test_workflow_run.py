"""brainmets.workflow.run: a run's start (temporary files swept, unsupported features removed, SLURM handled)
and end (the summary line, failed studies failing the run on request), with a fake `workflow`; no Snakemake."""

from __future__ import annotations

import json
import os
import shlex
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from brainmets.config import validate_config
from brainmets.io import bids
from brainmets.workflow import run, slurm
from brainmets.workflow.plan import Plan
from brainmets.workflow.studies import prepare

ROWS = [
    {"subject": "01", "session": "01", "segmentation": "a.nii.gz", "date": "2024-01-01"},
    {"subject": "01", "session": "02", "segmentation": "b.nii.gz", "date": "2024-02-01"},
    {"subject": "02", "segmentation": "c.nii.gz"},
]


def make_plan(results, **config) -> Plan:
    settings = {"studies": "s.tsv", "results_dir": str(results), **config}
    return Plan(validate_config(settings), prepare(pd.DataFrame(ROWS, dtype=str).fillna(""), "s.tsv"))


def write(path: str, document: dict | None = None) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document or {}, fh)
    return path


def test_the_brainmets_command_is_the_one_beside_python_unless_conda(tmp_path):
    python = tmp_path / "bin" / "python"
    assert run.brainmets_command([], str(python)) == "brainmets"  # none beside it: the PATH's
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "brainmets").write_text("")
    assert run.brainmets_command(["DeploymentMethod.APPTAINER"], str(python)) == shlex.quote(
        str(tmp_path / "bin" / "brainmets")
    )
    assert run.brainmets_command(["DeploymentMethod.CONDA"], str(python)) == "brainmets"


def test_features_without_a_status_document_are_removed(tmp_path):
    plan = make_plan(tmp_path / "res")
    kept = [write(plan.study_file("sub-01_ses-01", s)) for s in (bids.STATUS, *bids.FEATURE_SUFFIXES)]
    orphans = [write(plan.study_file("sub-02", s)) for s in bids.FEATURE_SUFFIXES[:3]]
    picture = write(plan.study_file("sub-02", bids.OVERLAY))
    said = []
    assert run.remove_unsupported_features(plan, said.append) == ["sub-02"]
    assert all(os.path.isfile(p) for p in kept) and not any(os.path.exists(p) for p in orphans)
    assert os.path.isfile(picture)  # not a feature: the picture of a failed study stays
    assert said == [
        "brainmets: removed the features of 1 studies that have no status document (their job did not finish): sub-02"
    ]
    assert run.remove_unsupported_features(plan, said.append) == [] and len(said) == 1


def test_the_run_summary_counts_the_studies_and_follow_ups(tmp_path):
    plan = make_plan(tmp_path / "res")
    write(plan.study_file("sub-01_ses-01", bids.STATUS), {"status": "ok", "warnings": ["odd spacing"]})
    write(plan.study_file("sub-01_ses-02", bids.STATUS), {"status": "failed"})
    write(plan.subject_file("01", bids.FOLLOWUP_STATUS), {"status": "ok"})
    res = plan.results
    line, failed = run.run_summary(plan)
    assert failed == 1
    assert line == (
        f"brainmets: 3 studies: 1 ok, 1 failed, 1 not run; the failures are listed in {res}/group/status.tsv (column "
        f"features_error), one log per study under {res}/logs/features/; follow-up of 1 subjects: 1 ok, 0 failed; "
        f"1 warnings in 1 studies (in their logs under {res}/logs/features/): sub-01 ses-01: odd spacing"
    )
    unfollowed = Plan(validate_config({"bids_dir": "b", "results_dir": res}), plan.studies)
    assert "follow-up" not in run.run_summary(unfollowed)[0]


def test_the_run_report_ends_with_the_summary_and_may_fail_the_run(tmp_path):
    plan = make_plan(tmp_path / "res", fail_on_failed_studies=True)
    write(plan.study_file("sub-02", bids.STATUS), {"status": "failed"})
    orphan = write(plan.study_file("sub-01_ses-01", bids.FEATURES))
    said = []
    with pytest.raises(SystemExit) as stop:
        run.report_run(plan, succeeded=True, say=said.append)
    assert stop.value.code == 1 and os.path.isfile(orphan)  # a run that succeeded removes nothing
    assert said[0].startswith("brainmets: 3 studies: 0 ok, 1 failed, 2 not run;")
    assert said[1] == "brainmets: exiting with an error: 1 studies failed (config fail_on_failed_studies)"
    said.clear()
    assert run.report_run(plan, succeeded=False, say=said.append) == 1  # the run failed already: no SystemExit
    assert not os.path.exists(orphan) and said[0].startswith("brainmets: removed the features of 1 studies")
    assert run.report_run(make_plan(plan.results), succeeded=True, say=said.append) == 1


def test_the_run_starts_by_sweeping_temporary_files_of_killed_jobs(tmp_path, monkeypatch):
    plan = make_plan(tmp_path / "res")
    old = write(f"{plan.results}/sub-02/anat/.brainmets-abc.tmp.json")
    fresh = write(f"{plan.results}/sub-02/anat/.brainmets-def.tmp.json")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    monkeypatch.setattr(slurm, "accounting_disabled", lambda: pytest.fail("sacct asked off SLURM"))
    said = []
    workflow = SimpleNamespace(executor_settings=None, is_main_process=False)
    run.prepare_run(plan, workflow, said.append)
    assert not os.path.exists(old) and os.path.exists(fresh)
    assert said == [f"brainmets: removed 1 temporary files of killed jobs under {plan.results}/: {old}"]
    run.prepare_run(make_plan(tmp_path / "absent"), workflow, said.append)  # no results folder yet
    assert len(said) == 1


def test_a_slurm_setting_problem_stops_the_run_as_a_workflow_error(tmp_path, monkeypatch):
    from snakemake.exceptions import WorkflowError

    monkeypatch.setattr(slurm, "accounting_disabled", lambda: "sacct: accounting storage is disabled")
    monkeypatch.setattr(slurm, "min_job_age", lambda: 60)
    settings = SimpleNamespace(status_command="sacct", init_seconds_before_status_checks=40)
    said = []
    with pytest.raises(WorkflowError, match="MinJobAge is 60 s, below 3 x the first status check's delay"):
        run.prepare_run(make_plan(tmp_path / "res"), SimpleNamespace(executor_settings=settings), said.append)
    assert settings.status_command == "squeue" and "keeps no job accounting" in said[0]


def test_the_progress_lines_start_for_the_studies_this_run_makes(tmp_path, monkeypatch):
    from brainmets.workflow import progress

    plan = make_plan(tmp_path / "res")
    wanted = plan.study_file("sub-02", bids.STATUS)
    job = SimpleNamespace(output=[wanted, plan.study_file("sub-02", bids.FEATURES)])
    workflow = SimpleNamespace(executor_settings=None, dag=SimpleNamespace(needrun_jobs=lambda: [job]))
    started = {}
    monkeypatch.setattr(progress, "start", lambda paths, emit: started.update(paths=paths))
    run.prepare_run(plan, workflow, lambda line: None)
    assert started == {"paths": [wanted]}
