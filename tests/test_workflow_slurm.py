"""brainmets.workflow.slurm: SLURM without job accounting, from fake command output (no cluster needed): sacct's
message read, MinJobAge parsed from `scontrol show config`, and the decision to use squeue or stop."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from brainmets.workflow import slurm

SCONTROL = """Configuration data as of 2024-05-01T10:00:00
AccountingStorageType   = (null)
MaxJobCount             = 10000
MinJobAge               = 300 sec
MpiDefault              = none
"""
NO_ACCOUNTING = "sacct: error: Slurm accounting storage is disabled\n"


def fake_commands(monkeypatch, outputs: dict[str, tuple[int, str, str] | Exception]) -> list[list[str]]:
    """subprocess.run answering each command (by its first word) with (exit code, stdout, stderr), or raising."""
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        answer = outputs[command[0]]
        if isinstance(answer, Exception):
            raise answer
        code, out, err = answer
        return subprocess.CompletedProcess(command, code, out, err)

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


@pytest.mark.parametrize(
    "line, seconds",
    [
        ("MinJobAge               = 300 sec", 300),
        ("MinJobAge = 300", 300),
        ("MinJobAge=45s", 45),
        ("MinJobAge = 5 min", 300),
        ("MinJobAge = 1h", 3600),
        ("MinJobAge = 2 hours", 7200),
        ("MinJobAge = 300 fortnights", None),  # an unknown unit: unknown
        ("MinJobAge = (null)", None),
        ("MaxJobCount = 10000", None),
    ],
)
def test_min_job_age_is_parsed_from_scontrol_show_config(line, seconds):
    assert slurm.parse_min_job_age(f"Configuration data\n{line}\nOther = 1\n") == seconds


def test_min_job_age_asks_scontrol(monkeypatch):
    calls = fake_commands(monkeypatch, {"scontrol": (0, SCONTROL, "")})
    assert slurm.min_job_age() == 300 and calls == [["scontrol", "show", "config"]]
    fake_commands(monkeypatch, {"scontrol": (1, "", "slurm_load_ctl_conf error")})
    assert slurm.min_job_age() is None
    fake_commands(monkeypatch, {"scontrol": FileNotFoundError("scontrol")})
    assert slurm.min_job_age() is None
    fake_commands(monkeypatch, {"scontrol": subprocess.TimeoutExpired("scontrol", 10)})
    assert slurm.min_job_age() is None


def test_accounting_disabled_is_sacct_saying_so(monkeypatch):
    calls = fake_commands(monkeypatch, {"sacct": (1, "", NO_ACCOUNTING)})
    assert slurm.accounting_disabled() == "sacct: sacct: error: Slurm accounting storage is disabled"
    assert calls == [["sacct", "--noheader", "--format=JobID", "--starttime=now"]]
    fake_commands(monkeypatch, {"sacct": (0, "", "")})
    assert slurm.accounting_disabled() is None
    fake_commands(monkeypatch, {"sacct": (1, "", "sacct: error: Problem talking to the database")})
    assert slurm.accounting_disabled() is None  # another failure: sacct is kept, the plugin retries it
    fake_commands(monkeypatch, {"sacct": FileNotFoundError("sacct")})
    assert slurm.accounting_disabled() is None


@pytest.mark.parametrize(
    "age, delay, fine", [(300, 40, True), (120, 40, True), (119, 40, False), (300, 101, False), (None, 40, False)]
)
def test_squeue_needs_min_job_age_of_three_first_check_delays(age, delay, fine):
    problem = slurm.min_job_age_problem(age, delay)
    assert (problem is None) == fine
    if not fine:
        assert problem == (
            f"brainmets: SLURM's MinJobAge is {age} s, below 3 x the first status check's delay ({delay} s): squeue "
            "would miss finished jobs and sacct cannot see them (no accounting). Pass "
            "--slurm-init-seconds-before-status-checks with at most a third of MinJobAge, or raise MinJobAge"
        )


def test_without_accounting_the_status_command_becomes_squeue(monkeypatch):
    fake_commands(monkeypatch, {"sacct": (1, "", NO_ACCOUNTING), "scontrol": (0, SCONTROL, "")})
    settings = SimpleNamespace(status_command="sacct", init_seconds_before_status_checks=40)
    said = []
    assert slurm.use_squeue_without_accounting(settings, said.append) is True
    assert settings.status_command == "squeue"
    assert said == [
        "brainmets: this SLURM cluster keeps no job accounting (sacct: sacct: error: Slurm accounting storage is "
        "disabled): job states are read with squeue instead, which sees a job until MinJobAge after it ends (see "
        "README, Running on a cluster)"
    ]


def test_a_short_min_job_age_stops_the_run_with_what_to_change(monkeypatch):
    fake_commands(monkeypatch, {"sacct": (1, "", NO_ACCOUNTING), "scontrol": (0, "MinJobAge = 60 sec\n", "")})
    settings = SimpleNamespace(status_command="sacct", init_seconds_before_status_checks=40)
    with pytest.raises(slurm.SlurmSettingError, match=r"MinJobAge is 60 s, below 3 x .* \(40 s\)"):
        slurm.use_squeue_without_accounting(settings, lambda line: None)
    settings = SimpleNamespace(status_command="sacct", init_seconds_before_status_checks=20)  # 60 >= 3 x 20
    assert slurm.use_squeue_without_accounting(settings, lambda line: None) is True
    settings = SimpleNamespace(status_command="sacct")  # the plugin's default delay, 40 s
    with pytest.raises(slurm.SlurmSettingError, match=r"\(40 s\)"):
        slurm.use_squeue_without_accounting(settings, lambda line: None)


def test_nothing_changes_with_accounting_squeue_or_another_executor(monkeypatch):
    calls = fake_commands(monkeypatch, {"sacct": (0, "", ""), "scontrol": (0, SCONTROL, "")})
    settings = SimpleNamespace(status_command="sacct", init_seconds_before_status_checks=40)
    assert slurm.use_squeue_without_accounting(settings, pytest.fail) is False and settings.status_command == "sacct"
    assert calls == [["sacct", "--noheader", "--format=JobID", "--starttime=now"]]
    calls.clear()
    assert slurm.use_squeue_without_accounting(SimpleNamespace(status_command="squeue"), pytest.fail) is False
    assert slurm.use_squeue_without_accounting(None, pytest.fail) is False  # a local run: no executor settings
    assert calls == []
