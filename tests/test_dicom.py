"""Every segmentation format gives the same answer: NIfTI, NRRD, MHA, DICOM label series, DICOM SEG (binary,
fractional), RTSTRUCT; oblique and sagittal DICOM as their axial NIfTI; broken DICOM inputs; no identifier
leaks."""

from __future__ import annotations

import gzip
import json
import logging
import math
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

from brainmets.cli import main
from brainmets.errors import InputDataError
from brainmets.io import load_segmentation
from brainmets.io.dicom import DicomOptions, uid_digest

from .conftest import PHANTOMS, ROOT
from .dicom_fixtures import (
    IDENTIFIERS,
    planted_strings,
    write_rtstruct,
    write_seg,
    write_series,
)

pytest.importorskip("highdicom")

#: postop phantom (edema, enhancing, cavity) on an anisotropic grid with a flipped first axis
AFFINE = np.array([[-0.9, 0, 0, 40.0], [0, 1.1, 0, -30.0], [0, 0, 2.0, -20.0], [0, 0, 0, 1]])


def _labels(name: str) -> np.ndarray:
    return np.asarray(nib.load(PHANTOMS / name).dataobj).astype(np.uint8)


def _write_formats(folder, labels, affine) -> dict:
    """The same segmentation in every format; returns format -> input path."""
    folder.mkdir(parents=True, exist_ok=True)
    nifti = folder / "seg.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), nifti)
    paths = {"nifti": nifti}
    for suffix in ("nrrd", "mha"):
        paths[suffix] = folder / f"seg.{suffix}"
        sitk.WriteImage(sitk.ReadImage(str(nifti)), str(paths[suffix]), True)
    write_series(folder / "mr", labels.astype(np.int16) * 300 + 20, affine)
    write_series(folder / "labelseries", labels.astype(np.uint16), affine)
    paths["dicom-series"] = folder / "labelseries"
    paths["dicom-seg"] = write_seg(folder / "seg.dcm", labels, folder / "mr", omit_empty_frames=False)
    paths["dicom-seg-sparse"] = write_seg(folder / "seg_sparse.dcm", labels, folder / "mr")  # empty frames omitted
    paths["dicom-rtstruct"] = write_rtstruct(folder / "mr" / "rtstruct.dcm", labels, folder / "mr")
    return paths


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    return _write_formats(tmp_path_factory.mktemp("formats"), _labels("postop.nii.gz"), AFFINE)


def _features(seg, out, *extra) -> dict:
    code = main(["features", str(seg), "--subject", "01", "--out-json", str(out), "--threads", "1", *map(str, extra)])
    assert code == 0
    return json.loads(out.read_text())


#: voxel-index fields (each format orders its array differently); everything else must agree
NOT_FEATURES = {"bbox_i_min", "bbox_i_max", "bbox_j_min", "bbox_j_max", "bbox_k_min", "bbox_k_max"}


def _assert_same(reference: dict, other: dict, rel: float, fmt: str) -> None:
    """Study and lesion fields equal, numbers to ``rel`` (and millimetres to 1e-5 mm)."""

    def same(a, b, where):
        if isinstance(a, dict):
            assert set(a) == set(b), where
            for key in a:
                if key not in NOT_FEATURES:
                    same(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for n, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}[{n}]")
        elif isinstance(a, float) and isinstance(b, float):
            # lengths and positions to 10 nm too (DICOM positions are decimal strings: 0.25 may read 0.250001)
            assert b == pytest.approx(a, rel=rel, abs=1e-5 if where.endswith("_mm") else 1e-9), f"{fmt}: {where}"
        else:
            assert a == b, f"{fmt}: {where}: {a!r} != {b!r}"

    same(reference["study"], other["study"], "study")
    same(reference["lesions"], other["lesions"], "lesions")


def _world_voxels(label_map) -> np.ndarray:
    """(x, y, z, label) of every labelled voxel in RAS mm, sorted: the segmentation whatever the array order."""
    index = np.argwhere(label_map.labels > 0)
    world = index @ label_map.affine[:3, :3].T + label_map.affine[:3, 3]
    rows = np.column_stack([np.round(world, 3), label_map.labels[tuple(index.T)]])
    return rows[np.lexsort(rows.T[::-1])]


def test_every_format_holds_the_same_voxels_in_world_space(formats):
    reference = _world_voxels(load_segmentation(formats["nifti"]))
    for fmt in ("nrrd", "mha", "dicom-series"):
        assert np.allclose(_world_voxels(load_segmentation(formats[fmt])), reference, atol=1e-3), fmt
    one_slice = sorted(formats["dicom-series"].glob("*.dcm"))[3]  # a file of the series: the whole series
    assert np.array_equal(_world_voxels(load_segmentation(one_slice)), reference)
    assert load_segmentation(formats["dicom-series"]).provenance["input_format"] == "dicom-series"


def test_dicom_messages_are_redacted(formats, caplog):
    """pydicom/highdicom warnings and errors can quote header values: they leave the reader redacted."""
    from brainmets.io.dicom.headers import Redactor, guarded

    redactor = Redactor()
    redactor.add(pydicom.dcmread(formats["dicom-seg"], stop_before_pixels=True))
    name, pid = IDENTIFIERS["PatientName"], IDENTIFIERS["PatientID"]
    with pytest.raises(InputDataError) as exc, caplog.at_level("WARNING"):
        with guarded(formats["dicom-seg"], redactor):
            import warnings

            warnings.warn(f"invalid value {name!r} for VR PN", UserWarning, stacklevel=1)
            logging.getLogger("pydicom").warning("patient %s", pid)
            raise ValueError(f"bad header of {name} ({IDENTIFIERS['StudyInstanceUID']})")
    assert "<redacted>" in str(exc.value)
    for planted in planted_strings():
        assert planted not in str(exc.value) and planted not in caplog.text


@pytest.mark.parametrize("fmt", ["nrrd", "mha", "dicom-series", "dicom-seg", "dicom-seg-sparse"])
def test_same_features_whatever_the_format(formats, fmt, tmp_path):
    reference = _features(formats["nifti"], tmp_path / "nifti.json")
    other = _features(formats[fmt], tmp_path / f"{fmt}.json")
    _assert_same(reference, other, 1e-6, fmt)
    assert other["provenance"]["input_format"] == fmt.removesuffix("-sparse")


def test_rtstruct_within_three_percent_and_a_voxel_diagonal(formats, tmp_path):
    reference = _features(formats["nifti"], tmp_path / "nifti.json")
    rt = _features(formats["dicom-rtstruct"], tmp_path / "rt.json")
    diagonal = math.sqrt(0.9**2 + 1.1**2 + 2.0**2)
    assert len(rt["lesions"]) == len(reference["lesions"])
    for a, b in zip(reference["lesions"], rt["lesions"]):
        for key in ("volume_ml", "enhancing_volume_ml", "edema_volume_ml"):
            if a.get(key):
                assert b[key] == pytest.approx(a[key], rel=0.03), key
        assert abs(b["max_diameter_3d_mm"] - a["max_diameter_3d_mm"]) <= diagonal
    assert rt["study"]["resection_cavity_volume_ml"] == pytest.approx(
        reference["study"]["resection_cavity_volume_ml"], rel=0.03
    )
    assert "centre lies inside" in rt["provenance"]["rasterisation"]


def test_rtstruct_holes_by_the_even_odd_rule(tmp_path):
    """A ring (an outer contour and an inner one) fills only the ring."""
    labels = np.zeros((30, 30, 6), np.uint8)
    yy, xx = np.mgrid[:30, :30]
    r = np.hypot(xx - 15, yy - 15)
    labels[(r <= 10) & (r > 4), 1:5] = 3
    write_series(tmp_path / "mr", labels.astype(np.int16), np.eye(4))
    write_rtstruct(tmp_path / "mr" / "rt.dcm", labels, tmp_path / "mr", rois={"GTV ring": labels == 3})
    label_map = load_segmentation(tmp_path / "mr" / "rt.dcm")
    assert np.array_equal(label_map.labels > 0, labels > 0)
    assert label_map.labels[15, 15, 2] == 0  # the hole stays empty


def test_fractional_seg_and_overlapping_segments(tmp_path):
    labels = _labels("postop.nii.gz")
    write_series(tmp_path / "mr", labels.astype(np.int16), AFFINE)
    enhancing = labels == 3
    whole = labels > 0
    fractional = {"Enhancing tumor": enhancing * 0.8, "Peritumoral edema": (labels == 2) * 0.4 + enhancing * 0.6}
    write_seg(tmp_path / "frac.dcm", labels, tmp_path / "mr", fractional=True, masks=fractional)
    label_map = load_segmentation(tmp_path / "frac.dcm")
    assert label_map.provenance["segmentation_type"] == "FRACTIONAL"
    roles = {int(v): (label_map.labels == v).sum() for v in np.unique(label_map.labels) if v}
    assert roles == {1: enhancing.sum()}  # edema at 0.4 is below the 0.5 threshold; enhancing wins the overlap
    label_map = load_segmentation(tmp_path / "frac.dcm", DicomOptions(fractional_threshold=0.3))
    assert (label_map.labels == 4).sum() == (labels == 2).sum()  # edema (4) now counts
    assert (label_map.labels == 1).sum() == enhancing.sum()  # overlap: enhancing before edema

    write_seg(tmp_path / "overlap.dcm", labels, tmp_path / "mr", masks={"Edema": whole, "Enhancing": enhancing})
    label_map = load_segmentation(tmp_path / "overlap.dcm")
    assert (label_map.labels == 1).sum() == enhancing.sum() and (label_map.labels == 4).sum() == (
        whole & ~enhancing
    ).sum()
    edema_first = DicomOptions(overlap_priority=("edema", "enhancing", "necrotic", "core", "cavity"))
    assert (load_segmentation(tmp_path / "overlap.dcm", edema_first).labels == 1).sum() == 0


def test_segment_roles_are_configurable(tmp_path, capsys):
    labels = _labels("sphere.nii.gz")
    write_series(tmp_path / "mr", labels.astype(np.int16), np.eye(4))
    write_seg(tmp_path / "seg.dcm", labels, tmp_path / "mr", masks={"Lesion 1": labels > 0, "Brain": labels >= 0})
    label_map = load_segmentation(tmp_path / "seg.dcm")
    assert label_map.scheme.name == "dicom-roles" and set(np.unique(label_map.labels)) == {0, 3}  # core; brain ignored
    write_seg(tmp_path / "odd.dcm", labels, tmp_path / "mr", masks={"Zone A": labels > 0})
    with pytest.raises(InputDataError, match=r"unknown segment 1 'Zone A': it matches no role"):
        load_segmentation(tmp_path / "odd.dcm")
    options = tmp_path / "roles.yaml"
    options.write_text("dicom:\n  segment_roles:\n    - {pattern: '^zone', role: enhancing}\n")
    document = _features(tmp_path / "odd.dcm", tmp_path / "f.json", "--dicom-options", options)
    assert document["study"]["lesion_count"] == 1 and document["lesions"][0]["enhancing_volume_ml"] > 0


def _oblique_affine(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.8, 1.5])
    affine[:3, 3] = [-20, 10, 5]
    return affine


@pytest.mark.slow
def test_oblique_and_sagittal_dicom_match_their_nifti(tmp_path):
    labels = _labels("postop.nii.gz")
    # oblique: the same voxels and affine as NIfTI and as a DICOM series / SEG
    oblique = _write_formats(tmp_path / "oblique", labels, _oblique_affine(0.35))
    reference = _features(oblique["nifti"], tmp_path / "o_nifti.json")
    for fmt in ("dicom-series", "dicom-seg"):
        _assert_same(reference, _features(oblique[fmt], tmp_path / f"o_{fmt}.json"), 1e-6, f"oblique {fmt}")
    # sagittal acquisition: slices along x; the axial NIfTI holds the same voxels in world space
    axial_affine = np.diag([1.0, 1.0, 1.2, 1.0])
    sagittal = labels.transpose(1, 2, 0)  # (y, z, x): rows along y, columns along z, slices along x
    sagittal_affine = np.zeros((4, 4))
    sagittal_affine[:, 3] = [0, 0, 0, 1]
    sagittal_affine[1, 0], sagittal_affine[2, 1], sagittal_affine[0, 2] = 1.0, 1.2, 1.0
    axial_nifti = tmp_path / "axial.nii.gz"
    nib.save(nib.Nifti1Image(labels, axial_affine), axial_nifti)
    sag = _write_formats(tmp_path / "sagittal", sagittal, sagittal_affine)
    reference = _features(axial_nifti, tmp_path / "axial.json")
    for fmt in ("dicom-series", "dicom-seg"):
        _assert_same(reference, _features(sag[fmt], tmp_path / f"s_{fmt}.json"), 1e-6, f"sagittal {fmt}")
    # a SEG without its empty frames is put on its source series' grid when the series is beside it ...
    sparse = _features(sag["dicom-seg-sparse"], tmp_path / "s_sparse.json")
    _assert_same(reference, sparse, 1e-6, "sagittal sparse dicom-seg")
    assert sparse["provenance"]["grid"] == "the source image series' grid"
    # ... and else measured on its frames, padded so that the lesion does not seem cut by the crop
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(sag["dicom-seg-sparse"], alone)
    padded = _features(alone / sag["dicom-seg-sparse"].name, tmp_path / "s_alone.json")
    _assert_same(reference, padded, 1e-6, "sagittal sparse dicom-seg without its series")
    assert [les["touches_image_border"] for les in padded["lesions"]] == [False]
    assert "touches_image_border cannot see" in padded["provenance"]["grid"]


# ---- broken inputs: each its own clear error, and no output --------------------------------------------


def _broken_cases(root):
    labels = _labels("sphere.nii.gz")
    write_series(root / "mr", labels.astype(np.int16), np.eye(4))
    cases = {}
    seg = pydicom.dcmread(write_seg(root / "seg.dcm", labels, root / "mr"))
    per_frame = len(seg.PixelData) // int(seg.NumberOfFrames)
    seg.PixelData = seg.PixelData[: per_frame * (int(seg.NumberOfFrames) - 2)]
    seg.save_as(root / "missing_frames.dcm")
    cases["missing frames"] = (root / "missing_frames.dcm", "missing frames: the pixel data holds")
    write_seg(root / "unknown.dcm", labels, root / "mr", masks={"Thing": labels > 0})
    cases["unknown segment"] = (root / "unknown.dcm", "unknown segment 1 'Thing'")
    write_series(root / "other", labels.astype(np.int16), np.eye(4))  # another series of the same patient
    shutil.copy(write_rtstruct(root / "rt.dcm", labels, root / "mr", rois={"GTV": labels > 0}), root / "other")
    rt = pydicom.dcmread(root / "rt.dcm")
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    expected = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID
    cases["wrong referenced series"] = (
        root / "other" / "rt.dcm",
        f"the referenced image series {uid_digest(expected)}",
    )
    contour = rt.ROIContourSequence[0].ContourSequence[0]
    contour.ContourData = [str(float(v) + (300 if n % 3 == 0 else 0)) for n, v in enumerate(contour.ContourData)]
    (root / "offgrid").mkdir()
    for p in (root / "mr").glob("slice*.dcm"):
        shutil.copy(p, root / "offgrid")
    rt.save_as(root / "offgrid" / "rt.dcm")
    cases["contour off the grid"] = (root / "offgrid" / "rt.dcm", "ROI 'GTV', contour 1: off the grid")
    gap = root / "gap"
    write_series(gap, labels.astype(np.uint16), np.eye(4))
    (gap / "slice0020.dcm").unlink()
    cases["missing slice"] = (gap, "slice(s) missing or irregular")
    write_series(root / "two" / "a", labels.astype(np.uint16), np.eye(4))
    write_series(root / "two" / "b", labels.astype(np.uint16), np.eye(4))
    cases["two series"] = (root / "two", "holds 2 image series and no SEG or RTSTRUCT")
    (root / "empty").mkdir()
    cases["no DICOM"] = (root / "empty", "is a folder without DICOM files")
    return cases


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return _broken_cases(tmp_path_factory.mktemp("broken"))


@pytest.mark.parametrize(
    "case",
    [
        "missing frames",
        "unknown segment",
        "wrong referenced series",
        "contour off the grid",
        "missing slice",
        "two series",
        "no DICOM",
    ],
)
def test_broken_dicom_gives_its_own_error_and_no_output(broken, case, tmp_path, capsys):
    path, message = broken[case]
    out = tmp_path / "out"
    code = main(["features", str(path), "--out-dir", str(out), "--subject", "01"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"brainmets: error: {path}: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
    for planted in planted_strings():
        assert planted not in err


# ---- no identifiers leak --------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_identifier_reaches_any_output_or_log(formats, broken, tmp_path):
    """An end-to-end run of the workflow on DICOM inputs (SEG, RTSTRUCT folder, label series, and a broken
    RTSTRUCT): every output file and log is searched for the identifiers planted in the headers."""
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    rows = [
        ("01", str(formats["dicom-seg"]), ""),
        ("02", str(formats["dicom-rtstruct"].parent), ""),
        ("03", str(formats["dicom-series"]), ""),
        ("04", str(broken["wrong referenced series"][0]), ""),
        ("05", str(formats["dicom-rtstruct"]), str(formats["dicom-rtstruct"].parent)),
    ]
    (work / "studies.tsv").write_text(
        "subject\tsession\tsegmentation\treference_series\n" + "".join(f"{s}\t\t{p}\t{r}\n" for s, p, r in rows)
    )
    (work / "config" / "config.yaml").write_text("studies: studies.tsv\nclinical: null\n")
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "2"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    status = (work / "results" / "group" / "status.tsv").read_text()
    assert status.count("\tok\t") == 4 and "the referenced image series uid#" in status
    searched = 0
    for path in sorted(work.rglob("*")):
        if not path.is_file() or path.name == "studies.tsv":
            continue
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = data.decode("latin-1")
        for planted in planted_strings():
            assert planted not in text, f"{planted!r} found in {path}"
        searched += 1
    assert searched > 30
    for planted in planted_strings():
        assert planted not in run.stdout + run.stderr


@pytest.mark.slow
def test_a_real_segmentation_as_seg_and_rtstruct(shared, tmp_path):
    """The AURORA model output (1 edema, 2 enhancing; BraTS-size) as NIfTI, DICOM SEG and
    RTSTRUCT over a DICOM series of its own T1c."""
    case = shared / "real/aurora-brats-met-00110"
    nifti = case / "aurora_t1c_segmentation_modeloutput.nii.gz"
    image = nib.load(nifti)
    labels = np.asarray(image.dataobj).astype(np.uint8)
    t1c = np.asarray(nib.load(case / "BraTS-MET-00110-000-t1c.nii.gz").dataobj).astype(np.int16)
    write_series(tmp_path / "mr", t1c, image.affine)
    roles = {"Peritumoral edema": labels == 1, "Enhancing tumor": labels == 2}
    write_seg(tmp_path / "seg.dcm", labels, tmp_path / "mr", masks=roles)
    write_rtstruct(tmp_path / "mr" / "rt.dcm", labels, tmp_path / "mr", rois=roles)
    reference = _features(nifti, tmp_path / "nifti.json", "--custom-labels", "edema=1;enhancing=2")
    assert reference["study"]["lesion_count"] >= 1
    _assert_same(reference, _features(tmp_path / "seg.dcm", tmp_path / "seg.json"), 1e-6, "real SEG")
    rt = _features(tmp_path / "mr" / "rt.dcm", tmp_path / "rt.json")
    assert rt["study"]["lesion_count"] == reference["study"]["lesion_count"]
    for key in ("cumulative_tumor_volume_ml", "total_edema_volume_ml"):
        assert rt["study"][key] == pytest.approx(reference["study"][key], rel=0.03)
    for a, b in zip(reference["lesions"], rt["lesions"]):
        assert abs(a["max_diameter_3d_mm"] - b["max_diameter_3d_mm"]) <= math.sqrt(3)


def test_a_sparse_seg_sees_the_image_border_through_its_source_series(tmp_path):
    labels = _labels("sphere.nii.gz")
    labels = labels[:, :, np.flatnonzero(labels.any(axis=(0, 1)))[0] :]  # the lesion reaches the first slice
    write_series(tmp_path / "mr", labels.astype(np.int16), np.eye(4))
    write_seg(tmp_path / "seg.dcm", labels, tmp_path / "mr", masks={"GTV": labels > 0})
    beside = _features(tmp_path / "seg.dcm", tmp_path / "beside.json")
    assert [les["touches_image_border"] for les in beside["lesions"]] == [True]
    (tmp_path / "alone").mkdir()
    shutil.copy(tmp_path / "seg.dcm", tmp_path / "alone")
    alone = _features(tmp_path / "alone" / "seg.dcm", tmp_path / "alone.json", "--reference-series", tmp_path / "mr")
    assert [les["touches_image_border"] for les in alone["lesions"]] == [True]  # found through the option
    without = _features(tmp_path / "alone" / "seg.dcm", tmp_path / "without.json")
    assert [les["touches_image_border"] for les in without["lesions"]] == [False]  # the stated limitation
    assert without["lesions"][0]["volume_ml"] == beside["lesions"][0]["volume_ml"]


def test_a_wrong_slice_spacing_tag_is_caught(tmp_path, caplog):
    """A SEG whose SpacingBetweenSlices is half the true spacing: read alone, a warning says so; with its
    source series, the frames go to their source slices and the volume is right."""
    labels = _labels("sphere.nii.gz")
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    write_series(tmp_path / "mr", labels.astype(np.int16), affine)
    seg = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", labels, tmp_path / "mr", masks={"GTV": labels > 0}))
    seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices = 1.0
    (tmp_path / "alone").mkdir()
    seg.save_as(tmp_path / "alone" / "seg.dcm")
    with caplog.at_level("WARNING"):
        load_segmentation(tmp_path / "alone" / "seg.dcm")
    assert "the tag is probably wrong" in caplog.text
    right = load_segmentation(tmp_path / "alone" / "seg.dcm", DicomOptions(reference_series=str(tmp_path / "mr")))
    assert (right.labels > 0).sum() == (labels > 0).sum()
    assert np.allclose(np.linalg.norm(right.affine[:3, :3], axis=0), [1.0, 1.0, 2.0])


def test_an_explicit_reference_series_that_does_not_match_the_seg_is_an_error(tmp_path, capsys):
    """Given another series, a folder that does not exist, or the SEG's series in another frame of reference,
    --reference-series is refused with both named; without it the SEG falls back to its own frames (issue 22:
    the explicit series was silently ignored)."""
    labels = _labels("sphere.nii.gz")
    write_series(tmp_path / "mr", labels.astype(np.int16), np.eye(4))
    write_series(tmp_path / "other", labels.astype(np.int16), np.eye(4))  # another series of the same grid
    (tmp_path / "alone").mkdir()
    seg = write_seg(tmp_path / "alone" / "seg.dcm", labels, tmp_path / "mr", masks={"GTV": labels > 0})
    source = pydicom.dcmread(seg).ReferencedSeriesSequence[0].SeriesInstanceUID
    shutil.copytree(tmp_path / "mr", tmp_path / "moved")
    for path in (tmp_path / "moved").glob("*.dcm"):  # the source series, in another frame of reference
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = generate_uid()
        ds.save_as(path)
    for folder, message in (
        ("other", "the SEG's source series uid#"),
        ("missing", "does not exist"),
        ("moved", "is in frame of reference uid#"),
    ):
        with pytest.raises(InputDataError, match=message) as error:
            load_segmentation(seg, DicomOptions(reference_series=str(tmp_path / folder)))
        assert str(tmp_path / folder) in str(error.value) and error.value.path == str(seg)
        assert str(source) not in str(error.value)  # UIDs appear as digests only
    out = tmp_path / "f.json"
    argv = ["features", str(seg), "--out-json", str(out), "--reference-series", str(tmp_path / "other")]
    assert main(argv) == 1 and "is not in the reference series" in capsys.readouterr().err and not out.exists()
    assert load_segmentation(seg).provenance["grid"].startswith("the extent of the SEG's frames")  # none given
