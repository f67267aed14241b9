"""Shared fixtures: paths to the bundled test data and to ../shared (skipped cleanly where it is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brainmets.config import FeatureParameters
from brainmets.features import compute_features
from brainmets.io import LabelMap

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "test_data"
PHANTOMS = TEST_DATA / "phantoms"
SHARED = ROOT.parent / "shared"


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
    """compute_features on an in-memory array with the given ``features`` config."""
    config.setdefault("min_lesion_volume_mm3", 0)
    config.setdefault("min_edema_component_volume_mm3", 0)
    return compute_features(label_map(labels, affine), FeatureParameters.from_config(config))


def ball(shape, centre, radius, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Boolean ball on an index grid, radius in mm with the given voxel spacing."""
    grid = np.indices(shape, dtype=float)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing))
    return d2 <= radius**2
