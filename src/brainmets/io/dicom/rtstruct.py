"""RTSTRUCT contours rasterised on their referenced image series."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.core import (
    LPS_TO_RAS,
    check_voxel_count,
)
from brainmets.io.dicom.headers import (
    RTSTRUCT_SOP_CLASS,
    Header,
    Redactor,
    dicom_files,
    files_sha256,
    geometry_provenance,
    read_headers,
    uid_digest,
)
from brainmets.io.dicom.options import DicomOptions, combine_roles, role_scheme, segment_roles
from brainmets.io.dicom.series import series_geometry
from brainmets.io.labelmap import LabelMap

log = logging.getLogger(__name__)


def _referenced_series(rtstruct) -> tuple[str, str]:
    """(frame of reference UID, series UID) the structure set's contours refer to."""
    try:
        frame = rtstruct.ReferencedFrameOfReferenceSequence[0]
        series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
        return str(frame.FrameOfReferenceUID), str(series.SeriesInstanceUID)
    except (AttributeError, IndexError):
        raise InputDataError("", "the RTSTRUCT names no referenced image series") from None


def read_rtstruct(header: Header, images: list[Header], options: DicomOptions, redactor: Redactor) -> LabelMap:
    import pydicom

    rtstruct = pydicom.dcmread(header.path)
    redactor.add(rtstruct)
    frame_uid, series_uid = _referenced_series(rtstruct)
    where = Path(options.reference_series) if options.reference_series else header.path.parent
    if options.reference_series or not images:  # else: the images of the folder given
        if not where.is_dir():
            raise InputDataError("", f"the reference series folder {where} does not exist")
        images = [h for h in read_headers(dicom_files(where), redactor) if h.sop_class != RTSTRUCT_SOP_CLASS]
    series = [h for h in images if h.series == series_uid]
    if not series:
        found = sorted({uid_digest(h.series) for h in images}) or ["none"]
        raise InputDataError(
            "",
            f"the referenced image series {uid_digest(series_uid)} (frame of reference {uid_digest(frame_uid)}) is "
            f"not in {where}; series found there: {', '.join(found)} (give the planning MR series with "
            "--reference-series)",
        )
    frames = {str(getattr(h.dataset, "FrameOfReferenceUID", "")) for h in series}
    if frames != {frame_uid}:
        raise InputDataError(
            "",
            f"the referenced series is in frame of reference {', '.join(uid_digest(f) for f in sorted(frames))}, "
            f"not the structure set's {uid_digest(frame_uid)}",
        )
    series, affine_lps, shape = series_geometry(series)
    check_voxel_count(header.path, shape, 1, options.max_voxels)  # each ROI is rasterised on this grid
    names = {int(r.ROINumber): str(r.ROIName) for r in getattr(rtstruct, "StructureSetROISequence", [])}
    contours = {int(c.ReferencedROINumber): c for c in getattr(rtstruct, "ROIContourSequence", [])}
    items = [(n, names[n], None) for n in sorted(names) if n in contours]
    if not items:
        raise InputDataError("", "the RTSTRUCT holds no ROI with contours")
    roles = segment_roles(items, options, "ROI")
    masks = [
        (roles[n], rasterise(contours[n], affine_lps, shape, names[n])) for n, _, _ in items if roles[n] != "ignored"
    ]
    affine = LPS_TO_RAS @ affine_lps
    return LabelMap(
        labels=combine_roles(masks, options),
        affine=affine,
        source=str(header.path),
        provenance={
            "input_format": "dicom-rtstruct",
            **geometry_provenance(affine, shape),
            "rois": [{"number": n, "name": redactor(name), "role": roles[n]} for n, name, _ in items],
            "rasterisation": "a voxel belongs to an ROI when its centre lies inside the ROI's contours on its "
            "slice (even-odd rule: a contour inside another is a hole)",
            "overlap_priority": list(options.overlap_priority),
            "input_sha256": files_sha256([header.path, *(h.path for h in series)]),
        },
        scheme=role_scheme(roles.values()),
    )


def rasterise(roi_contours, affine_lps: np.ndarray, shape: tuple[int, int, int], name: str) -> np.ndarray:
    """Voxels of the grid whose centres lie inside the ROI's closed planar contours, even-odd per slice."""
    from skimage.draw import polygon

    inverse = np.linalg.inv(affine_lps)
    mask = np.zeros(shape, bool)
    for number, contour in enumerate(getattr(roi_contours, "ContourSequence", []), start=1):
        kind = str(getattr(contour, "ContourGeometricType", "CLOSED_PLANAR"))
        points = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
        index = (inverse[:3, :3] @ points.T).T + inverse[:3, 3]
        k = float(np.round(np.median(index[:, 2])))
        off_plane = float(np.max(np.abs(index[:, 2] - k)))
        if off_plane > 0.25:
            raise InputDataError(
                "",
                f"ROI {name!r}, contour {number}: not on a slice of the referenced series "
                f"(up to {off_plane:.2f} slice spacings off the nearest slice plane)",
            )
        outside = (index[:, 0] < -0.5) | (index[:, 0] > shape[0] - 0.5)
        outside |= (index[:, 1] < -0.5) | (index[:, 1] > shape[1] - 0.5)
        if not 0 <= k < shape[2] or outside.any():
            raise InputDataError(
                "",
                f"ROI {name!r}, contour {number}: off the grid of the referenced series "
                f"(slice {k:.0f} of 0..{shape[2] - 1}, columns {index[:, 0].min():.1f}..{index[:, 0].max():.1f} of "
                f"0..{shape[0] - 1}, rows {index[:, 1].min():.1f}..{index[:, 1].max():.1f} of 0..{shape[1] - 1})",
            )
        if kind == "POINT" or len(points) < 3:
            continue
        cc, rr = polygon(index[:, 0], index[:, 1], shape=shape[:2])
        mask[cc, rr, int(k)] ^= True
    return mask
