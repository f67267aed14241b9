#!/usr/bin/env python3
"""One BraTS-size pair (240 x 240 x 155) with 20 reference lesions: brainmets' `brats2025` and `brats2023`
modes, and the official `brats-evaluation` on the same files when a Python that has it is given.

Usage: python benchmarks/bench_compare.py [--evaluator-python PATH] [--out benchmarks/results/compare.json]
The pair is generated (seeded): 20 spheres with edema, and a prediction that shifts, shrinks or grows each,
misses two and invents two. Two timings:
- ``seconds``: the metrics alone (the files already read), best of 3;
- ``whole_command_seconds``: each command as a user runs it, in a fresh process, median of 3: ``brainmets
  compare`` (reading both files, measuring both maps' features, the metrics, the agreement, writing the
  document) against ``brats-evaluate --config mets`` alone and followed by ``brats-parse-metrics mets`` (the
  summary ``brainmets compare`` also writes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from brainmets.comparison.brats_metrics import evaluate, evaluate_2023  # noqa: E402

SHAPE = (240, 240, 155)


def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    grid = np.indices(SHAPE, dtype=np.float32)
    reference, prediction = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    centres = rng.uniform([40, 40, 30], [200, 200, 125], size=(22, 3))
    radii = rng.uniform(2.5, 10, size=22)
    for k, (c, r) in enumerate(zip(centres, radii)):
        for labels, centre, radius, present in (
            (reference, c, r, k < 20),
            (prediction, c + rng.normal(0, 1, 3), r * rng.uniform(0.8, 1.2), k not in (3, 7)),
        ):
            if not present:
                continue
            box = tuple(slice(max(int(ci - 2 * radius - 2), 0), int(ci + 2 * radius + 3)) for ci in centre)
            d2 = sum((g[box] - ci) ** 2 for g, ci in zip(grid, centre))
            crop = labels[box]
            crop[(d2 <= (2 * radius) ** 2) & (crop == 0)] = 2
            crop[d2 <= radius**2] = 3
    return reference, prediction


def best(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


EVALUATOR = """
import sys, time
from importlib.resources import files
from panoptica import Panoptica_Evaluator
evaluator = Panoptica_Evaluator.load_from_config(str(files("brats_evaluation").joinpath("configs", "config_mets.yaml")))
times = []
for _ in range(3):
    start = time.perf_counter()
    evaluator.evaluate(sys.argv[2], sys.argv[1])
    times.append(time.perf_counter() - start)
print(min(times))
"""


def median_run(command: list[str], repeats: int = 3, env: dict[str, str] | None = None) -> float:
    """The median wall time of a command run ``repeats`` times in a fresh process (failing if it fails)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def whole_commands(reference: np.ndarray, prediction: np.ndarray, evaluator_python: Path) -> dict[str, float]:
    """Each whole command's median time on the pair written as NIfTI, named as the evaluator expects."""
    tools = Path(evaluator_python).parent
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref = folder / "ref" / "BraTS-MET-00001-000-seg.nii.gz"
        pred = folder / "pred" / "BraTS-MET-00001-000.nii.gz"
        for path, labels in ((ref, reference), (pred, prediction)):
            path.parent.mkdir()
            nib.save(nib.Nifti1Image(labels, np.eye(4)), str(path))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
        summary = folder / "panoptica.json"
        brainmets = [sys.executable, "-m", "brainmets", "compare", "--reference", str(ref), "--prediction", str(pred)]
        evaluate = [str(tools / "brats-evaluate"), "--ref_path", str(ref.parent), "--pred_path", str(pred.parent)]
        parse = [str(tools / "brats-parse-metrics"), "mets", "--json_path", str(summary)]
        return {
            "brainmets_compare": median_run([*brainmets, "--out-json", str(folder / "comparison.json")], env=env),
            "brats-evaluate": median_run([*evaluate, "--config", "mets", "--summary_json", str(summary)]),
            "brats-parse-metrics": median_run([*parse, "--output_csv_path", str(folder / "parsed.csv")]),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluator-python", type=Path, help="a Python with brats-evaluation installed")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare.json")
    args = parser.parse_args(argv)
    reference, prediction = pair()
    result = {"shape": list(SHAPE), "reference_lesions": 20, "seconds": {}}
    result["seconds"]["brainmets_brats2025"] = round(best(lambda: evaluate(reference, prediction, (1, 1, 1))), 3)
    result["seconds"]["brainmets_brats2023"] = round(best(lambda: evaluate_2023(reference, prediction, (1, 1, 1))), 3)
    if args.evaluator_python:
        with tempfile.TemporaryDirectory() as tmp:
            paths = [Path(tmp) / "ref.nii.gz", Path(tmp) / "pred.nii.gz"]
            for path, labels in zip(paths, (reference, prediction)):
                nib.save(nib.Nifti1Image(labels, np.eye(4)), str(path))
            run = subprocess.run([str(args.evaluator_python), "-c", EVALUATOR, *map(str, paths)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            result["seconds"]["brats_evaluation_0.0.10"] = round(float(run.stdout.split()[-1]), 3)
        result["speed_up_brats2025"] = round(
            result["seconds"]["brats_evaluation_0.0.10"] / result["seconds"]["brainmets_brats2025"], 1
        )
    if args.evaluator_python:
        result["whole_command_seconds"] = whole_commands(reference, prediction, args.evaluator_python)
        whole = result["whole_command_seconds"]
        result["whole_command_ratio"] = {
            "brainmets / brats-evaluate": round(whole["brainmets_compare"] / whole["brats-evaluate"], 2),
            "brainmets / brats-evaluate + brats-parse-metrics": round(
                whole["brainmets_compare"] / (whole["brats-evaluate"] + whole["brats-parse-metrics"]), 2
            ),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
