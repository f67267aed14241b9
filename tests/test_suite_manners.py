"""The test suite respects the machine: a plain ``pytest`` installs no system package and starts no daemon."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT, SLURM_OPT_IN


def test_a_plain_pytest_never_calls_apt_get_or_starts_slurm(tmp_path):
    """The SLURM test collected without the opt-in: skipped before apt-get (a stand-in on PATH that would
    record its call) or any SLURM daemon is run."""
    record = tmp_path / "called"
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for program in ("apt-get", "munged", "slurmctld", "slurmd", "sinfo"):
        fake = fakes / program
        fake.write_text(f'#!/bin/sh\necho {program} "$@" >> {record}\nexit 1\n')
        fake.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != SLURM_OPT_IN}
    environment["PATH"] = f"{fakes}{os.pathsep}{environment.get('PATH', '')}"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_slurm.py")],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    assert "skipped" in run.stdout and "passed" not in run.stdout
    assert f"{SLURM_OPT_IN}=1" in run.stdout  # the skip reason (-ra) says how to ask for it
    assert not record.exists(), record.read_text()
