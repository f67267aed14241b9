#!/usr/bin/env python3
"""Cohort scale: the whole workflow on N generated BraTS-size studies, and the dry run (DAG) of M studies.

Usage: python benchmarks/bench_cohort.py [--studies 1000] [--dag-studies 10000] [--cores 2] [--lesions small|12]
                                         [--work benchmarks/scratch/cohort] [--out benchmarks/results/cohort.json]

Each study is a 240 x 240 x 155 uint8 label map (BraTS-METS 2023 labels) drawn from 16 distinct maps (written
by SimpleITK, as segmentation tools write them) and copied, one file per study: with `--lesions small` 3-8
lesions with edema each, with `--lesions 12` the 12 metastases of bench_features.py (each map painted with
its own seed; results in benchmarks/results/cohort_12.json unless --out says otherwise); every study is located against the toy parcellation and evaluated against a clinical row. The run is
`snakemake --cores N` in a fresh folder (features, indications, cohort tables, figures, dataset
description), timed from the command line; the DAG is timed with `snakemake --dry-run --quiet`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
DISTINCT_MAPS = 16


def _generator():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "test_data" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def make_maps(folder: Path, lesions: str = "small") -> list[Path]:
    """16 distinct BraTS-size maps (seeded): 3-8 lesions each, or the 12 of bench_features.py."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_features import LESIONS

    gen = _generator()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(DISTINCT_MAPS):
        path = folder / f"map{n:02d}.nii.gz"
        paths.append(path)
        if path.exists():
            continue
        rng = np.random.default_rng(1000 + n)
        labels = np.zeros(gen.BRATS_SHAPE, np.uint8)
        if lesions == "12":
            for offset, core_r, edema_r, necrotic_r in LESIONS:
                gen.paint(labels, offset, core_r, rng, edema_r=edema_r, necrotic_r=necrotic_r)
        for _ in range(int(rng.integers(3, 9)) if lesions == "small" else 0):
            offset = rng.uniform([-50, -60, -35], [50, 50, 40])
            core = float(rng.uniform(2.5, 12))
            gen.paint(labels, offset, core, rng, edema_r=core * float(rng.uniform(1.6, 2.6)))
        gen.save(folder / "tmp.nii.gz", labels, gen.BRATS_AFFINE)
        sitk.WriteImage(sitk.ReadImage(str(folder / "tmp.nii.gz")), str(path), True)
        (folder / "tmp.nii.gz").unlink()
    shutil.copy(ROOT / "test_data" / "cohort" / "toy_aseg.nii.gz", folder / "toy_aseg.nii.gz")
    return paths


def make_cohort(work: Path, maps: list[Path], studies: int, link: bool) -> None:
    """A workflow folder: config, studies sheet, clinical table, one segmentation file per study."""
    if work.exists():
        shutil.rmtree(work)
    (work / "config").mkdir(parents=True)
    data = work / "data"
    data.mkdir()
    rows, clinical = [], []
    histologies = ["nsclc_adenocarcinoma", "breast_her2", "melanoma", "sclc", "renal", "colorectal"]
    for n in range(studies):
        subject = f"{n:05d}"
        target = data / f"sub-{subject}_dseg.nii.gz"
        (os.link if link else shutil.copy)(maps[n % len(maps)], target)
        rows.append(f"{subject}\t\tdata/{target.name}\tbrats-mets-2023\t{maps[0].parent / 'toy_aseg.nii.gz'}\n")
        clinical.append(
            f"{subject}\t{50 + n % 30}\t{60 + 10 * (n % 4)}\t{['controlled', 'progressive'][n % 2]}\t"
            f"{['yes', 'no'][n % 2]}\t{histologies[n % len(histologies)]}\n"
        )
    (work / "studies.tsv").write_text("subject\tsession\tsegmentation\tlabel_scheme\tparcellation\n" + "".join(rows))
    (work / "clinical.tsv").write_text(
        "subject\tage_years\tkps\textracranial_disease\textracranial_metastases\tprimary_histology\n"
        + "".join(clinical)
    )
    (work / "config" / "config.yaml").write_text("studies: studies.tsv\nresults_dir: results\nclinical: clinical.tsv\n")


def snakemake(work: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), *args],
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--dag-studies", type=int, default=10000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--lesions", choices=("small", "12"), default="small")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "scratch" / "cohort")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "benchmarks" / "results" / ("cohort.json" if args.lesions == "small" else "cohort_12.json")

    maps = make_maps(args.work / f"maps-{args.lesions}", args.lesions)
    result: dict = {"cores": args.cores, "distinct_maps": len(maps), "lesions_per_map": args.lesions}

    if args.dag_studies:
        dag = args.work / "dag"
        make_cohort(dag, maps, args.dag_studies, link=True)
        seconds, run = snakemake(dag, "--dry-run", "--quiet")
        assert run.returncode == 0, run.stderr[-2000:]
        result["dag_studies"] = args.dag_studies
        result["dry_run_seconds"] = seconds
        print(f"dry run, {args.dag_studies} studies: {seconds:.1f} s (target <= 60 s)")
        shutil.rmtree(dag)

    if args.studies:
        full = args.work / "full"
        make_cohort(full, maps, args.studies, link=False)
        seconds, run = snakemake(full, "--cores", str(args.cores), "--quiet")
        assert run.returncode == 0, run.stderr[-3000:]
        status = (full / "results" / "group" / "status.tsv").read_text().splitlines()
        assert len(status) == args.studies + 1 and all("\tok\t" in line for line in status[1:])
        again, run = snakemake(full, "--cores", str(args.cores), "--dry-run")
        result.update(
            {
                "studies": args.studies,
                "run_seconds": seconds,
                "seconds_per_study": seconds / args.studies,
                "second_dry_run_seconds": again,
                "second_run_nothing_to_do": "Nothing to be done" in run.stdout + run.stderr,
            }
        )
        print(
            f"full run, {args.studies} studies, --cores {args.cores}: {seconds:.0f} s "
            f"({seconds / args.studies:.2f} s per study; target <= 900 s)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
