import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from brainmets.errors import InputDataError
from brainmets.io import load_segmentation
from brainmets.io.writers import atomic_outputs, atomic_path, tsv_cell, write_json

AFFINE = np.array([[-0.8, 0, 0, 10.0], [0, 0.9, 0, -20.0], [0, 0, 2.5, 5.0], [0, 0, 0, 1]])


def _labels(shape=(12, 10, 6)) -> np.ndarray:
    data = np.zeros(shape, np.uint8)
    data[3:7, 2:6, 1:4] = 3
    data[2, 2, 2] = 2
    return data


def _save_nifti(path, data, affine=AFFINE, sform=True, qform=True):
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine if sform else None, code=1 if sform else 0)
    img.set_qform(affine if qform else None, code=1 if qform else 0)
    nib.save(img, str(path))
    return path


def test_nifti_roundtrip_keeps_labels_affine_and_hash(tmp_path):
    path = _save_nifti(tmp_path / "seg.nii.gz", _labels())
    lm = load_segmentation(path)
    assert np.array_equal(lm.labels, _labels())
    assert np.allclose(lm.affine, AFFINE)
    assert len(lm.provenance["input_sha256"]) == 64
    assert lm.provenance["input_format"] == "nifti"
    assert lm.warnings == []


def test_uncompressed_nifti_without_extension_is_recognised(tmp_path):
    path = _save_nifti(tmp_path / "seg.nii", _labels())
    renamed = path.rename(tmp_path / "seg.img_noext")
    assert np.array_equal(load_segmentation(renamed).labels, _labels())


def test_singleton_fourth_dimension_is_accepted(tmp_path):
    path = _save_nifti(tmp_path / "seg.nii.gz", _labels()[..., None])
    assert load_segmentation(path).labels.shape == (12, 10, 6)


def test_true_4d_is_refused(tmp_path):
    path = _save_nifti(tmp_path / "seg.nii.gz", np.stack([_labels(), _labels()], axis=-1))
    with pytest.raises(InputDataError, match=r"seg\.nii\.gz: is a 4D image"):
        load_segmentation(path)


def test_2d_is_refused(tmp_path):
    path = _save_nifti(tmp_path / "seg.nii.gz", _labels()[:, :, 0])
    with pytest.raises(InputDataError, match="expected a 3D label map"):
        load_segmentation(path)


def test_sform_qform_disagreement_warns_and_uses_sform(tmp_path):
    img = nib.Nifti1Image(_labels(), AFFINE)
    img.set_sform(AFFINE, code=1)
    shifted = AFFINE.copy()
    shifted[0, 3] += 7.0
    img.set_qform(shifted, code=1)
    nib.save(img, str(tmp_path / "seg.nii.gz"))
    lm = load_segmentation(tmp_path / "seg.nii.gz")
    assert np.allclose(lm.affine, AFFINE)
    assert any("sform and qform disagree" in w for w in lm.warnings)


def test_missing_orientation_warns(tmp_path):
    path = _save_nifti(tmp_path / "seg.nii.gz", _labels(), sform=False, qform=False)
    assert any("neither sform nor qform" in w for w in load_segmentation(path).warnings)


def test_scaled_label_map_is_read_through_its_scaling(tmp_path):
    img = nib.Nifti1Image(_labels().astype(np.int16), AFFINE)
    img.header.set_slope_inter(2.0, 0.0)
    nib.save(img, str(tmp_path / "seg.nii.gz"))
    lm = load_segmentation(tmp_path / "seg.nii.gz")
    assert set(np.unique(lm.labels)) == {0, 4, 6}
    assert lm.provenance["scaling_applied"] is True


def test_scaling_that_makes_fractions_is_refused(tmp_path):
    img = nib.Nifti1Image(_labels().astype(np.int16), AFFINE)
    img.header.set_slope_inter(0.5, 0.0)
    nib.save(img, str(tmp_path / "seg.nii.gz"))
    with pytest.raises(InputDataError, match="fractional values"):
        load_segmentation(tmp_path / "seg.nii.gz")


@pytest.mark.parametrize(
    "content, message",
    [(b"not an image", "not a readable NIfTI"), (None, "cannot read the image data")],
)
def test_corrupt_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken.nii.gz"
    if content is None:  # a valid header with truncated data
        _save_nifti(path, _labels((40, 40, 40)))
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    else:
        path.write_bytes(content)
    with pytest.raises(InputDataError, match=f"broken.nii.gz: {message}"):
        load_segmentation(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(InputDataError, match="nope.nii.gz: no such file"):
        load_segmentation(tmp_path / "nope.nii.gz")
    (tmp_path / "seg.txt").write_text("0 1 2")
    with pytest.raises(InputDataError, match="seg.txt: unrecognised format"):
        load_segmentation(tmp_path / "seg.txt")
    with pytest.raises(InputDataError, match="is a folder without DICOM files"):
        load_segmentation(tmp_path)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_itk_formats_give_the_same_label_map_as_nifti(tmp_path, suffix):
    """The same segmentation written by SimpleITK (LPS) reads back with the same RAS affine and voxels."""
    nifti = load_segmentation(_save_nifti(tmp_path / "seg.nii.gz", _labels()))
    img = sitk.ReadImage(str(tmp_path / "seg.nii.gz"))
    sitk.WriteImage(img, str(tmp_path / f"seg{suffix}"))
    other = load_segmentation(tmp_path / f"seg{suffix}")
    assert np.array_equal(other.labels, nifti.labels)
    assert np.allclose(other.affine, nifti.affine, atol=1e-5)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_outputs_all_or_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_outputs(tmp_path / "a.json", tmp_path / "b.tsv") as (a, b):
            write_json(a, {"x": 1})
            raise RuntimeError("second output failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_outputs(tmp_path / "a.json", tmp_path / "b.tsv") as (a, b):
        write_json(a, {"x": float("nan"), "y": np.float32(1.5)})
        b.write_text("t\n")
    assert (tmp_path / "a.json").read_text() == '{\n  "x": null,\n  "y": 1.5\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.tsv"]


def test_tsv_cells():
    values = (None, True, False, 1.5, np.int64(3), [], ["a", "b"], float("inf"), float("-inf"), float("nan"))
    assert [tsv_cell(v) for v in values] == ["n/a", "true", "false", "1.5", "3", "none", "a,b", "inf", "-inf", "n/a"]


@pytest.mark.parametrize("step", ["mkdir", "mkstemp", "replace"])
def test_a_write_error_names_the_target_not_the_temporary_file(tmp_path, monkeypatch, capsys, step):
    """Whatever step of the atomic write fails (a read-only or immutable folder: EPERM on the temporary file),
    the message names the output the user asked for (issue 22: it named .brainmets-XXXX.tmp.json)."""
    import os
    import tempfile
    from pathlib import Path

    from brainmets.cli import main

    target = tmp_path / "out" / "ro" / "f.json"
    if step == "mkdir":
        real = Path.mkdir

        def failing(self, *args, **kwargs):
            if self == target.parent:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", failing)
    elif step == "mkstemp":

        def failing(*args, dir=None, **kwargs):  # noqa: A002
            raise PermissionError(1, "Operation not permitted", os.path.join(dir, ".brainmets-abcd1234.tmp.json"))

        monkeypatch.setattr(tempfile, "mkstemp", failing)
    else:

        def failing(src, dst):
            raise PermissionError(1, "Operation not permitted", str(src), str(dst))

        monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError) as error, atomic_path(target) as tmp:
        tmp.write_text("{}")
    assert error.value.filename == str(target) and error.value.strerror
    seg = tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4)), seg)
    assert main(["features", str(seg), "--out-json", str(target)]) != 0
    err = capsys.readouterr().err
    assert f"{target}:" in err and ".brainmets-" not in err
    assert not list(tmp_path.rglob(".brainmets-*"))
