"""What every reader checks: claimed sizes, affines, label values, file hashes. Shared by :mod:`.readers` and
:mod:`.dicom` (kept apart so that neither imports the other both ways)."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np

from brainmets.errors import InputDataError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Images whose header claims more voxels than this are refused before any array is allocated.
DEFAULT_MAX_VOXELS = 1_000_000_000


def check_voxel_count(path: str | Path, shape, bytes_per_voxel: int, max_voxels: int) -> None:
    """Refuse an image whose header claims more voxels than ``max_voxels``, or a dimension below one
    (before reading its data)."""
    if any(int(s) < 1 for s in shape):
        raise InputDataError(path, f"its header claims the shape {tuple(int(s) for s in shape)}: no voxels")
    count = math.prod(int(s) for s in shape)
    if count > max_voxels:
        raise InputDataError(
            path,
            f"its header claims {count:,} voxels (shape {tuple(int(s) for s in shape)}, "
            f"{count * bytes_per_voxel / 1e9:.3g} GB), over the limit of {max_voxels:,} voxels "
            "(features.max_voxels); refused before reading",
        )


def sitk_ras_affine(img, path: str | Path) -> np.ndarray:
    """The RAS voxel-to-world affine of a 3D SimpleITK image (its LPS origin, spacing and direction)."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3) * np.asarray(img.GetSpacing(), dtype=float)
    lps[:3, 3] = img.GetOrigin()
    return checked_affine(LPS_TO_RAS @ lps, path)


def checked_affine(affine: np.ndarray, path: str | Path) -> np.ndarray:
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


def path_or_none(value: str | os.PathLike | None) -> str | None:
    """A path given as str or PathLike, as text; None (or empty) stays None."""
    return str(value) if value else None
