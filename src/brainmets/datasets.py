"""A small demo shipped with the package (``brainmets/data/demo/``, about 30 kB), so that the examples of the
documentation run from a wheel install, without a clone.

The demo is a crop of the repository's synthetic demo cohort (``test_data/cohort``, made by
``test_data/generate.py``): every file keeps its voxels and its world coordinates (only the empty border is cut
off), so every measurement is that of the full-size file. It holds:

- ``sub-02_ses-01``: one study with three lesions and their edema (``segmentation``), a model's segmentation of
  the same study (``prediction``: it misses one lesion and invents one), and a toy FreeSurfer-style parcellation
  on the study's grid (``parcellation``);
- ``sub-10``: a follow-up of two dated sessions (2024-01-10, SRS after the scan; 2024-03-20 on a thick-slice
  grid): both lesions shrink;
- the studies sheet listing the four segmentations (``studies``: subject, session, segmentation, label_scheme,
  parcellation, date, treatment, prediction; paths relative to its folder) and a synthetic clinical table with
  sub-02's row (``clinical``).

Research use only: synthetic data, not patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Demo", "demo"]

#: Where the demo's files are, inside the installed package.
FOLDER = Path(__file__).resolve().parent / "data" / "demo"

#: The demo's files: (name in the demo, file of test_data/cohort it is cropped from, crop group). Files of one
#: group share their crop (the union of their non-zero voxels, plus a margin), so they stay on one grid.
FILES = (
    ("sub-02_ses-01_dseg.nii.gz", "sub-02_ses-01_dseg.nii.gz", "02"),
    ("sub-02_ses-01_desc-model_pred.nii.gz", "sub-02_ses-01_desc-model_pred.nii.gz", "02"),
    ("sub-02_ses-01_aseg.nii.gz", "toy_aseg.nii.gz", None),  # cropped as the 02 group, not widening it
    ("sub-10_ses-01_dseg.nii.gz", "sub-10_ses-01_dseg.nii.gz", "10-01"),
    ("sub-10_ses-02_dseg.nii.gz", "sub-10_ses-02_dseg.nii.gz", "10-02"),
)
#: The reference segmentations, in the studies sheet's order.
SEGMENTATIONS = ("sub-02_ses-01_dseg.nii.gz", "sub-10_ses-01_dseg.nii.gz", "sub-10_ses-02_dseg.nii.gz")
#: Voxels kept around the labels: lesions stay off the image's border.
MARGIN = 4

STUDIES_TSV = """\
subject\tsession\tsegmentation\tlabel_scheme\tparcellation\tdate\ttreatment\tprediction
02\t01\tsub-02_ses-01_dseg.nii.gz\tbrats-mets-2023\tsub-02_ses-01_aseg.nii.gz\t\t\tsub-02_ses-01_desc-model_pred.nii.gz
10\t01\tsub-10_ses-01_dseg.nii.gz\tbrats-mets-2023\t\t2024-01-10\tsrs\t
10\t02\tsub-10_ses-02_dseg.nii.gz\tbrats-mets-2023\t\t2024-03-20\t\t
"""


@dataclass(frozen=True, repr=False)
class Demo:
    """Paths of the demo's files (see :mod:`brainmets.datasets`)."""

    folder: Path
    #: the studies sheet (TSV): the workflow's sheet, and the follow-up's timeline with ``subject="10"``
    studies: Path
    #: the synthetic clinical table (TSV, sub-02's row)
    clinical: Path
    #: every reference segmentation, in the sheet's order: sub-02 ses-01, sub-10 ses-01, sub-10 ses-02
    segmentations: tuple[Path, ...]
    #: sub-02 ses-01: three lesions with edema
    segmentation: Path
    #: a model's segmentation of sub-02 ses-01 (for :func:`brainmets.compare`)
    prediction: Path
    #: an aseg-labelled toy parcellation on sub-02 ses-01's grid (for :func:`brainmets.locate`)
    parcellation: Path

    def __repr__(self) -> str:
        return f"<brainmets demo: {len(self.segmentations)} segmentations, a prediction, studies.tsv, clinical.tsv>"


def demo() -> Demo:
    """The paths of the demo shipped with the package: three segmentations (one study of three lesions, a
    follow-up of two dated sessions), a model's prediction, a toy parcellation, a studies sheet and a clinical
    table (synthetic data; see :mod:`brainmets.datasets`).

    Returns:
        a :class:`Demo` of :class:`pathlib.Path` objects, each an existing file of the installed package.

    Raises:
        FileNotFoundError: the package was installed without its demo files.

    Example::

        >>> import brainmets
        >>> files = brainmets.datasets.demo()
        >>> brainmets.measure(files.segmentation, subject="02", session="01").study["lesion_count"]
        3
        >>> brainmets.follow_up(files.studies, subject="10").responses["response"].tolist()
        ['baseline', 'PR']
    """
    demo_files = Demo(
        folder=FOLDER,
        studies=FOLDER / "studies.tsv",
        clinical=FOLDER / "clinical.tsv",
        segmentations=tuple(FOLDER / name for name in SEGMENTATIONS),
        segmentation=FOLDER / "sub-02_ses-01_dseg.nii.gz",
        prediction=FOLDER / "sub-02_ses-01_desc-model_pred.nii.gz",
        parcellation=FOLDER / "sub-02_ses-01_aseg.nii.gz",
    )
    names = ("studies.tsv", "clinical.tsv", *(name for name, _, _ in FILES))
    missing = [name for name in names if not (FOLDER / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{FOLDER}: the demo lacks {', '.join(missing)} (an install without package data?)")
    return demo_files


def build(cohort: str | Path, out: str | Path = FOLDER) -> list[Path]:
    """Write the demo from the repository's ``test_data/cohort`` into ``out`` (deterministic: the same bytes
    each time). For maintainers: ``python -m brainmets.datasets test_data/cohort``."""
    import gzip

    import nibabel as nib
    import numpy as np

    cohort, out = Path(cohort), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = {name: nib.load(cohort / source) for name, source, _ in FILES}
    boxes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, _, group in FILES:
        if group is None:
            continue
        found = np.argwhere(np.asarray(images[name].dataobj))
        low, high = found.min(axis=0), found.max(axis=0) + 1
        if group in boxes:
            low, high = np.minimum(low, boxes[group][0]), np.maximum(high, boxes[group][1])
        boxes[group] = low, high
    written = []
    for name, _, group in FILES:
        image = images[name]
        low, high = boxes[group or "02"]
        low = np.maximum(low - MARGIN, 0)
        high = np.minimum(high + MARGIN, image.shape)
        data = np.asarray(image.dataobj)[tuple(slice(a, b) for a, b in zip(low, high))]
        affine = image.affine.copy()
        affine[:3, 3] = image.affine[:3, :3] @ low + image.affine[:3, 3]
        cropped = nib.Nifti1Image(data.astype(image.get_data_dtype()), affine)
        cropped.set_sform(affine, code=1)
        cropped.set_qform(affine, code=1)
        cropped.header.set_xyzt_units("mm")
        path = out / name
        path.write_bytes(gzip.compress(cropped.to_bytes(), compresslevel=9, mtime=0))
        written.append(path)
    (out / "studies.tsv").write_text(STUDIES_TSV, encoding="utf-8")
    lines = (cohort / "clinical.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (out / "clinical.tsv").write_text(
        lines[0] + "".join(x for x in lines[1:] if x.startswith("02\t")), encoding="utf-8"
    )
    return [*written, out / "studies.tsv", out / "clinical.tsv"]


if __name__ == "__main__":
    import sys

    for written_path in build(*sys.argv[1:2]):
        print(written_path)
