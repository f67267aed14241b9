"""A DICOM image series holding a label image (SimpleITK's series reader), and the geometry of an image series."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.core import (
    as_integer_labels,
    check_voxel_count,
    sitk_ras_affine,
)
from brainmets.io.dicom.headers import READ_OBJECTS, Header, files_sha256, geometry_provenance, sop_name
from brainmets.io.dicom.options import DicomOptions
from brainmets.io.labelmap import LabelMap

log = logging.getLogger(__name__)


def series_geometry(images: list[Header]) -> tuple[list[Header], np.ndarray, tuple[int, int, int]]:
    """Slices sorted along their normal, the LPS affine of voxel (column, row, slice) and the grid shape;
    refuses mixed orientations or sizes and missing or irregular slices."""
    if not images:
        raise InputDataError("", "no image slice")
    first = images[0].dataset
    try:
        orientation = np.array([float(v) for v in first.ImageOrientationPatient])
        spacing = [float(v) for v in first.PixelSpacing]
        rows, columns = int(first.Rows), int(first.Columns)
    except AttributeError as exc:
        missing = re.findall(r"attribute '(\w+)'", str(exc))
        raise InputDataError(
            "", f"image slices lack geometry (no {', '.join(missing) or exc}): {READ_OBJECTS}, with their geometry"
        ) from None
    if not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise InputDataError("", f"PixelSpacing {spacing} is not positive and finite")
    x, y = orientation[:3], orientation[3:]
    normal = np.cross(x, y)
    for h in images:
        ds = h.dataset
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], orientation, atol=1e-4):
            raise InputDataError("", "slices of the series have different orientations")
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            raise InputDataError("", "slices of the series have different sizes")
    positions = np.array([[float(v) for v in h.dataset.ImagePositionPatient] for h in images])
    order = np.argsort(positions @ normal, kind="stable")
    images = [images[i] for i in order]
    positions = positions[order]
    distances = positions @ normal
    if len(images) > 1:
        steps = np.diff(distances)
        if np.any(steps < 1e-6):
            raise InputDataError("", "two slices of the series share a position")
        step = float(np.median(steps))
        irregular = np.flatnonzero(np.abs(steps - step) > 0.01 * step)
        if irregular.size:
            n = int(irregular[0])
            raise InputDataError(
                "",
                f"slice(s) missing or irregular: {steps[n]:.4g} mm between slices {n + 1} and {n + 2} where the "
                f"series' spacing is {step:.4g} mm ({len(irregular)} such gap(s))",
            )
        slice_vector = (positions[-1] - positions[0]) / (len(images) - 1)
    else:
        thickness = float(getattr(first, "SliceThickness", 0) or 0)
        if not (np.isfinite(thickness) and thickness > 0):
            raise InputDataError(
                "", "a single slice without a positive SliceThickness: its voxel size across the slice is unknown"
            )
        slice_vector = normal * thickness
    affine = np.eye(4)
    affine[:3, 0] = x * spacing[1]  # along a row: increasing column index
    affine[:3, 1] = y * spacing[0]  # down a column: increasing row index
    affine[:3, 2] = slice_vector
    affine[:3, 3] = positions[0]
    return images, affine, (columns, rows, len(images))


def read_label_series(path: Path, images: list[Header], options: DicomOptions) -> LabelMap:
    import SimpleITK as sitk

    images, _, shape = series_geometry(images)  # refuses missing slices, which ITK would only warn about
    bits = int(getattr(images[0].dataset, "BitsAllocated", 16) or 16)
    check_voxel_count(path, shape, max(1, bits // 8), options.max_voxels)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(h.path) for h in images])
    warn = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        img = reader.Execute()
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warn)
    data = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    affine = sitk_ras_affine(img, path)
    return LabelMap(
        labels=as_integer_labels(data, path),
        affine=affine,
        source=str(path),
        provenance={
            "input_format": "dicom-series",
            "dicom_object": sop_name(images[0]),
            **geometry_provenance(affine, data.shape),
            "stored_dtype": img.GetPixelIDTypeAsString(),
            "input_sha256": files_sha256(h.path for h in images),
        },
    )
