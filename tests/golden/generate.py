"""Make the golden outputs: the demo workflow's results and the CLI's outputs on the bundled maps.

    python tests/golden/generate.py            # rewrite tests/golden/{workflow,cli}/ (review the diff!)
    python tests/golden/generate.py OUT_DIR    # write them under OUT_DIR instead (what the test does)

``tests/test_golden.py`` makes them afresh and compares them with the committed ones, so that a change meant to
move code and not behaviour shows every output it changes. Everything runs in a scratch copy of the bundled data
with relative paths, so the outputs name no folder of this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
#: Files of the workflow's results that are not compared: the logs (timings, paths) and the report's front page
#: (it shows the run's time). The HTML report itself is never made here, and the viewer pages (2.5 MB each, the
#: NiiVue bundle in every one) are tested by tests/test_figures_viewer.py and the workflow tests.
WORKFLOW_SKIPPED = ("logs/", "group/summary.rst")
WORKFLOW_SKIPPED_SUFFIXES = ("_viewer.html",)
#: Phantoms measured by `brainmets features` (each with its picture and instance map).
PHANTOMS = sorted(p.name.removesuffix(".nii.gz") for p in (ROOT / "test_data" / "phantoms").glob("*.nii.gz"))


def _copy_inputs(work: Path) -> None:
    """What a fresh clone holds: the Snakefile, workflow/, config/, profiles/ and the bundled test data."""
    shutil.copy(ROOT / "Snakefile", work)
    for folder in ("workflow", "config", "profiles", "test_data"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _run(work: Path, *args: str) -> None:
    done = subprocess.run(list(args), cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def _brainmets(work: Path, *args: str) -> None:
    _run(work, sys.executable, "-m", "brainmets", args[0], "-q", *args[1:])


def run_workflow(work: Path, out: Path) -> None:
    """The quick start's workflow on the bundled cohort; its results (but logs and report) go to `out`."""
    _run(work, sys.executable, "-m", "snakemake", "--cores", "2", "--quiet")
    results = work / "results"
    for path in sorted(results.rglob("*")):
        name = path.relative_to(results).as_posix()
        if path.is_file() and not name.startswith(WORKFLOW_SKIPPED) and not name.endswith(WORKFLOW_SKIPPED_SUFFIXES):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, out / name)


def run_cli(work: Path, out: str) -> None:
    """Each subcommand on the bundled maps, as a user would type it (paths relative to `work`)."""
    cohort = "test_data/cohort"
    for phantom in PHANTOMS:
        _brainmets(
            work, "features", f"test_data/phantoms/{phantom}.nii.gz", "--subject", phantom.replace("_", ""),
            "--out-json", f"{out}/features/{phantom}_features.json", "--out-tsv", f"{out}/features/{phantom}_lesions.tsv",
            "--out-instances", f"{out}/features/{phantom}_instances.nii.gz",
            "--out-figure", f"{out}/features/{phantom}.png",
        )  # fmt: skip
    studies = {"01": "01", "02": "01", "06": "01"}
    for subject, session in studies.items():
        stem = f"sub-{subject}_ses-{session}"
        _brainmets(
            work, "features", f"{cohort}/{stem}_dseg.nii.gz", "--subject", subject, "--session", session,
            "--parcellation", f"{cohort}/toy_aseg.nii.gz", "--out-json", f"{out}/cohort/{stem}_features.json",
            "--out-tsv", f"{out}/cohort/{stem}_lesions.tsv",
            "--status-json", f"{out}/cohort/{stem}_status.json",
        )  # fmt: skip
        _brainmets(
            work, "indicate", "--features", f"{out}/cohort/{stem}_features.json",
            "--clinical", f"{cohort}/clinical.tsv", "--out-json", f"{out}/cohort/{stem}_indications.json",
        )  # fmt: skip
    _brainmets(
        work, "followup", "--timeline", f"{cohort}/studies.tsv", "--subject", "10",
        "--out-json", f"{out}/followup/sub-10_followup.json", "--out-figure", f"{out}/followup/sub-10_spider.png",
        "--out-dir", f"{out}/followup",
    )  # fmt: skip
    _brainmets(
        work, "compare", "--reference", f"{cohort}/sub-02_ses-01_dseg.nii.gz",
        "--prediction", f"{cohort}/sub-02_ses-01_desc-model_pred.nii.gz", "--subject", "02", "--session", "01",
        "--parcellation", f"{cohort}/toy_aseg.nii.gz", "--clinical", f"{cohort}/clinical.tsv",
        "--out-json", f"{out}/compare/sub-02_comparison.json", "--out-tsv", f"{out}/compare/sub-02_comparison_lesions.tsv",
    )  # fmt: skip
    status = [f"{out}/cohort/sub-{s}_ses-{x}_status.json" for s, x in studies.items()]
    indications = [f"{out}/cohort/sub-{s}_ses-{x}_indications.json" for s, x in studies.items()]
    _brainmets(
        work, "cohort", "--status", *status, "--indications", *indications,
        "--followup", f"{out}/followup/sub-10_followup.json", "--comparison", f"{out}/compare/sub-02_comparison.json",
        "--out-status", f"{out}/tables/status.tsv", "--out-lesions", f"{out}/tables/lesions.tsv",
        "--out-studies", f"{out}/tables/studies.tsv", "--out-indications", f"{out}/tables/indications.tsv",
        "--out-lesion-tracks", f"{out}/tables/lesion_tracks.tsv", "--out-responses", f"{out}/tables/responses.tsv",
        "--out-comparison-lesions", f"{out}/tables/comparison_lesions.tsv",
        "--out-comparison-studies", f"{out}/tables/comparison_studies.tsv",
        "--out-comparison-detection", f"{out}/tables/comparison_detection.tsv",
    )  # fmt: skip
    _brainmets(
        work, "figures", "--lesions", f"{out}/tables/lesions.tsv", "--studies", f"{out}/tables/studies.tsv",
        "--indications", f"{out}/tables/indications.tsv", "--responses", f"{out}/tables/responses.tsv",
        "--comparison-detection", f"{out}/tables/comparison_detection.tsv", "--out-dir", f"{out}/figures",
    )  # fmt: skip


def generate(out: Path) -> Path:
    """Make every golden output under `out` (workflow/ and cli/); return `out`."""
    with tempfile.TemporaryDirectory(prefix="brainmets-golden-") as scratch:
        work = Path(scratch)
        _copy_inputs(work)
        run_cli(work, "golden-cli")
        shutil.copytree(work / "golden-cli", out / "cli", dirs_exist_ok=True)
        run_workflow(work, out / "workflow")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN
    for folder in ("workflow", "cli"):
        if target == GOLDEN:
            shutil.rmtree(GOLDEN / folder, ignore_errors=True)
    generate(target)
    print(f"golden outputs written under {target}")
