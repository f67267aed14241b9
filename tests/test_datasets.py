"""The demo shipped with the package (brainmets.datasets): small, complete, the crop of test_data/cohort that
measures as the full-size files do, and enough for the README's Python example."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

import brainmets
from brainmets import datasets
from brainmets.io.writers import to_jsonable

from .conftest import ROOT, TEST_DATA

COHORT = TEST_DATA / "cohort"


def _without_grid_positions(document: dict) -> dict:
    """A document without what a crop changes: voxel indices and the file's digest and shape."""
    document = to_jsonable(document)
    document.pop("provenance", None)
    for lesion in document.get("lesions", []):
        for key in [k for k in lesion if k.startswith("bbox_")]:
            del lesion[key]
    return document


def test_demo_gives_existing_small_files_inside_the_package():
    demo = datasets.demo()
    package = ROOT / "src" / "brainmets"
    files = [demo.studies, demo.clinical, *demo.segmentations, demo.segmentation, demo.prediction, demo.parcellation]
    for path in files:
        assert path.is_file() and path.is_relative_to(package / "data" / "demo"), path
    assert demo.segmentation == demo.segmentations[0] and len(demo.segmentations) == 3
    shipped = sorted(p.name for p in demo.folder.iterdir())
    assert shipped == sorted({p.name for p in files}), "every file of the folder is in the demo, and only those"
    assert sum(p.stat().st_size for p in demo.folder.iterdir()) < 100_000  # bytes: far below 1 MB
    assert "\n" not in repr(demo) and len(repr(demo)) <= 200
    sheet = pd.read_csv(demo.studies, sep="\t", dtype=str, keep_default_na=False)
    assert [demo.folder / name for name in sheet["segmentation"]] == list(demo.segmentations)
    assert sheet.loc[sheet["subject"] == "10", "date"].tolist() == ["2024-01-10", "2024-03-20"]
    clinical = pd.read_csv(demo.clinical, sep="\t", dtype=str, keep_default_na=False)
    assert clinical[["subject", "session"]].values.tolist() == [["02", "01"]]


def test_every_demo_segmentation_has_lesions_and_measures():
    demo = datasets.demo()
    sheet = pd.read_csv(demo.studies, sep="\t", dtype=str, keep_default_na=False)
    for path, subject, session in zip(demo.segmentations, sheet["subject"], sheet["session"]):
        measurement = brainmets.measure(path, subject=subject, session=session)
        assert measurement.study["lesion_count"] >= 2 and not measurement.lesions.empty, path.name
        assert not measurement.lesions["touches_image_border"].any(), path.name
    follow = brainmets.follow_up(demo.studies, subject="10")
    assert len(follow["sessions"]) == 2 and follow.responses["response"].tolist() == ["baseline", "PR"]


def test_the_demo_is_test_data_cropped_and_measures_as_the_full_size_files(tmp_path):
    built = datasets.build(COHORT, tmp_path)
    demo = datasets.demo()
    for path in built:  # the shipped files are what build() makes of test_data/cohort today
        shipped = demo.folder / path.name
        if path.suffix == ".tsv":
            assert path.read_text() == shipped.read_text(), path.name
        else:
            ours, theirs = nib.load(path), nib.load(shipped)
            assert np.array_equal(ours.get_fdata(), theirs.get_fdata()) and np.allclose(ours.affine, theirs.affine)
    full = brainmets.locate(
        COHORT / "sub-02_ses-01_dseg.nii.gz", parcellation=COHORT / "toy_aseg.nii.gz", subject="02", session="01"
    )
    cropped = brainmets.locate(demo.segmentation, parcellation=demo.parcellation, subject="02", session="01")
    assert _without_grid_positions(cropped.document) == _without_grid_positions(full.document)
    assert cropped.lesions["location"].tolist() == ["supratentorial", "infratentorial", "supratentorial"]
    for name in ("sub-02_ses-01_desc-model_pred.nii.gz", "sub-10_ses-01_dseg.nii.gz", "sub-10_ses-02_dseg.nii.gz"):
        full, cropped = brainmets.measure(COHORT / name), brainmets.measure(demo.folder / name)
        assert _without_grid_positions(cropped.document) == _without_grid_positions(full.document), name
