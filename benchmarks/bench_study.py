#!/usr/bin/env python3
"""Per-study cost of `features` on three maps (four with a SynthSeg parcellation), paired in one run against
the bare nibabel load, SimpleITK and PyRadiomics, with brainmets' peak memory.

Usage: python benchmarks/bench_study.py [--rounds N] [--maps brats12,small200,fine12,synthseg12]
       [--out benchmarks/results/study.json] [--parcellation ../shared/data/real/synthseg/training_seg_01.nii.gz]

Maps (made with test_data/generate.py's painter, BraTS-METS 2023 labels, uint8 NIfTI written by nibabel):
- brats12: bench_features.py's 12 metastases on the BraTS grid (240 x 240 x 155, 1 mm);
- small200: 200 small metastases (core radius 1.5-3 mm, edema up to 6 mm) on the BraTS grid;
- fine12: the same 12 metastases on a 0.5 mm grid (512 x 512 x 320);
- synthseg12 (only when the SynthSeg parcellation `--parcellation` exists, else skipped with a note): the same
  12 metastases, the whole pattern (offsets and radii) scaled by 0.6 so that it stays in the brain, painted on
  the parcellation's grid (256^3 LIA, 1 mm, its nibabel affine) around the centroid of its cerebral white
  matter and cortex (labels 2, 3, 41, 42). Here brainmets is also timed with that subject parcellation as its
  anatomical reference (location, midline shift, ventricles, distances to structures where the code has them).
Contenders, one thread each (SimpleITK, brainmets, and numpy's BLAS unless OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS or MKL_NUM_THREADS says otherwise), import excluded, each timed once per round in a rotating
order so drift hits all alike:
- nibabel: nib.load + the data array (the bare load);
- brainmets: load_segmentation + measure_label_map (everything `features` measures, no location); on
  synthseg12 load_segmentation + build_reference(ReferenceChoice(parcellation=...)) + measure_label_map with
  that reference and LocationParameters(), the loaded-reference cache cleared first so that the parcellation
  is read for every study as for a new subject; the run without location is then `brainmets_no_reference`;
- SimpleITK: ReadImage + tumour-core mask + ConnectedComponent (26-conn.) + LabelShapeStatistics with Feret;
- PyRadiomics (when installed): ReadImage + the same components, then RadiomicsShape (3D) on each lesion's
  crop, as a radiomics pipeline does it.
Ratios brainmets / contender are taken per round; the median and the interquartile range are reported.
Peak memory: tracemalloc's peak (numpy's allocations included) during measure_label_map (on synthseg12
build_reference + measure_label_map), above the loaded map.
Geometry per lesion: surface mesh, mesh volume and area, axial diameters and maximum 3D diameter of every
lesion, timed alone (small200 is where this dominates).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

# one thread for numpy's BLAS too (set before numpy loads, the environment can override it): a multithreaded
# matrix product gains nothing on these sizes, and on a busy 2-core machine its spinning threads made the timings
# bimodal (synthseg12: 430 or 650 ms from one run to the next, the same code)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from brainmets import __version__
from brainmets.io import load_segmentation
from brainmets.measurement.geometry import (
    AxialGrid,
    axial_diameters,
    max_pairwise_distance,
    mesh_volume_and_area,
    surface_mesh,
)
from brainmets.measurement.lesions import find_lesions
from brainmets.measurement.parameters import FeatureParameters
from brainmets.schemes import CORE_ROLES, Role, role_mask
from brainmets.study.features import measure_label_map

try:  # the anatomical reference; a version without it skips synthseg12
    from brainmets.location import references
    from brainmets.location.parameters import LocationParameters
    from brainmets.location.references import ReferenceChoice, build_reference
except ImportError:  # pragma: no cover - older versions
    references = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_cohort import _generator  # noqa: E402
from bench_features import LESIONS, run_simpleitk  # noqa: E402

MAPS = ("brats12", "small200", "fine12", "synthseg12")
SYNTHSEG = ROOT.parent / "shared" / "data" / "real" / "synthseg" / "training_seg_01.nii.gz"
SYNTHSEG_SCALE = 0.6  # of the 12 metastases' offsets and radii: all inside the brain, none merged
SYNTHSEG_BRAIN = (2, 3, 41, 42)  # cerebral white matter and cortex, left and right
#: study fields of synthseg12 measured on the parcellation (None where the version has none of them)
ANATOMY_FIELDS = ("location_reference", "midline_shift_mm", "lateral_ventricle_volume_left_ml",
                  "lateral_ventricle_volume_right_ml", "third_ventricle_volume_ml", "evans_index")  # fmt: skip


def make_map(name: str, folder: Path, parcellation: Path | None = None) -> Path:
    gen = _generator()
    rng = np.random.default_rng(2024)
    if name == "synthseg12":
        img = nib.load(str(parcellation))
        brain = np.isin(np.asanyarray(img.dataobj), SYNTHSEG_BRAIN)
        centre = nib.affines.apply_affine(img.affine, np.argwhere(brain).mean(axis=0))  # ~ (0.5, -17.5, 27.0)
        labels = np.zeros(img.shape[:3], np.uint8)
        for offset, core_r, edema_r, necrotic_r in LESIONS:
            offset = np.asarray(offset) * SYNTHSEG_SCALE + centre - gen.BRATS_CENTRE  # paint adds BRATS_CENTRE
            radii = np.asarray([core_r, edema_r, necrotic_r], float) * SYNTHSEG_SCALE
            gen.paint(labels, offset, radii[0], rng, edema_r=radii[1], necrotic_r=radii[2], affine=img.affine)
        path = folder / f"{name}.nii.gz"
        gen.save(path, labels, img.affine)
        return path
    if name == "fine12":  # the BraTS field of view (and a little more) at 0.5 mm
        shape, affine = (512, 512, 320), gen.BRATS_AFFINE.copy()
        affine[:3, :3] *= 0.5
        affine[:3, 3] = gen.BRATS_CENTRE - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    else:
        shape, affine = gen.BRATS_SHAPE, gen.BRATS_AFFINE
    labels = np.zeros(shape, np.uint8)
    if name == "small200":
        centres = rng.uniform(-65, 65, size=(200, 3)) * [1, 1, 0.7]
        for offset in centres:
            core = rng.uniform(1.5, 3.0)
            gen.paint(labels, offset, core, rng, edema_r=core * rng.uniform(1.5, 2.0), affine=affine)
    else:
        for offset, core_r, edema_r, necrotic_r in LESIONS:
            gen.paint(labels, offset, core_r, rng, edema_r=edema_r, necrotic_r=necrotic_r, affine=affine)
    path = folder / f"{name}.nii.gz"
    gen.save(path, labels, affine)
    return path


def run_nibabel(path: Path) -> int:
    return int(np.asanyarray(nib.load(str(path)).dataobj).shape[0])


def run_brainmets(path: Path, params: FeatureParameters) -> dict:
    return measure_label_map(load_segmentation(path), params, threads=1).study


def run_brainmets_parcellation(path: Path, params: FeatureParameters, parcellation: Path) -> dict:
    """A study with its subject parcellation as reference, read anew (a batch of one subject per study)."""
    getattr(references, "_LOADED", {}).clear()
    label_map = load_segmentation(path)
    reference = build_reference(ReferenceChoice(parcellation=str(parcellation)), label_map)
    return measure_label_map(label_map, params, threads=1, reference=reference, location=LocationParameters()).study


def run_pyradiomics(path: Path) -> int:
    from radiomics import shape

    img = sitk.ReadImage(str(path))
    components = sitk.ConnectedComponent(sitk.Or(img == 1, img == 3), True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(components)
    for label in stats.GetLabels():
        x, y, z, sx, sy, sz = stats.GetBoundingBox(label)
        crop = sitk.RegionOfInterest(
            components, [sx + 2, sy + 2, sz + 2], [max(x - 1, 0), max(y - 1, 0), max(z - 1, 0)]
        )
        mask = sitk.Cast(crop == label, sitk.sitkUInt8)
        features = shape.RadiomicsShape(sitk.Cast(mask, sitk.sitkFloat32), mask, label=1)
        features.execute()
    return len(stats.GetLabels())


def has_pyradiomics() -> bool:
    return importlib.util.find_spec("radiomics") is not None


def geometry_ms_per_lesion(path: Path, params: FeatureParameters) -> float:
    """Geometry alone: mesh, volume and area, axial diameters, maximum 3D diameter of every lesion."""
    label_map = load_segmentation(path)
    scheme = params.scheme
    core = role_mask(label_map.labels, scheme, *CORE_ROLES)
    lesions = find_lesions(core, role_mask(label_map.labels, scheme, Role.EDEMA), label_map.affine, params.connectivity,
                           params.min_lesion_volume_mm3)  # fmt: skip
    grid = AxialGrid.from_affine(label_map.affine, label_map.shape)
    start = time.perf_counter()
    for lesion_id in range(1, lesions.count + 1):
        box = lesions.boxes[lesion_id - 1]
        mesh = surface_mesh(lesions.mask(lesion_id), label_map.affine, tuple(s.start for s in box))
        mesh_volume_and_area(mesh)
        axial_diameters(mesh, grid)
        max_pairwise_distance(mesh.vertices)
    return (time.perf_counter() - start) * 1000 / max(lesions.count, 1)


def peak_memory_mb(path: Path, params: FeatureParameters, parcellation: Path | None = None) -> dict[str, float]:
    label_map = load_segmentation(path)
    if parcellation is not None:
        getattr(references, "_LOADED", {}).clear()
    tracemalloc.start()
    if parcellation is None:
        measure_label_map(label_map, params, threads=1)
    else:
        reference = build_reference(ReferenceChoice(parcellation=str(parcellation)), label_map)
        measure_label_map(label_map, params, threads=1, reference=reference, location=LocationParameters())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"map_mb": label_map.labels.nbytes / 1e6, "peak_above_map_mb": peak / 1e6}


def summary(values: list[float]) -> dict[str, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def bench_map(name: str, path: Path, params: FeatureParameters, rounds: int, parcellation: Path | None = None) -> dict:
    contenders = {
        "nibabel_load": lambda: run_nibabel(path),
        "brainmets": lambda: run_brainmets(path, params),
        "simpleitk_shape_feret": lambda: run_simpleitk(path),
    }
    if parcellation is not None:
        contenders["brainmets_no_reference"] = contenders["brainmets"]
        contenders["brainmets"] = lambda: run_brainmets_parcellation(path, params, parcellation)
    if has_pyradiomics():
        contenders["pyradiomics_shape_crops"] = lambda: run_pyradiomics(path)
    study = contenders["brainmets"]()  # warm-up and cross-check
    itk = run_simpleitk(path)
    assert study["lesion_count"] == itk["lesion_count"], (study["lesion_count"], itk["lesion_count"])
    if parcellation is not None:  # every lesion located in the brain
        assert study["location_reference"] and not study["location_notes"], study
    for run in contenders.values():
        run()
    seconds: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[k]()
            seconds[k].append(time.perf_counter() - start)
    ours = np.asarray(seconds["brainmets"])
    return {
        "file_bytes": path.stat().st_size,
        "lesions": study["lesion_count"],
        "reference": None if parcellation is None else str(parcellation),
        "anatomy": {k: study.get(k) for k in ANATOMY_FIELDS} if parcellation is not None else None,
        "seconds": {k: summary(v) for k, v in seconds.items()},
        "ratio_brainmets_to": {k: summary(list(ours / np.asarray(v))) for k, v in seconds.items() if k != "brainmets"},
        "geometry_ms_per_lesion": geometry_ms_per_lesion(path, params),
        "memory": peak_memory_mb(path, params, parcellation),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--maps", default=",".join(MAPS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "study.json")
    parser.add_argument("--parcellation", type=Path, default=SYNTHSEG, help="SynthSeg parcellation of synthseg12")
    args = parser.parse_args(argv)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    # every core component is a lesion, as for SimpleITK and PyRadiomics (the default drops those under 20 mm3)
    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023", "min_lesion_volume_mm3": 0})
    result = {
        "brainmets_version": __version__,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "threads": 1,
            "blas_threads": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        },
        "rounds": args.rounds,
        "pyradiomics": has_pyradiomics(),
        "maps": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.maps.split(","):
            parcellation = args.parcellation.resolve() if name == "synthseg12" else None
            if parcellation is not None and (references is None or not parcellation.is_file()):
                why = "no brainmets.location.references" if references is None else f"{parcellation} is absent"
                print(f"{name}: skipped ({why})")
                continue
            path = make_map(name, Path(tmp), parcellation)
            result["maps"][name] = figures = bench_map(name, path, params, args.rounds, parcellation)
            print(f"{name}: {figures['lesions']} lesions, {figures['file_bytes']} bytes")
            if figures["anatomy"]:
                print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in figures["anatomy"].items()))  # fmt: skip
            for k, v in figures["seconds"].items():
                print(f"  {k:<26} {v['median'] * 1000:9.1f} ms  (IQR {v['q1'] * 1000:.1f}-{v['q3'] * 1000:.1f})")
            for k, v in figures["ratio_brainmets_to"].items():
                print(f"  brainmets / {k:<26} {v['median']:6.2f}x  (IQR {v['q1']:.2f}-{v['q3']:.2f})")
            print(f"  geometry {figures['geometry_ms_per_lesion']:.2f} ms per lesion; peak "
                  f"{figures['memory']['peak_above_map_mb']:.0f} MB above the {figures['memory']['map_mb']:.0f} MB map")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
