"""A generator of hostile and careless inputs: each writes a file (or folder) and says what brainmets must
answer (exit code, what the one-line message names); ``tests/test_hostile_inputs.py`` runs them all."""

from __future__ import annotations

import gzip
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def nifti_bytes(shape, dtype=np.int16, data: bytes = b"", **header) -> bytes:
    """A NIfTI-1 file whose header claims ``shape`` (an identity sform unless ``header`` says otherwise),
    followed by ``data`` (however short)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_sform(np.eye(4), code=1)
    hdr["vox_offset"] = 352
    for key, value in header.items():
        hdr[key] = value
    return hdr.binaryblock + b"\0" * 4 + data


def bomb(path: Path, side: int = 2048) -> Path:
    """A small gzipped NIfTI whose header claims side^3 int16 voxels (8.6 G voxels for 2048)."""
    path.write_bytes(gzip.compress(nifti_bytes((side,) * 3, data=bytes(30_000)), mtime=0))
    return path


def label_nifti(path: Path, labels: np.ndarray, **header) -> Path:
    """A gzipped NIfTI-1 of ``labels`` written byte by byte, so that header fields stay as given (nibabel's
    writer would fix them): no sform or qform unless ``sform_code`` / ``qform_code`` say so, unit pixdim."""
    labels = np.asarray(labels)
    fields = {"sform_code": 0, "qform_code": 0, "pixdim": [1.0] * 8} | header
    sform = fields.pop("sform_code")
    data = labels.tobytes(order="F")
    block = nifti_bytes(labels.shape, labels.dtype, data, **fields)
    hdr = nib.Nifti1Header(block[:348], check=False)
    hdr["sform_code"] = sform
    path.write_bytes(gzip.compress(hdr.binaryblock + block[348:], mtime=0))
    return path


def small_labels() -> np.ndarray:
    labels = np.zeros((16, 16, 16), np.uint8)
    labels[4:10, 4:10, 4:10] = 3
    return labels


def dicom_object(path: Path, sop_class: str, **elements) -> Path:
    """A DICOM Part 10 file of the given SOP class carrying a planted patient name, and no pixel data."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "Hostile^Harriet", "HH-0042"
    for key, value in elements.items():
        setattr(ds, key, value)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


@dataclass
class Case:
    """One hostile input: ``make(folder)`` writes it and returns the command line's arguments (the output
    options included); the run must exit with ``code`` and its message contain every part of ``says``."""

    name: str
    make: Callable[[Path], list[str]]
    code: int
    says: tuple[str, ...] = ()
    succeeds_with: tuple[str, ...] = field(default_factory=tuple)  # outputs that must exist when code == 0


def _features(seg: Path, folder: Path, *extra: str) -> list[str]:
    return ["features", str(seg), "--out-json", str(folder / "out" / "f.json"), *extra]


def _seg(folder: Path) -> Path:
    return label_nifti(folder / "seg.nii.gz", small_labels(), sform_code=1)


def _write(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _nrrd_bomb(folder: Path) -> Path:
    header = "NRRD0004\ntype: short\ndimension: 3\nsizes: 2048 2048 2048\nencoding: raw\nendian: little\n\n"
    return _write(folder, "bomb.nrrd", header.encode() + bytes(1000))


def _mha_bomb(folder: Path) -> Path:
    header = (
        "ObjectType = Image\nNDims = 3\nDimSize = 2048 2048 2048\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    )
    return _write(folder, "bomb.mha", header.encode() + bytes(1000))


def _mha(folder: Path, spacing: str) -> Path:
    header = (
        f"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementSpacing = {spacing}\nElementType = MET_UCHAR\n"
        "ElementDataFile = LOCAL\n"
    )
    return _write(folder, "spacing.mha", header.encode() + bytes([3] * 64))


def _seg_bomb(folder: Path) -> Path:
    return dicom_object(folder / "seg.dcm", SEG_SOP_CLASS, Rows=60000, Columns=60000, NumberOfFrames=2000)


def _series_bomb(folder: Path) -> Path:
    """A folder of two label-image slices whose headers claim 60000 x 60000 pixels each (and hold none)."""
    series = folder / "series"
    series.mkdir()
    uid = generate_uid()
    for k in range(2):
        dicom_object(
            series / f"s{k}.dcm",
            "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
            SeriesInstanceUID=uid,
            Rows=60000,
            Columns=60000,
            BitsAllocated=16,
            PixelSpacing=[1, 1],
            ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
            ImagePositionPatient=[0, 0, float(k)],
        )
    return series


def _clinical(folder: Path, text: bytes | str) -> list[str]:
    features = folder / "features.json"
    seg = _seg(folder)
    from brainmets.cli import main

    assert main(["features", str(seg), "--out-json", str(features), "--subject", "01"]) == 0
    table = _write(folder, "clinical.tsv", text)
    return [
        "indicate",
        "--features",
        str(features),
        "--clinical",
        str(table),
        "--out-json",
        str(folder / "out" / "i.json"),
    ]


def _read_document(folder: Path, document: Path) -> list[str]:
    """`indicate` reading ``document`` as its features document."""
    return ["indicate", "--features", str(document), "--out-json", str(folder / "out" / "i.json")]


def _indicate(folder: Path, *extra: str) -> list[str]:
    features = folder / "features.json"
    from brainmets.cli import main

    assert main(["features", str(_seg(folder)), "--out-json", str(features), "--subject", "01"]) == 0
    return ["indicate", "--features", str(features), "--out-json", str(folder / "out" / "i.json"), *extra]


def cases() -> list[Case]:
    """Every hostile input, each with the answer it must get."""
    traversal = ("../../../escaped", "x/../../../../escaped", "..", "a b", "sub-01", "a_b", "é", "", "a\nb")
    out = []
    for i, label in enumerate(traversal):
        out.append(
            Case(
                f"subject traversal {i}",
                lambda f, v=label: ["features", str(_seg(f)), "--out-dir", str(f / "out" / "o"), "--subject", v],
                2,
                ("--subject", "is not a BIDS label"),
            )
        )
        out.append(
            Case(
                f"session traversal {i}",
                lambda f, v=label: [
                    "features",
                    str(_seg(f)),
                    "--out-dir",
                    str(f / "out" / "o"),
                    "--subject",
                    "a",
                    "--session",
                    v,
                ],
                2,
                ("--session", "is not a BIDS label"),
            )
        )
    out.append(
        Case("indicate subject traversal", lambda f: _indicate(f, "--subject", "../x"), 2, ("is not a BIDS label",))
    )
    out += [
        # oversized headers: refused before reading, quickly and in little memory (checked by the test)
        Case("nifti bomb gz", lambda f: _features(bomb(f / "bomb.nii.gz"), f), 1, ("bomb.nii.gz", "over the limit")),
        Case(
            "nifti bomb 32767",
            lambda f: _features(bomb(f / "huge.nii.gz", 32767), f),
            1,
            ("huge.nii.gz", "over the limit"),
        ),
        Case(
            "nifti bomb raw",
            lambda f: _features(_write(f, "bomb.nii", nifti_bytes((2048,) * 3, data=bytes(1000))), f),
            1,
            ("bomb.nii", "over the limit"),
        ),
        Case("nrrd bomb", lambda f: _features(_nrrd_bomb(f), f), 1, ("bomb.nrrd", "over the limit")),
        Case("mha bomb", lambda f: _features(_mha_bomb(f), f), 1, ("bomb.mha", "over the limit")),
        Case("dicom seg bomb", lambda f: _features(_seg_bomb(f), f), 1, ("seg.dcm", "over the limit")),
        Case("dicom series bomb", lambda f: _features(_series_bomb(f), f), 1, ("series", "over the limit")),
        Case(
            "configured voxel limit",
            lambda f: _features(_seg(f), f, "--config-json", '{"features": {"max_voxels": 100}}'),
            1,
            ("seg.nii.gz", "4,096 voxels", "limit of 100 voxels"),
        ),
        Case(
            "truncated nii.gz",
            lambda f: _features(_write(f, "t.nii.gz", _seg(f).read_bytes()[:-40]), f),
            1,
            ("t.nii.gz", "truncated or corrupt"),
        ),
        Case(
            "truncated nii",
            lambda f: _features(_write(f, "t.nii", nifti_bytes((64, 64, 64), data=bytes(100))), f),
            1,
            ("t.nii", "truncated"),
        ),
        # numbers
        *[
            Case(
                f"option {value}",
                lambda f, v=value: _features(_seg(f), f, f"--min-lesion-volume-mm3={v}"),
                2,
                ("--min-lesion-volume-mm3", "is not a finite number"),
            )
            for value in ("nan", "inf", "-inf", "NaN")
        ],
        Case(
            "config-json NaN",
            lambda f: _features(_seg(f), f, "--config-json", '{"features": {"merge_distance_mm": NaN}}'),
            2,
            ("features.merge_distance_mm", "not a finite number"),
        ),
        Case(
            "config yaml .inf",
            lambda f: _features(
                _seg(f),
                f,
                "--config",
                str(_write(f, "c.yaml", "features:\n  rano_bm:\n    min_longest_diameter_mm: .inf\n")),
            ),
            2,
            ("features.rano_bm.min_longest_diameter_mm", "not a finite number"),
        ),
        Case(
            "threshold NaN",
            lambda f: _indicate(f, "--config-json", '{"indications": {"thresholds": {"marked_edema_ratio": NaN}}}'),
            2,
            ("indications.thresholds.marked_edema_ratio", "not a finite number"),
        ),
        Case(
            "clinical nan",
            lambda f: _clinical(f, "subject\tage_years\n01\tnan\n"),
            1,
            ("clinical.tsv", "line 2, column age_years", "not a finite number"),
        ),
        Case(
            "zero pixdim, no sform",
            lambda f: _features(label_nifti(f / "z.nii.gz", small_labels(), pixdim=[1, 0, 1, 1, 1, 1, 1, 1]), f),
            1,
            ("z.nii.gz", "pixdim", "must be positive"),
        ),
        Case(
            "negative pixdim, qform",
            lambda f: _features(
                label_nifti(f / "n.nii.gz", small_labels(), pixdim=[1, 1, -2, 1, 1, 1, 1, 1], qform_code=1), f
            ),
            1,
            ("n.nii.gz", "pixdim", "qform"),
        ),
        Case(
            "nan pixdim",
            lambda f: _features(label_nifti(f / "nan.nii.gz", small_labels(), pixdim=[1, np.nan, 1, 1, 1, 1, 1, 1]), f),
            1,
            ("nan.nii.gz", "pixdim"),
        ),
        Case("zero spacing mha", lambda f: _features(_mha(f, "1 0 1"), f), 1, ("spacing.mha",)),
        Case("negative spacing mha", lambda f: _features(_mha(f, "1 -1 1"), f), 1, ("spacing.mha",)),
        # files that are not what they should be: the message names the right file
        Case(
            "config not text",
            lambda f: _features(_seg(f), f, "--config", str(_write(f, "c.yaml", bytes(range(256))))),
            2,
            ("c.yaml", "not UTF-8"),
        ),
        Case(
            "config a list",
            lambda f: _features(_seg(f), f, "--config", str(_write(f, "c.yaml", "- 1\n- 2\n"))),
            2,
            ("c.yaml", "mapping"),
        ),
        Case(
            "config missing",
            lambda f: _features(_seg(f), f, "--config", str(f / "none.yaml")),
            2,
            ("none.yaml", "no such file"),
        ),
        Case(
            "clinical latin-1",
            lambda f: _clinical(f, "subject\tprimary_histology\n01\tm\xe9lanome\n".encode("latin-1")),
            1,
            ("clinical.tsv", "not UTF-8"),
        ),
        Case(
            "clinical long row",
            lambda f: _clinical(f, "subject\tkps\n01\t80\textra\n"),
            1,
            ("clinical.tsv", "line 2 has 3 cells", "header's 2"),
        ),
        Case(
            "clinical repeated column",
            lambda f: _clinical(f, "subject\tkps\tkps\n01\t80\t70\n"),
            1,
            ("clinical.tsv", "more than once"),
        ),
        Case(
            "clinical BOM header",
            lambda f: _clinical(f, "\ufeffsubject\tkps\n01\t80\n"),
            0,
            succeeds_with=("out/i.json",),
        ),
        Case(
            "rules not text",
            lambda f: _indicate(f, "--rules", str(_write(f, "r.yaml", b"\xff\xfe\x00rules"))),
            2,
            ("r.yaml", "not UTF-8"),
        ),
        Case(
            "rules not yaml",
            lambda f: _indicate(f, "--rules", str(_write(f, "r.yaml", "rules: [unclosed"))),
            2,
            ("r.yaml", "not valid YAML"),
        ),
        Case(
            "definition not text",
            lambda f: _features(
                _seg(f),
                f,
                "--parcellation",
                str(_seg(f)),
                "--parcellation-definition",
                str(_write(f, "d.yaml", b"\x80\x81")),
            ),
            2,
            ("d.yaml", "not UTF-8"),
        ),
        Case(
            "features document not json",
            lambda f: _read_document(f, _write(f, "x.json", "{nope")),
            1,
            ("x.json", "not a brainmets features document"),
        ),
        Case(
            "features status not json",
            lambda f: _indicate(f, "--features-status", str(_write(f, "s.json", b"\x00\x01"))),
            1,
            ("s.json",),
        ),
        Case(
            "reference missing",
            lambda f: _features(_seg(f), f, "--parcellation", str(f / "none.nii.gz")),
            1,
            ("none.nii.gz", "no such file"),
        ),
        # outputs
        Case(
            "long output name",
            lambda f: ["features", str(_seg(f)), "--out-json", str(f / "out" / ("a" * 245 + ".json"))],
            0,
            succeeds_with=("out/" + "a" * 245 + ".json",),
        ),
        Case(
            "output under a file",
            lambda f: ["features", str(_seg(f)), "--out-json", str(_write(f, "afile", "x") / "f.json")],
            1,
            ("afile/f.json",),
        ),
        Case(
            "output is the input",
            lambda f: ["features", str(_seg(f)), "--out-json", str(f / "seg.nii.gz")],
            2,
            ("seg.nii.gz", "refusing to overwrite"),
        ),
        Case(
            "output symlinked to the input",
            lambda f: ["features", str(_seg(f)), "--out-json", str(_symlink(f / "link.json", f / "seg.nii.gz"))],
            2,
            ("refusing to overwrite",),
        ),
        Case(
            "new output folder",
            lambda f: _features(_seg(f), f / "deep" / "er"),
            0,
            succeeds_with=("deep/er/out/f.json",),
        ),
        # outputs onto other inputs, and paths that are not files
        Case(
            "status onto the input",
            lambda f: _features(_seg(f), f, "--status-json", str(f / "seg.nii.gz")),
            2,
            ("seg.nii.gz", "refusing to overwrite"),
        ),
        Case(
            "instances onto the parcellation",
            lambda f: [
                "features",
                str(_seg(f)),
                "--parcellation",
                str(_aseg(f)),
                "--out-instances",
                str(f / "aseg.nii.gz"),
            ],
            2,
            ("aseg.nii.gz", "refusing to overwrite"),
        ),
        Case(
            "json onto the config",
            lambda f: [
                "features",
                str(_seg(f)),
                "--config",
                str(_write(f, "c.yaml", "{}\n")),
                "--out-json",
                str(f / "c.yaml"),
            ],
            2,
            ("c.yaml", "refusing to overwrite"),
        ),
        Case(
            "json onto a metaimage's data file",
            lambda f: ["features", str(_mhd(f)), "--out-json", str(f / "v.raw")],
            2,
            ("v.raw", "refusing to overwrite"),
        ),
        Case(
            "indication onto the rules",
            lambda f: _indicate(f, "--rules", str(_rules(f))) + ["--out-json", str(f / "r.yaml")],
            2,
            ("r.yaml", "refusing to overwrite"),
        ),
        Case(
            "cohort dictionary onto its input",
            lambda f: [
                "cohort",
                str(_features_json(f, "f.json")),
                "--out-lesions",
                str(f / "out" / "l.tsv"),
                "--out-studies",
                str(f / "f.tsv"),
            ],
            2,
            ("f.json", "refusing to overwrite"),
        ),
        Case(
            "cohort tables onto each other",
            lambda f: [
                "cohort",
                str(_features_json(f, "f.json")),
                "--out-lesions",
                str(f / "out" / "t.tsv"),
                "--out-studies",
                str(f / "out" / "t.tsv"),
            ],
            2,
            ("t.tsv", "two outputs"),
        ),
        Case(
            "output names a folder",
            lambda f: ["features", str(_seg(f)), "--out-json", str(f / "newdir") + "/"],
            2,
            ("newdir/", "names a folder"),
        ),
        Case(
            "status is a folder",
            lambda f: _features(_seg(f), f, "--status-json", str(_folder(f / "sdir"))),
            2,
            ("sdir", "names a folder"),
        ),
        Case(
            "instances not nifti",
            lambda f: ["features", str(_seg(f)), "--out-instances", str(f / "out" / "i.txt")],
            2,
            ("i.txt", ".nii.gz"),
        ),
        Case(
            "figure not png",
            lambda f: ["features", str(_seg(f)), "--out-figure", str(f / "out" / "p.jpg")],
            2,
            ("p.jpg", ".png"),
        ),
        Case("fifo as input", lambda f: _features(_fifo(f / "pipe.nii"), f), 1, ("pipe.nii", "not a regular file")),
        # configs and documents that are too large, deep, recursive or wrongly shaped
        Case(
            "400-digit integer",
            lambda f: _features(
                _seg(f),
                f,
                "--config",
                str(_write(f, "c.yaml", "features:\n  min_lesion_volume_mm3: " + "9" * 400 + "\n")),
            ),
            2,
            ("features.min_lesion_volume_mm3", "out of range"),
        ),
        Case(
            "5000-digit integer",
            lambda f: _features(_seg(f), f, "--config-json", '{"features": {"merge_distance_mm": ' + "9" * 5000 + "}}"),
            2,
            ("--config-json", "not valid JSON"),
        ),
        Case(
            "deep json",
            lambda f: _features(_seg(f), f, "--config-json", "[" * 30000 + "]" * 30000),
            2,
            ("--config-json",),
        ),
        Case(
            "recursive yaml alias",
            lambda f: _features(_seg(f), f, "--config", str(_write(f, "c.yaml", "features: &a {rano_bm: *a}\n"))),
            2,
            ("c.yaml",),
        ),
        Case(
            "billion laughs",
            lambda f: _features(_seg(f), f, "--config", str(_write(f, "c.yaml", _laughs()))),
            2,
            ("c.yaml", "exploding alias"),
        ),
        Case(
            "config section of the wrong kind",
            lambda f: _features(
                _seg(f),
                f,
                "--config",
                str(_write(f, "c.yaml", "features: 5\n")),
                "--config-json",
                '{"features": {"connectivity": 6}}',
            ),
            2,
            ("features",),
        ),
        Case(
            "features document of the wrong shape",
            lambda f: _read_document(f, _write(f, "x.json", '{"study": "x", "lesions": []}')),
            1,
            ("x.json", "study"),
        ),
        Case(
            "features document lesion count a text",
            lambda f: _read_document(f, _doc(f, lesion_count="three")),
            1,
            ("d.json", "lesion_count"),
        ),
        Case(
            "features document negative count",
            lambda f: _read_document(f, _doc(f, lesion_count=-1)),
            1,
            ("d.json", "lesion_count"),
        ),
        Case(
            "features document traversal subject",
            lambda f: _read_document(f, _doc(f, subject="../../evil")),
            1,
            ("d.json", "subject"),
        ),
        Case(
            "features document NaN literal",
            lambda f: _read_document(
                f,
                _write(f, "n.json", '{"study": {"lesion_count": 0, "cumulative_tumor_volume_ml": NaN}, "lesions": []}'),
            ),
            1,
            ("n.json", "NaN"),
        ),
        Case(
            "clinical huge cell",
            lambda f: _clinical(f, "subject\tmolecular_markers\n01\t" + "x" * 200_000 + "\n"),
            1,
            ("clinical.tsv", "line"),
        ),
        Case(
            "custom labels not numbers",
            lambda f: _features(_seg(f), f, "--custom-labels", "enhancing=three"),
            2,
            ("--custom-labels", "integers"),
        ),
        # batch jobs
        Case(
            "batch log onto the input",
            lambda f: _batch(
                f, {"args": [str(_seg(f)), "--out-json", str(f / "out" / "f.json")], "log": str(f / "seg.nii.gz")}
            ),
            1,
            ("seg.nii.gz", "refusing to overwrite"),
        ),
        Case(
            "batch log a number",
            lambda f: _batch(f, {"args": [str(_seg(f)), "--out-json", str(f / "out" / "f.json")], "log": 123}),
            2,
            ("--jobs-json", "'log'"),
        ),
        Case(
            "batch log a folder",
            lambda f: _batch(
                f, {"args": [str(_seg(f)), "--out-json", str(f / "out" / "f.json")], "log": str(_folder(f / "logs"))}
            ),
            1,
            ("logs", "log"),
        ),
        Case(
            "batch common a text",
            lambda f: [
                "batch",
                "--jobs-json",
                json.dumps({"command": "features", "common": "--out-json x", "studies": []}),
            ],
            2,
            ("'common'",),
        ),
        Case("batch deep json", lambda f: ["batch", "--jobs-json", "[" * 30000 + "]" * 30000], 2, ("--jobs-json",)),
        # more headers
        Case(
            "nrrd spacing nan",
            lambda f: _features(
                _write(
                    f,
                    "n.nrrd",
                    b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 4 4\nspacings: nan 1 1\nencoding: raw\n\n"
                    + bytes(64),
                ),
                f,
            ),
            1,
            ("n.nrrd", "spacings"),
        ),
        Case(
            "nrrd vector bomb",
            lambda f: _features(
                _write(
                    f,
                    "v.nrrd",
                    b"NRRD0004\ntype: uchar\ndimension: 4\nsizes: 4 1000 1000 300\nkinds: vector domain domain domain\nencoding: raw\n\n"
                    + bytes(64),
                ),
                f,
            ),
            1,
            ("v.nrrd", "over the limit"),
        ),
        Case("metaimage data file missing", lambda f: _features(_mhd(f, data=None), f), 1, ("v.mhd", "does not exist")),
        Case("metaimage data file short", lambda f: _features(_mhd(f, data=bytes(10)), f), 1, ("v.mhd", "truncated")),
        Case(
            "background image dicom bomb",
            lambda f: [
                "features",
                str(_seg(f)),
                "--out-figure",
                str(f / "out" / "p.png"),
                "--image",
                str(_series_bomb(f)),
            ],
            1,
            ("series", "over the limit"),
        ),
        Case(
            "background image nifti bomb",
            lambda f: [
                "features",
                str(_seg(f)),
                "--out-figure",
                str(f / "out" / "p.png"),
                "--image",
                str(bomb(f / "t1.nii.gz")),
            ],
            1,
            ("t1.nii.gz", "over the limit"),
        ),
        Case(
            "dicom private sop class",
            lambda f: _features(dicom_object(f / "x.dcm", "1.2.3.4.5.6.7"), f),
            1,
            ("x.dcm", "unknown or private SOP class", "uid#"),
        ),
        # DICOM objects brainmets does not read
        Case(
            "dicom sr",
            lambda f: _features(dicom_object(f / "sr.dcm", "1.2.840.10008.5.1.4.1.1.88.11"), f),
            1,
            ("sr.dcm", "Basic Text SR Storage", "brainmets reads DICOM SEG, RTSTRUCT"),
        ),
        Case(
            "dicom presentation state",
            lambda f: _features(dicom_object(f / "pr.dcm", "1.2.840.10008.5.1.4.1.1.11.1"), f),
            1,
            ("pr.dcm", "Presentation State", "brainmets reads"),
        ),
        Case(
            "dicom bare preamble",
            lambda f: _features(_write(f, "p.dcm", bytes(128) + b"DICM"), f),
            1,
            ("p.dcm", "without a SOP Class UID", "brainmets reads"),
        ),
        Case(
            "dicom folder of reports",
            lambda f: _features(_report_folder(f), f),
            1,
            ("reports", "Basic Text SR Storage"),
        ),
        # formats
        Case("empty file", lambda f: _features(_write(f, "e.nii.gz", b""), f), 1, ("e.nii.gz", "not a readable NIfTI")),
        Case(
            "wrong magic",
            lambda f: _features(_write(f, "w.nii", b"hello" * 200), f),
            1,
            ("w.nii", "not a readable NIfTI"),
        ),
        Case(
            "unknown format",
            lambda f: _features(_write(f, "w.png", b"\x89PNG\r\n"), f),
            1,
            ("w.png", "unrecognised format"),
        ),
        Case(
            "2D",
            lambda f: _features(label_nifti(f / "flat.nii.gz", np.ones((8, 8), np.uint8), sform_code=1), f),
            1,
            ("flat.nii.gz", "2D"),
        ),
        Case(
            "4D",
            lambda f: _features(label_nifti(f / "t.nii.gz", np.ones((4, 4, 4, 2), np.uint8), sform_code=1), f),
            1,
            ("t.nii.gz", "4D"),
        ),
        Case(
            "huge labels",
            lambda f: _features(
                label_nifti(f / "h.nii.gz", small_labels().astype(np.int32) * 700_000_000, sform_code=1), f
            ),
            1,
            ("h.nii.gz", "not in label scheme"),
        ),
        Case(
            "negative labels",
            lambda f: _features(label_nifti(f / "n.nii.gz", small_labels().astype(np.int16) * -1, sform_code=1), f),
            1,
            ("n.nii.gz", "not in label scheme"),
        ),
        Case(
            "fractional labels",
            lambda f: _features(label_nifti(f / "p.nii.gz", small_labels().astype(np.float32) * 0.5, sform_code=1), f),
            1,
            ("p.nii.gz", "fractional"),
        ),
        Case(
            "nan labels",
            lambda f: _features(
                label_nifti(f / "q.nii.gz", np.where(small_labels() > 0, np.nan, 0).astype(np.float32), sform_code=1), f
            ),
            1,
            ("q.nii.gz", "NaN"),
        ),
        Case(
            "negative dimension",
            lambda f: _features(_write(f, "d.nii", _dim(nifti_bytes((4, 4, 4), data=bytes(128)), 2, -5)), f),
            1,
            ("d.nii", "no voxels"),
        ),
        Case(
            "zero dimension",
            lambda f: _features(_write(f, "z.nii", _dim(nifti_bytes((4, 4, 4), data=bytes(128)), 3, 0)), f),
            1,
            ("z.nii", "no voxels"),
        ),
        Case(
            "unknown data type",
            lambda f: _features(_write(f, "t.nii", _poke(nifti_bytes((4, 4, 4), data=bytes(128)), 70, 999)), f),
            1,
            ("t.nii", "not a readable NIfTI header"),
        ),
        Case("folder without dicom", lambda f: _features(_folder(f / "empty"), f), 1, ("empty", "without DICOM")),
        Case("missing input", lambda f: _features(f / "nothing.nii.gz", f), 1, ("nothing.nii.gz", "no such file")),
    ]
    return out


def _poke(block: bytes, offset: int, value: int) -> bytes:
    """``block`` with the little-endian int16 at ``offset`` set to ``value`` (a forged header field)."""
    out = bytearray(block)
    struct.pack_into("<h", out, offset, value)
    return bytes(out)


def _dim(block: bytes, axis: int, size: int) -> bytes:
    """A NIfTI-1 header whose dim[axis] is forged."""
    return _poke(block, 40 + 2 * axis, size)


def _aseg(folder: Path) -> Path:
    labels = np.full((16, 16, 16), 3, np.int16)  # all cerebral cortex
    return label_nifti(folder / "aseg.nii.gz", labels, sform_code=1)


def _mhd(folder: Path, data: bytes | None = bytes([3] * 64)) -> Path:
    header = "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\nElementDataFile = v.raw\n"
    if data is not None:
        _write(folder, "v.raw", data)
    return _write(folder, "v.mhd", header)


def _rules(folder: Path) -> Path:
    from importlib import resources

    return _write(folder, "r.yaml", (resources.files("brainmets") / "data/indications/rules.yaml").read_bytes())


def _features_json(folder: Path, name: str) -> Path:
    from brainmets.cli import main

    assert main(["features", str(_seg(folder)), "--out-json", str(folder / name), "--subject", "01"]) == 0
    return folder / name


def _doc(folder: Path, **study) -> Path:
    return _write(
        folder,
        "d.json",
        json.dumps({"study": {"lesion_count": 0, "cumulative_tumor_volume_ml": 0, **study}, "lesions": []}),
    )


def _laughs() -> str:
    """A YAML "billion laughs": nine levels of ten aliases each."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _batch(folder: Path, study: dict) -> list[str]:
    return ["batch", "--jobs-json", json.dumps({"command": "features", "studies": [study]})]


def _symlink(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _report_folder(folder: Path) -> Path:
    reports = _folder(folder / "reports")
    for n in range(2):
        dicom_object(reports / f"r{n}.dcm", "1.2.840.10008.5.1.4.1.1.88.11")
    return reports
