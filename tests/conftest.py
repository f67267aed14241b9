"""Shared fixtures: paths to the bundled test data and to ../shared (skipped cleanly where it is absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from brainmets.io import LabelMap
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.features import measure_label_map

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "test_data"
PHANTOMS = TEST_DATA / "phantoms"
SHARED = ROOT.parent / "shared"


def workflow_copy(where: Path) -> Path:
    """What a fresh clone holds to run the workflow: Snakefile, workflow/, config/, profiles/, the demo cohort."""
    import shutil

    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Snakefile", where)
    for folder in ("workflow", "config", "profiles"):
        shutil.copytree(ROOT / folder, where / folder)
    shutil.copytree(TEST_DATA / "cohort", where / "test_data" / "cohort")
    return where


#: The environment variable that lets the SLURM test install Debian packages and start daemons (.ci/run sets it).
SLURM_OPT_IN = "BRAINMETS_TEST_SLURM"


#: Markers of tests that run Snakemake, build a wheel or start a cluster: all of them are also ``slow``, left
#: out of the fast lane ``pytest -m "not slow"``.
SLOW_KINDS = ("workflow", "packaging", "slurm")


def pytest_collection_modifyitems(config, items) -> None:
    """Workflow, packaging and SLURM tests are ``slow``. A plain ``pytest`` never installs system packages or
    starts daemons: the SLURM test runs only when asked for with BRAINMETS_TEST_SLURM=1."""
    for item in items:
        if any(kind in item.keywords for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)
    if os.environ.get(SLURM_OPT_IN) == "1":
        return
    skip = pytest.mark.skip(
        reason=f"installs slurm-wlm and munge and starts a cluster: set {SLURM_OPT_IN}=1 to run it (.ci/run does)"
    )
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared data folder; tests that need it are skipped where it is absent (a user's clone)."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not present")
    return SHARED / "data"


@pytest.fixture(scope="session")
def expected() -> dict:
    return json.loads((PHANTOMS / "expected.json").read_text())


def label_map(labels: np.ndarray, affine: np.ndarray | None = None) -> LabelMap:
    """An in-memory label map (1 mm RAS grid unless an affine is given)."""
    return LabelMap(labels=np.asarray(labels), affine=np.eye(4) if affine is None else affine, source="<memory>")


def features(labels: np.ndarray, affine: np.ndarray | None = None, **config):
    """measure_label_map on an in-memory array with the given ``features`` config."""
    config.setdefault("min_lesion_volume_mm3", 0)
    config.setdefault("min_edema_component_volume_mm3", 0)
    return measure_label_map(label_map(labels, affine), FeatureParameters.from_config(config))


def ball(shape, centre, radius, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Boolean ball on an index grid, radius in mm with the given voxel spacing."""
    grid = np.indices(shape, dtype=float)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing))
    return d2 <= radius**2


def lesion_row(**fields) -> dict:
    """A lesion of a features document, for indication tests (location unknown unless given)."""
    return {
        "volume_ml": 1.0,
        "edema_volume_ml": 1.0,
        "edema_ratio": 1.0,
        "max_diameter_3d_mm": 12.0,
        "axial_longest_diameter_mm": 11.0,
        "location": None,
        "eloquent_regions": None,
        "brainstem_involved": None,
    } | fields


def cavity_row(**fields) -> dict:
    """A resection-cavity component of a features document, for indication tests."""
    return {
        "voxel_count": 4000,
        "volume_ml": 4.0,
        "max_diameter_3d_mm": 22.0,
        "axial_longest_diameter_mm": 21.0,
        "rim_enhancing_volume_ml": 0.0,
        "rim_lesion_ids": [],
        "location": None,
    } | fields


def features_document(lesions, cavities=None, cavity_ml=None, discarded=0, subject="x") -> dict:
    """A minimal features document around lesion rows (and resection-cavity rows), for indication tests."""
    if cavities:
        cavity_ml = sum(c["volume_ml"] for c in cavities)
    return {
        "study": {
            "subject": subject,
            "session": None,
            "lesion_count": len(lesions),
            "largest_max_diameter_3d_mm": max((r["max_diameter_3d_mm"] for r in lesions), default=None),
            "cumulative_tumor_volume_ml": sum(r["volume_ml"] for r in lesions),
            "resection_cavity_volume_ml": cavity_ml,
            "resection_cavity_count": None if cavity_ml is None else len(cavities or []),
            "discarded_core_component_count": discarded,
            "discarded_core_volume_ml": 0.008 * discarded,
        },
        "lesions": lesions,
        "resection_cavities": cavities or [],
        "provenance": {"parameters": {"min_lesion_volume_mm3": 20.0}},
    }
