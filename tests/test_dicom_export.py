"""``brainmets export``: DICOM SEG and RTSTRUCT written from phantoms with known answers (two ellipsoid lesions with
necrosis and edema on a flipped anisotropic grid, an oblique grid), read back by brainmets' own readers; segment
numbers and codes; track ids and Tracking UIDs across two sessions of a follow-up; identifiers only with
--reference-series; dciodvfy; the command's errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from brainmets.cli import main
from brainmets.io import load_segmentation
from brainmets.schemes import Role

from .dicom_fixtures import IDENTIFIERS, planted_strings, write_seg, write_series

pytest.importorskip("highdicom")

#: flipped first axis, anisotropic voxels
FLIPPED = np.array([[-0.9, 0, 0, 20.0], [0, 1.1, 0, -22.0], [0, 0, 2.0, -16.0], [0, 0, 0, 1]])
SHAPE = (44, 40, 18)
#: (centre in voxels, radii in mm of necrosis, enhancing rim, edema); their edema regions touch
LESIONS = (((14, 20, 8), (2.5, 6.0, 10.0)), ((31, 20, 9), (0.0, 4.0, 8.0)))


def _oblique(angle: float = 0.35) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, -1.0, 1.8])  # oblique, and its second axis flipped
    affine[:3, 3] = [-20, 25, 5]
    return affine


def phantom(affine: np.ndarray, shape=SHAPE, lesions=LESIONS) -> np.ndarray:
    """BraTS-METS labels: per lesion an edema ball (2), an enhancing ball (3) and a necrotic ball (1) inside."""
    index = np.indices(shape).reshape(3, -1).T
    world = index @ affine[:3, :3].T + affine[:3, 3]
    labels = np.zeros(len(index), np.uint8)
    for value, which in ((2, 2), (3, 1), (1, 0)):
        for centre, radii in lesions:
            centre_mm = affine[:3, :3] @ centre + affine[:3, 3]
            if radii[which] > 0:
                labels[np.sum((world - centre_mm) ** 2, axis=1) <= radii[which] ** 2] = value
    return labels.reshape(shape)


def _nifti(path, labels, affine):
    nib.save(nib.Nifti1Image(labels, affine), str(path))
    return path


def _world(labels: np.ndarray, affine: np.ndarray, values) -> np.ndarray:
    """Sorted world positions (mm, rounded) of the voxels holding any of ``values``."""
    index = np.argwhere(np.isin(labels, list(values)))
    world = np.round(index @ affine[:3, :3].T + affine[:3, 3], 3)
    return world[np.lexsort(world.T[::-1])]


def _export(seg, out, *extra) -> int:
    return main(["export", str(seg), "--out", str(out), "-q", *extra])


def _features(seg, out) -> dict:
    assert main(["features", str(seg), "--out-json", str(out), "-q"]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    """The flipped phantom as NIfTI, exported as SEG and RTSTRUCT (derived series), and its features."""
    root = tmp_path_factory.mktemp("flipped")
    nifti = _nifti(root / "phantom.nii.gz", phantom(FLIPPED), FLIPPED)
    assert _export(nifti, root / "seg.dcm", "--format", "dicom-seg") == 0
    assert _export(nifti, root / "rt" / "rt.dcm", "--format", "rtstruct") == 0
    return {"nifti": nifti, "seg": root / "seg.dcm", "rt": root / "rt" / "rt.dcm", "root": root,
            "features": _features(nifti, root / "nifti.json")}  # fmt: skip


def test_the_seg_numbers_segments_one_to_n_with_labels_codes_and_descriptions(flipped):
    seg = pydicom.dcmread(flipped["seg"])
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    assert numbers == list(range(1, len(numbers) + 1))
    labels = [str(s.SegmentLabel) for s in seg.SegmentSequence]
    # lesion 1 (larger) has enhancing, necrosis and edema; lesion 2 enhancing and edema
    assert labels == ["lesion 1 enhancing tumour", "lesion 1 necrosis", "lesion 1 edema",
                      "lesion 2 enhancing tumour", "lesion 2 edema"]  # fmt: skip
    types = [(s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
              s.SegmentedPropertyTypeCodeSequence[0].CodeValue) for s in seg.SegmentSequence]  # fmt: skip
    assert types == [("SCT", "14799000"), ("SCT", "6574001"), ("SCT", "79654002"), ("SCT", "14799000"),
                     ("SCT", "79654002")]  # fmt: skip
    for s in seg.SegmentSequence:
        assert s.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
        assert s.AnatomicRegionSequence[0].CodeValue == "12738006"
        assert s.SegmentAlgorithmType == "AUTOMATIC"
    row = flipped["features"]["lesions"][0]
    description = str(seg.SegmentSequence[0].SegmentDescription)
    assert f"core volume {row['volume_ml']:.3f} mL" in description
    assert f"max 3D diameter {row['max_diameter_3d_mm']:.1f} mm" in description
    assert [s.TrackingID for s in seg.SegmentSequence] == ["lesion 1"] * 3 + ["lesion 2"] * 2
    assert len({s.TrackingUID for s in seg.SegmentSequence}) == 2
    assert seg.SegmentationType == "BINARY"


def test_the_seg_reads_back_to_the_same_voxels_lesions_and_volumes(flipped, tmp_path):
    """Exactly: every role's voxels in world space, the lesion count and every volume."""
    original = nib.load(flipped["nifti"])
    labels, affine = np.asarray(original.dataobj), original.affine
    back = load_segmentation(flipped["seg"])
    assert back.provenance["grid"] == "the source image series' grid"  # the derived series beside it was found
    for ours, theirs in ((3, Role.ENHANCING), (1, Role.NECROTIC), (2, Role.EDEMA)):
        assert np.array_equal(_world(back.labels, back.affine, [int(theirs)]), _world(labels, affine, [ours]))
    again = _features(flipped["seg"], tmp_path / "seg.json")
    reference = flipped["features"]
    assert again["study"]["lesion_count"] == reference["study"]["lesion_count"] == 2
    for a, b in zip(reference["lesions"], again["lesions"]):
        for key in ("volume_ml", "enhancing_volume_ml", "necrotic_volume_ml", "edema_volume_ml"):
            assert a[key] == pytest.approx(b[key], rel=1e-9), key


def test_each_lesions_edema_segment_is_the_edema_brainmets_attributes_to_it(flipped):
    """The two edema regions touch: each edema segment holds the voxels whose nearest core is its lesion's, and
    its volume is the lesion table's edema_volume_ml."""
    seg = pydicom.dcmread(flipped["seg"])
    import highdicom as hd

    seg = hd.seg.segread(flipped["seg"])
    voxel_ml = abs(np.linalg.det(FLIPPED[:3, :3])) / 1000
    rows = flipped["features"]["lesions"]
    for number, label in enumerate(seg.SegmentSequence, start=1):
        if "edema" in str(label.SegmentLabel):
            lesion = int(str(label.SegmentLabel).split()[1])
            voxels = int(np.count_nonzero(seg.get_volume(segment_numbers=[number]).array))
            assert voxels * voxel_ml == pytest.approx(rows[lesion - 1]["edema_volume_ml"], rel=1e-9)


#: RTSTRUCT round trip tolerance: measured voxel-exact (0 voxels differ) on these phantoms and 16 random blob maps
#: (docs/dicom-export.md); the 0.5 iso-contours separate every voxel centre inside from every one outside.
RTSTRUCT_VOLUME_TOLERANCE = 1e-9


def test_the_rtstruct_reads_back_within_the_rasterisation_tolerance(flipped, tmp_path):
    rt = pydicom.dcmread(flipped["rt"])
    assert [int(r.ROINumber) for r in rt.StructureSetROISequence] == [1, 2]
    assert [str(r.ROIName) for r in rt.StructureSetROISequence] == ["lesion 1", "lesion 2"]
    assert {str(o.RTROIInterpretedType) for o in rt.RTROIObservationsSequence} == {"GTV"}
    again = _features(flipped["rt"], tmp_path / "rt.json")
    reference = flipped["features"]
    assert again["study"]["lesion_count"] == reference["study"]["lesion_count"]
    for a, b in zip(reference["lesions"], again["lesions"]):
        assert b["volume_ml"] == pytest.approx(a["volume_ml"], rel=RTSTRUCT_VOLUME_TOLERANCE)
        assert abs(a["max_diameter_3d_mm"] - b["max_diameter_3d_mm"]) <= math.sqrt(3)


@pytest.mark.parametrize("affine", [FLIPPED, _oblique()], ids=["flipped", "oblique"])
def test_rtstruct_contours_give_back_every_voxel_of_random_blobs_touching_the_border(affine, tmp_path):
    from scipy import ndimage

    noise = ndimage.gaussian_filter(np.random.default_rng(2).standard_normal((40, 36, 12)), 1.2)
    labels = (noise > np.percentile(noise, 93)).astype(np.uint8) * 3
    assert labels[0].any() or labels[-1].any() or labels[:, 0].any() or labels[:, -1].any()
    nifti = _nifti(tmp_path / "blobs.nii.gz", labels, affine)
    config = json.dumps({"features": {"min_lesion_volume_mm3": 0}})
    assert _export(nifti, tmp_path / "rt.dcm", "--format", "rtstruct", "--config-json", config) == 0
    back = load_segmentation(tmp_path / "rt.dcm")
    assert np.allclose(_world(back.labels, back.affine, [int(Role.CORE)]), _world(labels, affine, [3]), atol=1e-3)


@pytest.mark.parametrize("fmt", ["dicom-seg", "rtstruct"])
def test_an_oblique_grid_round_trips(fmt, tmp_path):
    affine = _oblique()
    labels = phantom(affine)
    nifti = _nifti(tmp_path / "oblique.nii.gz", labels, affine)
    assert _export(nifti, tmp_path / "out.dcm", "--format", fmt) == 0
    back = load_segmentation(tmp_path / "out.dcm")
    assert np.allclose(np.abs(back.affine[:3, :3]).sum(), np.abs(affine[:3, :3]).sum())
    core = [int(Role.ENHANCING), int(Role.NECROTIC), int(Role.CORE)]
    if fmt == "dicom-seg":
        for ours, theirs in ((3, Role.ENHANCING), (1, Role.NECROTIC), (2, Role.EDEMA)):
            assert np.allclose(
                _world(back.labels, back.affine, [int(theirs)]), _world(labels, affine, [ours]), atol=1e-3
            )
    else:
        expected = _world(labels, affine, [1, 3])
        assert np.allclose(_world(back.labels, back.affine, core), expected, atol=1e-3)


def _mr_series(tmp_path, affine=FLIPPED, shape=SHAPE):
    """A planted-identifier MR series (the clinic's) and the phantom on its grid as NIfTI."""
    write_series(tmp_path / "mr", (phantom(affine, shape) * 100).astype(np.int16), affine)
    return tmp_path / "mr", _nifti(tmp_path / "phantom.nii.gz", phantom(affine, shape), affine)


@pytest.mark.parametrize("fmt", ["dicom-seg", "rtstruct"])
def test_with_a_reference_series_the_export_refers_to_it_and_carries_its_identity(fmt, tmp_path, capsys):
    mr, nifti = _mr_series(tmp_path)
    out, status = tmp_path / "export.dcm", tmp_path / "status.json"
    code = main(["export", str(nifti), "--format", fmt, "--out", str(out), "--reference-series", str(mr),
                 "--status-json", str(status), "-v"])  # fmt: skip
    assert code == 0
    logs = capsys.readouterr()
    assert json.loads(status.read_text())["status"] == "ok"
    assert not (tmp_path / "export_series").exists()
    ds = pydicom.dcmread(out)
    assert ds.PatientName == IDENTIFIERS["PatientName"] and ds.PatientID == IDENTIFIERS["PatientID"]
    assert ds.StudyInstanceUID == IDENTIFIERS["StudyInstanceUID"]
    sources = {pydicom.dcmread(p).SOPInstanceUID for p in mr.glob("*.dcm")}
    if fmt == "dicom-seg":
        assert ds.FrameOfReferenceUID == IDENTIFIERS["FrameOfReferenceUID"]
        referenced = {r.ReferencedSOPInstanceUID for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    else:
        frame = ds.ReferencedFrameOfReferenceSequence[0]
        assert frame.FrameOfReferenceUID == IDENTIFIERS["FrameOfReferenceUID"]
        series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
        referenced = {r.ReferencedSOPInstanceUID for r in series.ContourImageSequence}
    assert referenced == sources
    for planted in planted_strings():  # never in the status document nor the logs
        assert planted not in status.read_text() and planted not in logs.out + logs.err
    # read back through the reference series: the same lesions
    back = load_segmentation(out) if fmt == "dicom-seg" else load_segmentation(out, None)
    assert back.shape == SHAPE or sorted(back.shape) == sorted(SHAPE)


def test_without_a_reference_series_no_identifier_reaches_the_export_its_series_status_or_logs(tmp_path, capsys):
    """The input is a DICOM SEG over a planted-identifier series: the export and its derived series carry
    empty patient attributes and fresh UIDs."""
    mr, _ = _mr_series(tmp_path)
    source_seg = write_seg(tmp_path / "mr" / "seg.dcm", phantom(FLIPPED), mr)
    out, status = tmp_path / "out" / "export.dcm", tmp_path / "status.json"
    out.parent.mkdir()
    for fmt in ("dicom-seg", "rtstruct"):
        assert main(["export", str(source_seg), "--format", fmt, "--out", str(out), "--status-json", str(status),
                     "-v"]) == 0  # fmt: skip
        logs = capsys.readouterr()
        for path in [out, status, *(out.parent / "export_series").glob("*.dcm")]:
            text = path.read_bytes().decode("latin-1")
            for planted in planted_strings():
                assert planted not in text, f"{planted!r} in {path}"
        for planted in planted_strings():
            assert planted not in logs.out + logs.err
        derived = pydicom.dcmread(next((out.parent / "export_series").glob("*.dcm")))
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
            assert keyword in derived and str(derived[keyword].value) == ""
        ds = pydicom.dcmread(out)
        assert ds.StudyInstanceUID == derived.StudyInstanceUID != IDENTIFIERS["StudyInstanceUID"]
        assert str(ds.PatientName) == "" and str(ds.PatientID) == ""


def test_a_segmentation_off_the_reference_grid_is_refused_naming_the_file(tmp_path, capsys):
    mr, _ = _mr_series(tmp_path)
    shifted = FLIPPED.copy()
    shifted[:3, 3] += [0.5, 0, 0]
    nifti = _nifti(tmp_path / "shifted.nii.gz", phantom(shifted), shifted)
    out = tmp_path / "export.dcm"
    assert _export(nifti, out, "--format", "dicom-seg", "--reference-series", str(mr)) == 1
    err = capsys.readouterr().err
    assert f"{nifti}: is not on the reference series' grid" in err and "0.5 mm" in err
    assert not out.exists()
    for planted in planted_strings():
        assert planted not in err


def test_a_segmentation_stored_in_another_axis_order_is_put_on_the_reference_grid(tmp_path):
    """The same voxels, the NIfTI's axes reoriented (to RAS, as converters do): accepted and written exactly."""
    mr, nifti = _mr_series(tmp_path)
    ras = nib.as_closest_canonical(nib.load(nifti))
    reoriented = _nifti(tmp_path / "ras.nii.gz", np.asarray(ras.dataobj), ras.affine)
    assert _export(reoriented, tmp_path / "export.dcm", "--format", "dicom-seg", "--reference-series", str(mr)) == 0
    back = load_segmentation(tmp_path / "export.dcm")
    labels = phantom(FLIPPED)
    assert np.array_equal(_world(back.labels, back.affine, [int(Role.EDEMA)]), _world(labels, FLIPPED, [2]))


def test_the_commands_usage_errors(tmp_path, capsys, caplog):
    nifti = _nifti(tmp_path / "p.nii.gz", phantom(FLIPPED), FLIPPED)
    with pytest.raises(SystemExit) as exc:
        main(["export", str(nifti), "--format", "png", "--out", str(tmp_path / "x.dcm")])
    assert exc.value.code == 2 and "--format: invalid choice: 'png'" in capsys.readouterr().err
    assert _export(nifti, tmp_path / "x.dcm", "--format", "rtstruct", "--followup", str(nifti)) == 2
    assert "--followup needs --session" in capsys.readouterr().err
    assert _export(nifti, nifti, "--format", "rtstruct") == 2  # the output is the input
    capsys.readouterr()
    empty = _nifti(tmp_path / "empty.nii.gz", np.zeros(SHAPE, np.uint8), FLIPPED)
    assert main(["export", str(empty), "--out", str(tmp_path / "e.dcm"), "--format", "dicom-seg"]) == 0  # valid
    assert "no lesion: no dicom-seg written (a DICOM SEG needs at least one segment)" in caplog.text
    assert not (tmp_path / "e.dcm").exists() and not (tmp_path / "e_series").exists()


def _followup(tmp_path):
    """Two sessions: the lesions swap sizes, so their lesion ids swap while their tracks go on."""
    first = (((14, 20, 8), (2.5, 6.0, 10.0)), ((31, 20, 9), (0.0, 4.0, 8.0)))
    second = (((14, 20, 8), (0.0, 3.5, 7.0)), ((31, 20, 9), (2.0, 6.5, 10.0)))
    rows = ["subject\tsession\tdate\tsegmentation"]
    for k, lesions in enumerate((first, second), start=1):
        _nifti(tmp_path / f"ses{k}.nii.gz", phantom(FLIPPED, lesions=lesions), FLIPPED)
        rows.append(f"01\t{k}\t2024-0{k}-01\tses{k}.nii.gz")
    (tmp_path / "timeline.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "followup.json"
    assert main(["followup", "--timeline", str(tmp_path / "timeline.tsv"), "--out-json", str(out), "-q"]) == 0
    return out


def test_tracking_ids_and_uids_follow_the_track_across_sessions(tmp_path):
    followup = _followup(tmp_path)
    document = json.loads(followup.read_text())
    tracks = {(r["session"], r["lesion_id"]): r["track_id"] for r in document["lesions"] if r["lesion_id"]}
    assert tracks[("1", 1)] == tracks[("2", 2)]  # the swap
    uids, rois = {}, {}
    for k in (1, 2):
        seg, rt = tmp_path / f"seg{k}.dcm", tmp_path / f"rt{k}" / "rt.dcm"
        for fmt, out in (("dicom-seg", seg), ("rtstruct", rt)):
            assert _export(tmp_path / f"ses{k}.nii.gz", out, "--format", fmt, "--followup", str(followup),
                           "--subject", "01", "--session", str(k)) == 0  # fmt: skip
        for s in pydicom.dcmread(seg).SegmentSequence:
            track = int(str(s.TrackingID).split()[1])
            assert str(s.SegmentLabel).startswith(f"lesion {track} ")
            uids.setdefault(track, set()).add(str(s.TrackingUID))
        rois[k] = {int(r.ROINumber): str(r.ROIName) for r in pydicom.dcmread(rt).StructureSetROISequence}
    assert set(uids) == {1, 2} and all(len(u) == 1 for u in uids.values())  # one UID per track, both sessions
    assert uids[1] != uids[2]
    assert rois[1] == rois[2] == {1: "lesion 1", 2: "lesion 2"}
    # a session the follow-up does not hold, and a segmentation it did not measure
    assert _export(tmp_path / "ses1.nii.gz", tmp_path / "x.dcm", "--format", "dicom-seg", "--followup",
                   str(followup), "--session", "9") == 1  # fmt: skip
    assert _export(tmp_path / "ses2.nii.gz", tmp_path / "x.dcm", "--format", "dicom-seg", "--followup",
                   str(followup), "--session", "1") == 1  # fmt: skip


DCIODVFY = shutil.which("dciodvfy")


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) is not installed")
def test_dciodvfy_finds_no_error_in_the_seg_the_rtstruct_and_a_derived_image(flipped, tmp_path):
    mr, nifti = _mr_series(tmp_path)
    assert _export(nifti, tmp_path / "ref_seg.dcm", "--format", "dicom-seg", "--reference-series", str(mr)) == 0
    assert _export(nifti, tmp_path / "ref_rt.dcm", "--format", "rtstruct", "--reference-series", str(mr)) == 0
    files = [flipped["seg"], flipped["rt"], next((flipped["root"] / "seg_series").glob("*.dcm")),
             tmp_path / "ref_seg.dcm", tmp_path / "ref_rt.dcm"]  # fmt: skip
    for path in files:
        run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
        errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
        assert not errors, f"{path}: {errors}"
