#!/usr/bin/env python3
"""Speed of `features` on a BraTS-size label map, against the bare nibabel load and SimpleITK.

Usage: python benchmarks/bench_features.py [--repeats N] [--out benchmarks/results/features.json]

The map: 240 x 240 x 155 voxels, uint8, BraTS-METS 2023 labels, 12 metastases of 3-20 mm radius with
edema (and necrotic centres in the larger ones), made with test_data/generate.py's painter (seed 2024).
It is timed as two files holding the same voxels: written by SimpleITK (as nnU-Net and most segmentation
tools write NIfTI; zlib's default compression) and by nibabel (compression level 1, which inflates about
three times faster, so the bare load is shorter and the ratio larger).
Timed in one process, after one warm-up call each, interleaved, median of N runs:
- nibabel: nib.load + the data array (the bare load);
- brainmets: load_segmentation + measure_label_map (everything the `features` command computes), with the
  command's default threads (the CPUs available, at most 4) and with one thread;
- SimpleITK: ReadImage + tumour-core mask + ConnectedComponent (26-conn.) + LabelShapeStatistics with
  Feret diameters on (ITK's voxel-centre maximum diameter; no edema, no axial diameters, no mesh).
The cold start of the command line (a new process: imports, load, compute, write outputs) is timed too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from brainmets import __version__
from brainmets.config import default_threads
from brainmets.io import load_segmentation
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.features import measure_label_map

ROOT = Path(__file__).resolve().parents[1]
LESIONS = [  # offset from the grid centre (mm), core radius, edema radius, necrotic radius
    ((-40, 30, 20), 20, 34, 10),
    ((35, -20, 25), 14, 26, 6),
    ((10, 55, -10), 9, 18, 0),
    ((-50, -40, 0), 7, 15, 0),
    ((45, 40, 35), 6, 13, 0),
    ((-20, 0, 45), 5, 11, 0),
    ((20, -60, -20), 5, 10, 0),
    ((0, 20, 10), 4, 9, 0),
    ((-60, 10, -25), 4, 8, 0),
    ((55, 0, -5), 3, 7, 0),
    ((-30, -65, 30), 3, 7, 0),
    ((30, 10, -35), 3, 6, 0),
]


def make_maps(folder: Path) -> dict[str, Path]:
    """The benchmark map, written by SimpleITK and by nibabel."""
    spec = importlib.util.spec_from_file_location("generate", ROOT / "test_data" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rng = np.random.default_rng(2024)
    labels = np.zeros(gen.BRATS_SHAPE, np.uint8)
    for offset, core_r, edema_r, necrotic_r in LESIONS:
        gen.paint(labels, offset, core_r, rng, edema_r=edema_r, necrotic_r=necrotic_r)
    paths = {"nibabel": folder / "map_nibabel.nii.gz", "simpleitk": folder / "map_simpleitk.nii.gz"}
    gen.save(paths["nibabel"], labels, gen.BRATS_AFFINE)
    sitk.WriteImage(sitk.ReadImage(str(paths["nibabel"])), str(paths["simpleitk"]), True)
    return paths


def run_nibabel(path: Path) -> int:
    return int(np.asanyarray(nib.load(str(path)).dataobj).shape[0])


def run_brainmets(path: Path, params: FeatureParameters, threads: int = 1) -> dict:
    return measure_label_map(load_segmentation(path), params, threads=threads).study


def run_simpleitk(path: Path) -> dict:
    img = sitk.ReadImage(str(path))
    core = sitk.Or(img == 1, img == 3)
    components = sitk.ConnectedComponent(core, True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputeFeretDiameterOn()
    stats.Execute(components)
    labels = stats.GetLabels()
    return {
        "lesion_count": len(labels),
        "volumes_ml": sorted((stats.GetPhysicalSize(i) / 1000 for i in labels), reverse=True),
        "feret_mm": [stats.GetFeretDiameter(i) for i in labels],
    }


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "features.json")
    args = parser.parse_args(argv)

    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023"})
    threads = default_threads()
    result = {
        "brainmets_version": __version__,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "simpleitk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
            "brainmets_threads": threads,
        },
        "map": {"shape": [240, 240, 155], "dtype": "uint8", "lesions": len(LESIONS)},
        "repeats": args.repeats,
        "files": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for writer, path in make_maps(Path(tmp)).items():
            ours, itk = run_brainmets(path, params), run_simpleitk(path)  # warm-up and cross-check
            run_nibabel(path)
            lesions = measure_label_map(load_segmentation(path), params).lesions
            assert ours["lesion_count"] == itk["lesion_count"] == len(LESIONS)
            assert np.allclose(sorted((r["volume_ml"] for r in lesions), reverse=True), itk["volumes_ml"])
            times: dict[str, list[float]] = {
                "nibabel_load": [],
                "brainmets_features": [],
                "brainmets_features_1_thread": [],
                "simpleitk_shape_feret": [],
            }
            for _ in range(args.repeats):
                times["nibabel_load"].append(timed(run_nibabel, path))
                times["brainmets_features"].append(timed(run_brainmets, path, params, threads))
                times["brainmets_features_1_thread"].append(timed(run_brainmets, path, params, 1))
                times["simpleitk_shape_feret"].append(timed(run_simpleitk, path))
            median = {k: float(np.median(v)) for k, v in times.items()}
            result["files"][writer] = {
                "bytes": path.stat().st_size,
                "median_seconds": median,
                "min_seconds": {k: float(np.min(v)) for k, v in times.items()},
                "ratio_features_to_nibabel_load": median["brainmets_features"] / median["nibabel_load"],
                "ratio_features_to_simpleitk": median["brainmets_features"] / median["simpleitk_shape_feret"],
                "ratio_1_thread_to_nibabel_load": median["brainmets_features_1_thread"] / median["nibabel_load"],
                "ratio_1_thread_to_simpleitk": median["brainmets_features_1_thread"] / median["simpleitk_shape_feret"],
            }
            result["map"]["cumulative_tumor_volume_ml"] = ours["cumulative_tumor_volume_ml"]
            result["largest_diameter_mm"] = {
                "brainmets_mesh": ours["largest_max_diameter_3d_mm"],
                "simpleitk_feret_voxel_centres": max(itk["feret_mm"]),
            }
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "brainmets", "features", str(path), "--out-dir", str(Path(tmp) / "out")],
            check=True,
        )
        result["cold_cli_seconds"] = time.perf_counter() - start

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for writer, figures in result["files"].items():
        print(f"file written by {writer} ({figures['bytes']} bytes)")
        print(f"  {'step':<30}{'median ms':>12}{'min ms':>10}")
        for key, value in figures["median_seconds"].items():
            print(f"  {key:<30}{value * 1000:>12.1f}{figures['min_seconds'][key] * 1000:>10.1f}")
        print(
            f"  features / nibabel load : {figures['ratio_features_to_nibabel_load']:.2f}x (target <= 10)"
            f"; one thread {figures['ratio_1_thread_to_nibabel_load']:.2f}x"
        )
        print(
            f"  features / SimpleITK    : {figures['ratio_features_to_simpleitk']:.2f}x (target < 1)"
            f"; one thread {figures['ratio_1_thread_to_simpleitk']:.2f}x"
        )
    print(f"cold CLI run (new process, imports included): {result['cold_cli_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
