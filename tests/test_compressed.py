"""Corrupted compressed inputs are refused, not measured (issue 22): every compressed stream, in every format
(NIfTI .gz; NRRD gzip and bzip2, attached or detached; MetaImage zlib, attached or detached) and every input
role, is read to its end with its checksum verified. The damaged files are made here from intact ones: one
byte flipped mid-stream, the stream cut short, a wrong checksum in its trailer."""

from __future__ import annotations

import bz2
import gzip
import json
import zlib

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from brainmets.cli import main
from brainmets.errors import InputDataError
from brainmets.io import load_segmentation
from brainmets.io.compressed import check_compressed

MESSAGE = "truncated or corrupt compressed data"


def labels() -> np.ndarray:
    """Two lesions (enhancing core in edema) on a 1 mm grid, with enough texture to compress into many blocks."""
    out = np.zeros((64, 60, 48), np.uint8)
    out[8:30, 8:30, 8:24] = 2
    out[12:26, 12:26, 12:20] = 3
    out[40:56, 36:52, 26:40] = 2
    out[44:52, 40:48, 30:36] = 3
    rng = np.random.default_rng(4)
    out[rng.random(out.shape) < 0.02] = 0  # speckle: the data take several kB compressed
    return out


def write(folder, fmt: str, array: np.ndarray):
    """``array`` in one format; returns (the file to give, the file that holds the compressed stream, the
    offset where the stream starts, its kind)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "nii.gz":
        path = folder / "seg.nii.gz"
        nib.save(nib.Nifti1Image(array, np.eye(4)), path)
        return path, path, 0, "gzip"
    image = sitk.GetImageFromArray(array.transpose(2, 1, 0))
    if fmt == "nrrd-bzip2":
        plain = folder / "plain.nrrd"
        sitk.WriteImage(image, str(plain), True)
        content = plain.read_bytes()
        cut = content.index(b"\n\n") + 2
        header = content[:cut].replace(b"encoding: gzip", b"encoding: bzip2")
        path = folder / "seg.nrrd"
        path.write_bytes(header + bz2.compress(gzip.decompress(content[cut:])))
        plain.unlink()
        return path, path, len(header), "bzip2"
    path = folder / f"seg.{fmt}"
    sitk.WriteImage(image, str(path), True)
    if fmt == "nrrd":
        return path, path, path.read_bytes().index(b"\n\n") + 2, "gzip"
    if fmt == "mha":
        content = path.read_bytes()
        return path, path, content.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n"), "zlib"
    data = folder / ("seg.raw.gz" if fmt == "nhdr" else "seg.zraw")
    return path, data, 0, "gzip" if fmt == "nhdr" else "zlib"


def damage(data, offset: int, kind: str, how: str) -> None:
    """Damage the stream of ``data`` that starts at ``offset``."""
    content = bytearray(data.read_bytes())
    if how == "flip":  # one byte in the middle of the compressed stream
        content[offset + (len(content) - offset) // 2] ^= 0xFF
    elif how == "truncate":
        content = content[: offset + (len(content) - offset) * 2 // 3]
    else:  # a wrong checksum: gzip CRC-32 (8 bytes from the end), zlib Adler-32 (the last 4), bzip2's trailer
        content[{"gzip": -8, "zlib": -4, "bzip2": -3}[kind]] ^= 0x5A
    data.write_bytes(bytes(content))


FORMATS = ["nii.gz", "nrrd", "nhdr", "mha", "mhd", "nrrd-bzip2"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_intact_compressed_files_give_the_stored_labels(tmp_path, fmt):
    array = labels()
    path, *_ = write(tmp_path, fmt, array)
    check_compressed(path)
    assert np.array_equal(load_segmentation(path).labels, array)


@pytest.mark.parametrize("how", ["flip", "truncate", "checksum"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_damaged_stream_is_refused_naming_the_file(tmp_path, fmt, how):
    path, data, offset, kind = write(tmp_path, fmt, labels())
    damage(data, offset, kind, how)
    with pytest.raises(InputDataError, match=MESSAGE) as error:
        load_segmentation(path)
    assert error.value.path == str(path)
    if data != path:  # a detached data file is named too
        assert f"its data file {data}" in error.value.problem


def test_a_damaged_nifti_header_block_says_the_data_are_damaged(tmp_path):
    """A flip inside the first deflate block garbles the header: the message says the stream is damaged, not
    'no NIfTI header'."""
    path, data, offset, kind = write(tmp_path, "nii.gz", labels())
    content = bytearray(path.read_bytes())
    content[30] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(InputDataError, match=MESSAGE):
        load_segmentation(path)


def _image(folder, fmt="nii.gz"):
    """A T1-like image on the segmentation's grid, compressed."""
    array = (labels().astype(np.float32) * 40 + 100).astype(np.float32)
    if fmt == "nii.gz":
        path = folder / "t1.nii.gz"
        nib.save(nib.Nifti1Image(array, np.eye(4)), path)
        return path, path, 0, "gzip"
    path = folder / "t1.mha"
    sitk.WriteImage(sitk.GetImageFromArray(array.transpose(2, 1, 0)), str(path), True)
    return path, path, path.read_bytes().index(b"LOCAL\n") + 6, "zlib"


@pytest.mark.parametrize("role", ["segmentation", "parcellation", "posterior-fossa-mask", "image", "prediction"])
def test_every_input_role_refuses_a_damaged_stream(tmp_path, capsys, role):
    seg, *_ = write(tmp_path / "seg", "nii.gz", labels())
    damaged, data, offset, kind = write(tmp_path / "bad", "nrrd" if role == "parcellation" else "nii.gz", labels())
    if role == "image":
        damaged, data, offset, kind = _image(tmp_path / "bad")
    damage(data, offset, kind, "flip")
    out = tmp_path / "out" / "result.json"
    if role == "prediction":
        argv = ["compare", "--reference", str(seg), "--prediction", str(damaged), "--out-json", str(out)]
    elif role == "segmentation":
        argv = ["features", str(damaged), "--out-json", str(out)]
    elif role == "image":
        argv = ["features", str(seg), "--out-json", str(out), "--out-figure", str(tmp_path / "out" / "f.png"),
                "--image", str(damaged)]  # fmt: skip
    else:
        argv = ["features", str(seg), "--out-json", str(out), f"--{role}", str(damaged)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert str(damaged) in err and MESSAGE in err
    assert not out.exists() and not (tmp_path / "out" / "f.png").exists()


@pytest.mark.parametrize("fmt", ["nii.gz", "mha"])
def test_a_registration_image_refuses_a_damaged_stream(tmp_path, fmt):
    from brainmets.io.images import read_intensity

    path, data, offset, kind = _image(tmp_path, fmt)
    assert read_intensity(path, 10**9).GetSize() == labels().shape
    damage(data, offset, kind, "truncate")
    with pytest.raises(InputDataError, match=MESSAGE):
        read_intensity(path, 10**9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_intact_inputs_give_the_same_numbers_as_uncompressed_ones(tmp_path, fmt):
    """The verification changes nothing on intact files: the document of a compressed file is that of the same
    format stored uncompressed."""
    array = labels()
    path, *_ = write(tmp_path / "gz", fmt, array)
    plain = tmp_path / "plain" / ("seg.nii" if fmt == "nii.gz" else f"seg.{fmt.split('-')[0]}")
    plain.parent.mkdir()
    if fmt == "nii.gz":
        nib.save(nib.Nifti1Image(array, np.eye(4)), plain)
    else:
        sitk.WriteImage(sitk.GetImageFromArray(array.transpose(2, 1, 0)), str(plain), False)
    documents = []
    for given in (path, plain):
        out = given.parent / "f.json"
        assert main(["features", str(given), "--out-json", str(out), "--subject", "01"]) == 0
        documents.append(json.loads(out.read_text()))
    assert documents[0]["study"] == documents[1]["study"] and documents[0]["lesions"] == documents[1]["lesions"]


@pytest.mark.parametrize("fmt", ["mhd", "nii.gz", "nrrd"])
def test_bytes_after_a_stream_are_refused(tmp_path, fmt):
    path, data, offset, kind = write(tmp_path, fmt, labels())
    data.write_bytes(data.read_bytes() + b"trailing garbage")
    with pytest.raises(InputDataError, match=f"after the end of the {kind} stream"):
        load_segmentation(path)


def test_a_multi_member_gzip_is_verified_member_by_member(tmp_path):
    """gzip allows several members one after another (``cat a.gz b.gz``): all are read, each one's CRC checked."""
    array = labels()
    path, *_ = write(tmp_path, "nii.gz", array)
    plain = gzip.decompress(path.read_bytes())
    first, second = gzip.compress(plain[:5000]), bytearray(gzip.compress(plain[5000:]))
    path.write_bytes(first + bytes(second))
    assert np.array_equal(load_segmentation(path).labels, array)
    second[-8] ^= 0x5A  # the second member's CRC
    path.write_bytes(first + bytes(second))
    with pytest.raises(InputDataError, match="CRC check failed"):
        load_segmentation(path)


@pytest.mark.parametrize("name, compress", [("seg.nii", True), ("seg.nii.gz", False)])
def test_a_nifti_misnamed_as_to_compression_is_read_by_content_with_a_warning(tmp_path, name, compress):
    array = labels()
    image = nib.Nifti1Image(array, np.eye(4))
    content = image.to_bytes()
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if compress else content)
    label_map = load_segmentation(path)
    assert np.array_equal(label_map.labels, array)
    assert any("although its name" in w for w in label_map.warnings)
    if compress:  # and a compressed one so named is verified all the same
        damaged = bytearray(path.read_bytes())
        damaged[-8] ^= 0x5A
        path.write_bytes(bytes(damaged))
        with pytest.raises(InputDataError, match=MESSAGE):
            load_segmentation(path)


@pytest.mark.parametrize("fmt", ["nii.gz", "nrrd", "mha", "nrrd-bzip2"])
def test_a_stream_that_holds_more_than_its_header_claims_is_refused_without_reading_it_all(tmp_path, fmt):
    """A decompression bomb behind a small header: 200 MB of zeros after the claimed data. The check stops at
    the claimed size (plus the header's 64 kB slack) instead of inflating everything."""
    array = labels()
    path, data, offset, kind = write(tmp_path, fmt, array)
    content = data.read_bytes()
    plain = gzip.decompress(content[offset:]) if kind == "gzip" else (
        bz2.decompress(content[offset:]) if kind == "bzip2" else zlib.decompress(content[offset:])
    )  # fmt: skip
    bomb = plain + bytes(200 << 20)
    packed = {"gzip": gzip.compress, "bzip2": bz2.compress, "zlib": zlib.compress}[kind](bomb)
    data.write_bytes(content[:offset] + packed)
    with pytest.raises(InputDataError, match="more than the .* bytes its header claims"):
        load_segmentation(path)
