#!/usr/bin/env python3
"""Reading one BraTS-size segmentation (240 x 240 x 155, the demo cohort's sub-03: 12 lesions) in every
format: NIfTI, NRRD, MHA, DICOM label series, DICOM SEG (empty frames omitted) and RTSTRUCT.

Usage: python benchmarks/bench_formats.py [--out benchmarks/results/formats.json]
Writes the files with the tests' writers (tests/dicom_fixtures.py) into a temporary folder; times
`load_segmentation` (best of 5) and checks every format holds the NIfTI's count of labelled voxels.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brainmets.io import load_segmentation  # noqa: E402
from tests.dicom_fixtures import write_rtstruct, write_seg, write_series  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "formats.json")
    args = parser.parse_args(argv)
    source = ROOT / "test_data" / "cohort" / "sub-03_ses-01_dseg.nii.gz"
    img = nib.load(source)
    labels = np.asarray(img.dataobj).astype(np.uint8)
    result = {"shape": list(labels.shape), "seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = {"nifti": source}
        for suffix in ("nrrd", "mha"):
            paths[suffix] = folder / f"seg.{suffix}"
            sitk.WriteImage(sitk.ReadImage(str(source)), str(paths[suffix]), True)
        write_series(folder / "mr", labels.astype(np.int16) * 100, img.affine)
        write_series(folder / "labels", labels.astype(np.uint16), img.affine)
        paths["dicom-series"] = folder / "labels"
        paths["dicom-seg"] = write_seg(folder / "seg.dcm", labels, folder / "mr")
        paths["dicom-rtstruct"] = write_rtstruct(folder / "mr" / "rt.dcm", labels, folder / "mr")
        expected = int((labels > 0).sum())
        for fmt, path in paths.items():
            times = []
            for _ in range(5):
                start = time.perf_counter()
                label_map = load_segmentation(path)
                times.append(time.perf_counter() - start)
            assert int((label_map.labels > 0).sum()) == expected, fmt
            result["seconds"][fmt] = round(min(times), 4)
            print(f"{fmt:15s} {min(times):6.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
