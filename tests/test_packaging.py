"""Install as users do: build the wheel, install it into a fresh virtual environment outside the clone, and run
every command and the workflow with it; the answers must be those of the editable install."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from brainmets.cli import main

from .conftest import ROOT, workflow_copy

pytestmark = pytest.mark.packaging
COHORT = ROOT / "test_data" / "cohort"
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "results", ".snakemake", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "scratch"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source tree (building in place would leave build/ in the clone)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(source)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = (work / "dist").glob("brainmets-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtual environment, outside the clone, holding the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return venv / "bin"


def test_the_wheel_holds_every_file_the_package_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "src" / "brainmets"
    shipped = {
        f"brainmets/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped - names == set()
    assert {"brainmets/data/indications/rules.yaml", "brainmets/data/references/freesurfer.yaml"} <= names
    licence = [n for n in names if n.startswith("brainmets-") and n.rsplit("/", 1)[-1] == "LICENSE"]
    assert licence, "the wheel carries no LICENSE"
    text = zipfile.ZipFile(wheel).read(licence[0]).decode()
    assert "Apache License" in text and "Version 2.0" in text


def test_the_readme_python_example_runs_from_the_installed_wheel(installed, tmp_path):
    """The demo it reads is package data: the example runs outside any clone."""
    from .test_api import readme_python_example

    script = tmp_path / "example.py"
    script.write_text(readme_python_example())
    run = _run([str(installed / "python"), str(script)], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("<Measurement sub-02 ses-01: 3 lesions, 1.72 mL, scheme brats-mets-2023>")
    assert (
        "site-packages"
        in _run(
            [str(installed / "python"), "-c", "import brainmets.datasets as d; print(d.demo().folder)"], tmp_path
        ).stdout
    )


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_command_of_the_installed_wheel_gives_the_editable_answers(installed, tmp_path):
    user, here = tmp_path / "user", tmp_path / "editable"
    user.mkdir()
    seg, aseg = COHORT / "sub-01_ses-01_dseg.nii.gz", COHORT / "toy_aseg.nii.gz"
    for where, runner in ((user, lambda argv: _run([str(installed / "brainmets"), *argv], user)), (here, None)):
        features = [str(seg), "--subject", "01", "--session", "01", "--parcellation", str(aseg)]
        features += ["--out-dir", str(where / "anat"), "--out-json", str(where / "f.json")]
        steps = [
            ["features", *features],
            ["indicate", "--features", str(where / "f.json"), "--clinical", str(COHORT / "clinical.tsv")]
            + ["--out-json", str(where / "i.json")],
            ["cohort", str(where / "f.json"), "--indications", str(where / "i.json"), "--out-indications"]
            + [str(where / "ind.tsv"), "--out-lesions", str(where / "l.tsv"), "--out-studies", str(where / "s.tsv")],
            ["figures", "--lesions", str(where / "l.tsv"), "--studies", str(where / "s.tsv"), "--out-dir", str(where)],
            ["dataset-description", "--out", str(where / "dataset_description.json")],
        ]
        for argv in steps:
            if runner is None:
                assert main(argv) == 0, argv
            else:
                done = runner(argv)
                assert done.returncode == 0, (argv, done.stderr[-2000:])
    assert _json(user / "f.json")["study"]["location_reference"].startswith("parcellation")
    for name in ("f.json", "i.json", "dataset_description.json"):
        assert _json(user / name) == _json(here / name), name
    for name in ("l.tsv", "s.tsv", "ind.tsv"):
        assert (user / name).read_text() == (here / name).read_text(), name
    assert (user / "lesion_size.png").stat().st_size > 1000
    version = _run([str(installed / "brainmets"), "--version"], user)
    assert version.stdout.strip() == f"brainmets {__import__('brainmets').__version__}"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_the_workflow_and_its_report_run_from_the_installed_wheel(installed, tmp_path):
    user = workflow_copy(tmp_path / "clone")
    here = workflow_copy(tmp_path / "editable")
    run = _run([str(installed / "snakemake"), "--cores", "2"], user)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "brainmets: 15 studies: 15 ok, 0 failed; follow-up of 3 subjects: 3 ok, 0 failed" in run.stderr
    editable = _run([sys.executable, "-m", "snakemake", "--cores", "2"], here)
    assert editable.returncode == 0, editable.stderr[-3000:]
    for table in ("studies", "lesions", "indications", "status", "lesion_tracks", "responses", "comparison_studies"):
        assert _rows(user / "results" / "group" / f"{table}.tsv") == _rows(here / "results" / "group" / f"{table}.tsv")
    report = _run([str(installed / "snakemake"), "--report", "report.html"], user)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (user / "report.html").stat().st_size > 100_000
