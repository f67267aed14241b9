"""The workflow on a real single-node SLURM (Debian's slurm-wlm and munge, no accounting database), with the
README's command: the same tables as a local run, the submissions and limits the README promises, a corrupt
study failed alone, and nothing left behind by a cancelled batch.

Skipped where SLURM cannot be found or installed (apt-get as root); `.ci/run` installs it."""

import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import workflow_copy
from .slurm_cluster import SlurmCluster, install_with_apt

pytestmark = pytest.mark.slurm

BATCH_SIZE = 6
#: Status polling fast enough for a test (the plugin's default waits 40 s before the first check).
FAST_POLLING = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
TEMPORARY = ".brainmets-*.tmp*"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = install_with_apt()
    if reason:
        pytest.skip(f"no SLURM here: {reason}")
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))  # short: munge's socket path has 108 bytes at most
    slurm = SlurmCluster(root, partitions=("main", "big"))
    try:
        slurm.start()
    except RuntimeError as exc:
        slurm.stop()
        pytest.skip(f"SLURM would not start here: {exc}")
    yield slurm
    slurm.stop()
    shutil.rmtree(root, ignore_errors=True)


def project(work: Path) -> Path:
    """A fresh copy of the workflow and the demo cohort, in batches of BATCH_SIZE, plus one corrupt study."""
    workflow_copy(work)
    (work / "test_data" / "cohort" / "sub-07_ses-01_dseg.nii.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with open(work / "test_data" / "cohort" / "studies.tsv", "a") as fh:
        fh.write("07\t01\tsub-07_ses-01_dseg.nii.gz\t\t\n")
    config = work / "config" / "config.yaml"
    config.write_text(config.read_text().replace("batch_size: 25", f"batch_size: {BATCH_SIZE}"))
    return work


def snakemake(work: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=work, capture_output=True, text=True,
                          env=env, timeout=900)  # fmt: skip


def group_tables(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work / "results" / "group").glob("*")) if p.suffix != ".png"}


def minutes(limit: str) -> int:
    """squeue's time limit ([days-]hours:minutes:seconds or minutes:seconds) in minutes."""
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return (int(days or 0) * 86400 + seconds) // 60


def expected_submissions(studies: int, sessions_followed: int, compared: int, documents: int) -> dict[str, dict]:
    """What the workflow's rules ask for (their `resources:`, tabled in docs/workflow.md, "Report, profiles and
    resources"): rule name (the plugin's job comment) -> (count, minutes, MB)."""
    batches = [min(BATCH_SIZE, studies - i) for i in range(0, studies, BATCH_SIZE)]
    group = {}
    for n in batches:  # a group's jobs run one after the other: their times add up, the largest memory counts
        key = (10 + math.ceil(n * 0.25) + 5 + math.ceil(n * 0.05), 2000)
        group[key] = group.get(key, 0) + 1
    return {
        "batch": group,
        "followup": {(10 + math.ceil(sessions_followed * 0.5), 3000): 1},
        "compare": {(10 + math.ceil(compared * 0.5), 4000): 1},
        "cohort": {(10 + math.ceil(documents / 2000), 1000 + documents // 10): 1},
        "cohort_figures": {(10, 1000 + studies // 20): 1},
    }


def submissions(jobs: list[dict]) -> dict[str, dict]:
    seen: dict[str, dict] = {}
    for job in jobs:
        rule = re.sub(r"^rule_", "", job["comment"])
        kind = "batch" if rule.startswith("batch_") else re.sub(r"_\d{4}$", "", rule)
        key = (minutes(job["time_limit"]), int(job["memory"].rstrip("M")))
        seen.setdefault(kind, {}).setdefault(key, 0)
        seen[kind][key] += 1
    return seen


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    work = project(tmp_path_factory.mktemp("local"))
    run = snakemake(work, "--cores", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def slurm_run(cluster, local_run, tmp_path_factory):
    work = project(tmp_path_factory.mktemp("slurm"))
    before = {job["id"] for job in cluster.jobs()}
    run = snakemake(work, "--profile", "profiles/slurm", *FAST_POLLING, env=cluster.env)
    jobs = [job for job in cluster.jobs() if job["id"] not in before]
    return work, run, jobs


def test_the_readme_command_runs_the_cohort_on_slurm(slurm_run, local_run):
    work, run, jobs = slurm_run
    assert run.returncode == 0, run.stderr[-3000:]
    # no accounting database here: the workflow switched the plugin to squeue instead of waiting forever
    assert "keeps no job accounting" in run.stderr and "Slurm accounting storage is disabled" in run.stderr
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    assert group_tables(work) == group_tables(local_run)
    status = (work / "results" / "group" / "status.tsv").read_text().splitlines()
    failed = [line for line in status if "\tfailed\t" in line]
    assert len(failed) == 1 and failed[0].startswith("sub-07\t") and "not a readable NIfTI" in failed[0]
    assert "brainmets: 16 studies: 15 ok, 1 failed" in run.stderr
    # the main process says how it goes from the studies' status documents, as a local run does, in short lines
    progress = re.findall(r"^brainmets: (\d+)/16 studies done \((\d+) failed\)$", run.stderr, re.MULTILINE)
    assert progress and progress[-1] == ("16", "1") and max(map(len, run.stderr.splitlines())) < 1000


def test_submissions_and_limits_are_those_the_readme_promises(slurm_run):
    work, run, jobs = slurm_run
    studies, followed, compared = 16, 3, 2  # three subjects followed over 4 + 3 + 2 sessions
    documents = 2 * studies + followed + compared  # the cohort job's inputs: status + indications, ...
    assert submissions(jobs) == expected_submissions(studies, 4 + 3 + 2, compared, documents)
    assert all(job["partition"] == "main" for job in jobs)
    assert (work / "results" / "dataset_description.json").is_file()  # a local rule: run, but not submitted
    assert "rule_dataset_description" not in {job["comment"] for job in jobs}


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_cancelled_batch_leaves_nothing_behind_and_a_rerun_completes(cluster, slurm_run, local_run):
    work, _, _ = slurm_run
    shutil.rmtree(work / "results" / "sub-01")  # the first batch and everything after it run again
    before = {job["id"] for job in cluster.jobs()}
    run = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", *FAST_POLLING],
                           cwd=work, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    def running_batch():
        return next((j for j in cluster.jobs() if j["id"] not in before and j["state"] == "RUNNING"
                     and j["comment"].startswith("rule_batch_")), None)  # fmt: skip

    try:
        batch = wait_for(running_batch, 120, "the batch to run")
        first = work / "results/sub-01/ses-01/anat/sub-01_ses-01_desc-brainmets_status.json"
        wait_for(first.is_file, 60, "the batch's first study")  # five more to go when it is cancelled
        cluster.run("scancel", batch["id"])
        run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode != 0  # the batch failed; everything else was done (keep-going)
    states = {j["id"]: j["state"] for j in cluster.jobs()}
    assert states[batch["id"]] == "CANCELLED"
    results = work / "results"
    log = (results / "logs/features/batch-0001.log").read_text()
    assert "terminated by SIGTERM" in log and "removed" in log, log[-2000:]  # SLURM's SIGTERM, handled
    assert not list(results.rglob(TEMPORARY))
    for features in results.rglob("*_desc-brainmets_features.json"):  # only what a status document supports
        assert features.with_name(features.name.replace("_features", "_status")).is_file(), features
    assert not (results / "sub-01").exists() or not list((results / "sub-01").rglob("*_features.*"))

    # the README's way of adding a partition to one rule: its other resources stay as they were
    rerun = snakemake(work, "--profile", "profiles/slurm", *FAST_POLLING, "--set-resources",
                      "cohort:slurm_partition=big", env=cluster.env)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not list(results.rglob(TEMPORARY))
    assert group_tables(work) == group_tables(local_run)
    cohort = [j for j in cluster.jobs() if j["id"] not in states and j["comment"] == "rule_cohort"]
    documents = 2 * 16 + 3 + 2
    assert [(j["partition"], j["memory"]) for j in cohort] == [("big", f"{1000 + documents // 10}M")]
