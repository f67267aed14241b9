"""Generated reference / prediction pairs for checking ``brats2025`` against the official evaluator, and (run as
a script, in a Python that has ``brats-evaluation`` 0.0.10) the recorder of the evaluator's outputs on them:

    python tests/evaluator_pairs.py [--out tests/fixtures/brats_evaluation_0.0.10_generated.json]

The pairs are built with NumPy alone (seeded), so that the test rebuilds them without the evaluator installed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

SHAPE = (48, 44, 36)
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "brats_evaluation_0.0.10_generated.json"
COMMAND = "python tests/evaluator_pairs.py (brats-evaluation 0.0.10, config mets; brats-parse-metrics mets defaults)"


def _ball(labels: np.ndarray, centre, radius: float, value: int, core: int | None = None) -> None:
    """Paint a ball of ``value`` (and an inner ball of ``core`` of half the radius) into ``labels``."""
    grid = np.indices(labels.shape, dtype=np.float32)
    d2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
    labels[d2 <= radius**2] = value
    if core is not None:
        labels[d2 <= (radius / 2) ** 2] = core


def _lesions(spec) -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    for centre, radius, value, core in spec:
        _ball(labels, centre, radius, value, core)
    return labels


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """Name -> (reference, prediction, voxel sizes in the arrays' axis order)."""
    empty = np.zeros(SHAPE, np.uint8)
    one = _lesions([((20, 20, 18), 5, 2, 3)])
    two = _lesions([((12, 12, 10), 4, 2, 3), ((34, 30, 24), 3, 3, None)])
    out = {
        "both_empty": (empty, empty, (1.0, 1.0, 1.0)),
        "empty_reference": (empty, one, (1.0, 1.0, 1.0)),
        "empty_prediction": (one, empty, (1.0, 1.0, 1.0)),
        "missed_lesion": (two, _lesions([((12, 13, 10), 4, 2, 3)]), (1.0, 1.0, 1.0)),
        "false_positive": (one, _lesions([((21, 20, 18), 5, 2, 3), ((40, 8, 30), 2, 3, 1)]), (1.0, 1.0, 1.0)),
        "cavity_and_small": (
            _lesions([((14, 14, 12), 4, 4, None), ((30, 30, 20), 1.5, 3, None), ((36, 10, 28), 4, 2, 1)]),
            _lesions([((15, 14, 12), 3, 4, None), ((30, 31, 20), 1.5, 3, None), ((36, 10, 27), 4, 2, 3)]),
            (1.0, 1.0, 1.0),
        ),
        "anisotropic": (
            _lesions([((14, 14, 12), 5, 2, 3), ((32, 28, 22), 3, 3, None), ((40, 36, 8), 2, 1, None)]),
            _lesions([((15, 14, 13), 5, 2, 3), ((32, 29, 22), 2.5, 3, None), ((8, 36, 30), 2, 3, None)]),
            (0.5, 0.8, 2.0),
        ),
    }
    rng = np.random.default_rng(7)
    reference, prediction = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    for k in range(9):
        centre, radius = rng.uniform((6, 6, 6), np.array(SHAPE) - 6), rng.uniform(1.5, 4.5)
        if k != 2:
            _ball(reference, centre, radius, 2, 3)
        if k != 5:
            _ball(prediction, centre + rng.normal(0, 1, 3), radius * rng.uniform(0.7, 1.3), 2, 3)
    out["random_spheres"] = (reference, prediction, (1.0, 1.0, 1.2))
    return out


def _plain(value):
    """JSON-safe values: NaN and infinities as strings, NumPy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the evaluator and its mets parser on every pair and write the fixture."""
    import importlib.metadata as metadata
    from importlib.resources import files

    import nibabel as nib
    import pandas as pd
    from brats_evaluation.evaluation import evaluate_single_exam
    from brats_evaluation.metrics_parser import parse_mets_results
    from panoptica import Panoptica_Evaluator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args(argv)
    config = str(files("brats_evaluation").joinpath("configs", "config_mets.yaml"))
    evaluator = Panoptica_Evaluator.load_from_config(config)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (reference, prediction, zooms) in pairs().items():
            ref, pred = Path(tmp) / f"ref_{name}.nii.gz", Path(tmp) / f"pred_{name}.nii.gz"
            for path, labels in ((ref, reference), (pred, prediction)):
                nib.save(nib.Nifti1Image(labels, np.diag([*zooms, 1.0])), path)
            result = evaluate_single_exam(str(pred), str(ref), name, evaluator)
            summary_json, summary_csv = Path(tmp) / "summary.json", Path(tmp) / "summary.csv"
            summary_json.write_text(json.dumps({"metrics": [result], "missings": []}, default=_plain))
            parse_mets_results(str(summary_json), 20, 0.1, str(summary_csv))
            parsed = pd.read_csv(summary_csv).iloc[0].to_dict()
            cases.append({"case": name, "panoptica_result": result, "parsed_mets": parsed})
    packages = ("BraTS-evaluation", "panoptica", "SimpleITK", "connected-components-3d", "numpy", "scipy", "nibabel")
    document = {
        "description": "brats-evaluation with its bundled config 'mets' on the generated pairs of "
        "tests/evaluator_pairs.py: evaluate_single_exam() per pair and brats-parse-metrics mets "
        "(--vol_threshold 20 --overlap_threshold 0.1). NaN/Infinity are encoded as strings.",
        "command": COMMAND,
        "python": sys.version,
        "versions": {p: metadata.version(p) for p in packages},
        "cases": cases,
    }
    args.out.write_text(json.dumps(_plain(document), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
