"""Segmentation readers: NIfTI through nibabel, NRRD/MHA/MHD through SimpleITK (LPS converted to RAS), DICOM
(SEG, label series, RTSTRUCT) through :mod:`.dicom`."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputDataError
from .labelmap import LabelMap

if TYPE_CHECKING:
    from .dicom import DicomOptions

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_segmentation(path: str | Path, dicom: DicomOptions | None = None) -> LabelMap:
    """Read a segmentation label map, whatever its format, into a :class:`LabelMap`.

    The format is told by content (NIfTI and DICOM magic numbers) and extension; a folder is read as DICOM.
    ``dicom`` says how DICOM segments and ROIs map to roles. Raises :class:`InputDataError` (naming the file)
    for a missing, unreadable or inconsistent input.
    """
    from .dicom import is_dicom_file, load_dicom

    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "no such file")
    name = path.name.lower()
    if path.is_dir() or name.endswith(DICOM_SUFFIXES) or is_dicom_file(path):
        label_map = load_dicom(path, dicom)
    elif name.endswith(NIFTI_SUFFIXES) or _looks_like_nifti(path):
        label_map = _read_nifti(path)
    elif name.endswith(ITK_SUFFIXES):
        label_map = _read_itk(path)
    else:
        raise InputDataError(
            path,
            "unrecognised format; expected NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) "
            "or DICOM (a file or a folder)",
        )
    if "input_sha256" not in label_map.provenance:  # DICOM readers hash the set of files they read
        label_map.provenance["input_sha256"] = file_sha256(path)
    for warning in label_map.warnings:
        log.warning("%s: %s", path, warning)
    return label_map


def _looks_like_nifti(path: Path) -> bool:
    """Single-file NIfTI-1/2 magic at its header offset (uncompressed files only)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(544)
    except OSError:
        return False
    return head[344:348] == b"n+1\0" or head[4:12] == b"n+2\0\r\n\x1a\n"


def _read_nifti(path: Path) -> LabelMap:
    import nibabel as nib

    try:
        if path.name.lower().endswith(NIFTI_SUFFIXES):
            img = nib.load(str(path))
        else:  # recognised by its magic only: nibabel will not guess the type from the name
            raw = path.read_bytes()
            image_class = nib.Nifti1Image if raw[344:348] == b"n+1\0" else nib.Nifti2Image
            img = image_class.from_bytes(raw)
    except Exception as exc:  # nibabel raises several types for bad headers
        raise InputDataError(path, f"not a readable NIfTI file ({exc})") from None
    warnings: list[str] = []
    shape = img.shape
    if len(shape) < 3:
        raise InputDataError(path, f"is {len(shape)}D with shape {shape}; expected a 3D label map")
    if len(shape) > 3 and any(s != 1 for s in shape[3:]):
        raise InputDataError(path, f"is a {len(shape)}D image of shape {shape}; expected a single 3D label map")
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputDataError(path, f"cannot read the image data ({type(exc).__name__}: {exc})") from None
    data = data.reshape(shape[:3])

    sform, scode = img.get_sform(coded=True)
    qform, qcode = img.get_qform(coded=True)
    if scode and qcode and not np.allclose(sform, qform, atol=1e-3):
        diff = float(np.abs(sform - qform).max())
        warnings.append(f"sform and qform disagree (largest difference {diff:.4g}); using the sform")
    if not scode and not qcode:
        warnings.append("neither sform nor qform is set; using the voxel sizes alone (orientation unknown)")
    scaled = getattr(img.dataobj, "slope", 1) != 1 or getattr(img.dataobj, "inter", 0) != 0
    return LabelMap(
        labels=as_integer_labels(data, path),
        affine=_checked_affine(np.asarray(img.affine, dtype=float), path),
        source=str(path),
        provenance={
            "input_format": "nifti",
            "shape": [int(s) for s in shape[:3]],
            "stored_dtype": str(img.get_data_dtype()),
            "sform_code": int(scode),
            "qform_code": int(qcode),
            "scaling_applied": bool(scaled),
        },
        warnings=warnings,
    )


def _read_itk(path: Path) -> LabelMap:
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise InputDataError(path, f"not a readable image ({first[-1] if first else exc})") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputDataError(path, f"has {img.GetNumberOfComponentsPerPixel()} components per voxel; expected labels")
    size = img.GetSize()
    if img.GetDimension() == 4 and size[3] == 1:
        img = img[:, :, :, 0]
    elif img.GetDimension() != 3:
        raise InputDataError(path, f"is a {img.GetDimension()}D image of size {size}; expected a 3D label map")
    data = sitk.GetArrayFromImage(img).transpose(2, 1, 0)  # ITK index (i, j, k) order
    return LabelMap(
        labels=as_integer_labels(data, path),
        affine=sitk_ras_affine(img, path),
        source=str(path),
        provenance={
            "input_format": path.name.lower().rsplit(".", 1)[-1],
            "shape": [int(s) for s in data.shape],
            "stored_dtype": img.GetPixelIDTypeAsString(),
        },
    )


def sitk_ras_affine(img, path: str | Path) -> np.ndarray:
    """The RAS voxel-to-world affine of a 3D SimpleITK image (its LPS origin, spacing and direction)."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3) * np.asarray(img.GetSpacing(), dtype=float)
    lps[:3, 3] = img.GetOrigin()
    return _checked_affine(LPS_TO_RAS @ lps, path)


def _checked_affine(affine: np.ndarray, path: str | Path) -> np.ndarray:
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputDataError(path, "voxel-to-world affine is not a finite 4x4 matrix")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputDataError(path, "voxel-to-world affine is singular (a voxel size is zero)")
    return affine


def as_integer_labels(data: np.ndarray, path: str | Path) -> np.ndarray:
    """Return ``data`` as an integer array; floats must hold whole numbers (else an error naming examples)."""
    if data.dtype == bool:
        return data.astype(np.uint8)
    if np.issubdtype(data.dtype, np.integer):
        return data
    if not np.issubdtype(data.dtype, np.floating):
        raise InputDataError(path, f"voxel type {data.dtype} cannot hold labels")
    if not np.all(np.isfinite(data)):
        raise InputDataError(path, "label map holds NaN or infinite values")
    rounded = np.rint(data)
    fractional = rounded != data
    if fractional.any():
        examples = np.unique(data[fractional])[:5]
        raise InputDataError(
            path,
            f"label map holds fractional values ({', '.join(f'{v:.6g}' for v in examples)}"
            f"{', ...' if fractional.sum() > 5 else ''}); labels must be whole numbers "
            "(is this a probability map or an interpolated label map?)",
        )
    lo, hi = (float(rounded.min()), float(rounded.max())) if rounded.size else (0.0, 0.0)
    for dtype in (np.uint8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return rounded.astype(dtype)
    raise InputDataError(path, f"label values out of integer range ({lo:g} .. {hi:g})")
