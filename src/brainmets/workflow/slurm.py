"""SLURM without job accounting: what the workflow does before its first job on such a cluster.

The SLURM executor plugin reads job states with ``sacct`` by default (its public setting ``status_command``,
``--slurm-status-command``). Where the cluster keeps no accounting storage, sacct knows no job and the run
would wait forever: :func:`use_squeue_without_accounting` then switches the setting to ``squeue``, which sees
a job until SLURM's ``MinJobAge`` after it ends. The plugin goes back to sacct when MinJobAge is below three
times its first status check's delay (its public setting ``init_seconds_before_status_checks``,
``--slurm-init-seconds-before-status-checks``), so that case stops the run with what to change instead.
MinJobAge is read from ``scontrol show config`` (SLURM's own command), never from the plugin's internals."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable

#: The plugin's default delay before the first status check (``init_seconds_before_status_checks``).
DEFAULT_INIT_SECONDS = 40
#: squeue must see a finished job for this many first-check delays (the plugin's own threshold).
DELAYS_PER_MIN_JOB_AGE = 3
#: Seconds per unit of a ``scontrol show config`` duration (no unit: seconds).
UNITS = {"": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "min": 60, "mins": 60, "minute": 60,
         "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}  # fmt: skip
_MIN_JOB_AGE = re.compile(r"^[ \t]*MinJobAge[ \t]*=[ \t]*(\d+)[ \t]*([A-Za-z]*)", re.MULTILINE)


class SlurmSettingError(RuntimeError):
    """The cluster's settings and the executor's cannot work together (the message says what to change)."""


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def accounting_disabled() -> str | None:
    """sacct's own message when the cluster has no accounting storage (it then knows no job), else None (sacct
    works, or is not there: not a SLURM host)."""
    done = _run(["sacct", "--noheader", "--format=JobID", "--starttime=now"], timeout=60)
    if done is None:
        return None
    message = " ".join(done.stderr.split())
    return f"sacct: {message}" if done.returncode != 0 and "accounting storage is disabled" in message.lower() else None


def parse_min_job_age(config_text: str) -> int | None:
    """MinJobAge in seconds from the output of ``scontrol show config`` (``MinJobAge = 300 sec``; ``300``,
    ``5 min`` and ``1h`` too); None when the line is missing or its unit unknown."""
    match = _MIN_JOB_AGE.search(config_text)
    if match is None:
        return None
    unit = UNITS.get(match.group(2).lower())
    return None if unit is None else int(match.group(1)) * unit


def min_job_age() -> int | None:
    """SLURM's MinJobAge in seconds (``scontrol show config``); None when scontrol fails or does not say."""
    done = _run(["scontrol", "show", "config"], timeout=10)
    if done is None or done.returncode != 0:
        return None
    return parse_min_job_age(done.stdout)


def min_job_age_problem(age: int | None, delay: int) -> str | None:
    """Why squeue cannot replace sacct with this MinJobAge (seconds, None: unknown) and first status check's
    delay, or None when it can."""
    if age is not None and age >= DELAYS_PER_MIN_JOB_AGE * delay:
        return None
    return (
        f"brainmets: SLURM's MinJobAge is {age} s, below {DELAYS_PER_MIN_JOB_AGE} x the first status check's delay ({delay} s): squeue "
        "would miss finished jobs and sacct cannot see them (no accounting). Pass "
        "--slurm-init-seconds-before-status-checks with at most a third of MinJobAge, or raise MinJobAge"
    )


def use_squeue_without_accounting(settings, say: Callable[[str], object]) -> bool:
    """With the executor's ``settings`` (Snakemake's ``workflow.executor_settings``; None off SLURM): on a
    cluster without accounting whose status command is sacct, switch it to squeue and `say` so (whether it
    did); raise :class:`SlurmSettingError` when MinJobAge is too short for squeue."""
    if getattr(settings, "status_command", None) != "sacct":
        return False
    reason = accounting_disabled()
    if not reason:
        return False
    settings.status_command = "squeue"
    say(f"brainmets: this SLURM cluster keeps no job accounting ({reason}): job states are read with squeue "
        "instead, which sees a job until MinJobAge after it ends (see README, Running on a cluster)")  # fmt: skip
    delay = getattr(settings, "init_seconds_before_status_checks", None) or DEFAULT_INIT_SECONDS
    problem = min_job_age_problem(min_job_age(), delay)
    if problem:
        raise SlurmSettingError(problem)
    return True
