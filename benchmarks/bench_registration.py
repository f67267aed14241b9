#!/usr/bin/env python3
"""Template registration: time and accuracy of bringing the SRI24 posterior fossa into a subject's space.

Usage: python benchmarks/bench_registration.py [--shared ../shared] [--out benchmarks/results/registration.json]

Two subjects, each with a known truth:
- synthetic: the SRI24 T1 template moved by a known similarity transform (10 degrees, scale 1.08, shift);
- real: a BRATS 2015 T1c (in SRI24 space) whose header is moved by a known rigid transform (6 degrees, shift).
For each: registration time (similarity + affine, and with the B-spline stage), Dice of the recovered
posterior-fossa mask against the truth, and the brain-mask Dice the pipeline records.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from brainmets.io import LabelMap, load_segmentation
from brainmets.location.parameters import RegistrationParameters
from brainmets.location.references import ReferenceChoice, build_reference
from brainmets.location.registration import resample_onto

ROOT = Path(__file__).resolve().parents[1]


def posterior_fossa(reference_images: dict) -> np.ndarray:
    return (reference_images["tissues"].labels > 0) & (reference_images["suptent"].labels == 0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * (a & b).sum() / (a.sum() + b.sum()))


def synthetic_subject(atlas: Path, tmp: Path) -> tuple[Path, LabelMap, np.ndarray]:
    template = sitk.ReadImage(str(atlas / "spgr.nii.gz"), sitk.sitkFloat32)
    known = sitk.Similarity3DTransform()
    known.SetCenter(template.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in template.GetSize()]))
    known.SetRotation((1, 0.3, 0.2), math.radians(10))
    known.SetScale(1.08)
    known.SetTranslation((6, -4, 3))
    path = tmp / "synthetic_subject.nii.gz"
    sitk.WriteImage(sitk.Resample(template, template, known, sitk.sitkLinear, 0), str(path))
    tissues, suptent = load_segmentation(atlas / "tissues.nii.gz"), load_segmentation(atlas / "suptent.nii.gz")
    pf = LabelMap(((tissues.labels > 0) & (suptent.labels == 0)).astype(np.uint8), tissues.affine, "pf")
    grid = LabelMap(np.zeros(pf.shape, np.uint8), tissues.affine, "grid")
    return path, grid, resample_onto(pf, grid, known).labels == 1


def real_subject(shared: Path, atlas: Path, tmp: Path) -> tuple[Path, LabelMap, np.ndarray]:
    t1c = nib.load(shared / "data/real/deepmedic-brats2015/brats_2013_pat0001_1/T1c_subtrMeanDivStd.nii.gz")
    angle = math.radians(6)
    moved = np.eye(4)
    moved[:2, :2] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    moved[:3, 3] = [8.0, -5.0, 4.0]
    affine = moved @ t1c.affine
    path = tmp / "real_subject.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(t1c.dataobj), affine), str(path))
    tissues, suptent = load_segmentation(atlas / "tissues.nii.gz"), load_segmentation(atlas / "suptent.nii.gz")
    ijk = np.indices(t1c.shape).reshape(3, -1).T
    sri = np.rint(nib.affines.apply_affine(np.linalg.inv(tissues.affine) @ t1c.affine, ijk)).astype(int).T
    truth = ((tissues.labels[tuple(sri)] > 0) & (suptent.labels[tuple(sri)] == 0)).reshape(t1c.shape)
    return path, LabelMap(np.zeros(t1c.shape, np.uint8), affine, "grid"), truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "registration.json")
    args = parser.parse_args(argv)
    atlas = args.shared / "data/real/sri24-atlas"
    if not atlas.is_dir():
        print(f"no SRI24 atlas at {atlas}: nothing to measure", file=sys.stderr)
        return 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        subjects = {
            "synthetic_similarity": synthetic_subject(atlas, Path(tmp)),
            "real_brats_t1c": real_subject(args.shared, atlas, Path(tmp)),
        }
        for name, (subject, grid, truth) in subjects.items():
            for stage, params in (
                ("linear", RegistrationParameters()),
                ("deformable", replace(RegistrationParameters(), deformable=True)),
            ):
                choice = ReferenceChoice(template="sri24", atlas_dir=str(atlas), subject_image=str(subject))
                reference = build_reference(choice, grid, params)
                quality = reference.provenance["registration"]
                results[f"{name}/{stage}"] = {
                    "posterior_fossa_dice": dice(posterior_fossa(reference.images), truth),
                    "brain_mask_dice": quality["brain_mask_dice"],
                    "final_metric": quality["final_metric"],
                    "seconds": quality["seconds"],
                }
                row = results[f"{name}/{stage}"]
                print(
                    f"{name:22s} {stage:10s} PF Dice {row['posterior_fossa_dice']:.4f}  "
                    f"brain Dice {row['brain_mask_dice']:.3f}  {row['seconds']:.1f} s"
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
