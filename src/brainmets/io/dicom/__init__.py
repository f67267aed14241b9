"""DICOM segmentations: DICOM SEG (highdicom), a DICOM series holding a label image (SimpleITK's series
reader) and RTSTRUCT contours rasterised on their referenced image series.

Nothing identifying leaves this module: provenance holds file hashes and geometry, never DICOM identity, and
every message (errors, pydicom/highdicom warnings) is redacted of the names, IDs, dates and UIDs found in the
headers read. UIDs that an error must mention appear as ``uid#<first 12 hex digits of their SHA-256>``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from brainmets.errors import InputDataError
from brainmets.io.dicom.headers import (
    READ_OBJECTS,
    RTSTRUCT_SOP_CLASS,
    SEG_SOP_CLASS,
    Redactor,
    dicom_files,
    guarded,
    is_dicom_file,
    is_image,
    read_headers,
    sop_name,
    uid_digest,
)
from brainmets.io.dicom.options import DicomOptions
from brainmets.io.dicom.rtstruct import read_rtstruct
from brainmets.io.dicom.seg import read_seg
from brainmets.io.dicom.series import read_label_series
from brainmets.io.labelmap import LabelMap

__all__ = ["DicomOptions", "dicom_files", "is_dicom_file", "load_dicom", "uid_digest"]

log = logging.getLogger(__name__)


def load_dicom(path: Path, options: DicomOptions | None = None, max_voxels: int | None = None) -> LabelMap:
    """A DICOM segmentation given as a file or a folder: SEG, RTSTRUCT (with its referenced series) or a
    label-image series. Other DICOM objects (structured reports, presentation states, a bare preamble) are
    refused with their SOP class; in a folder they are passed over."""
    options = options or DicomOptions()
    if max_voxels is not None:
        options = dataclasses.replace(options, max_voxels=max_voxels)
    redactor = Redactor()
    with guarded(path, redactor):
        files = dicom_files(path) if path.is_dir() else [path]
        if not files:
            raise InputDataError(
                path, "is a folder without DICOM files; expected a label-map file (NIfTI, NRRD, MetaImage) or DICOM"
            )
        headers = read_headers(files, redactor)
        unread = [h for h in headers if h.sop_class not in (SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS) and not is_image(h)]
        if unread and (path.is_file() or len(unread) == len(headers)):
            kinds = sorted({sop_name(h) for h in unread})
            raise InputDataError(path, f"is a DICOM {', '.join(kinds)}: {READ_OBJECTS}")
        headers = [h for h in headers if h not in unread]
        kinds = {
            "seg": [h for h in headers if h.sop_class == SEG_SOP_CLASS],
            "rtstruct": [h for h in headers if h.sop_class == RTSTRUCT_SOP_CLASS],
        }
        images = [h for h in headers if h.sop_class not in (SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS)]
        found = [k for k, v in kinds.items() if v]
        if len(found) > 1 or any(len(v) > 1 for v in kinds.values()):
            counts = ", ".join(f"{len(v)} {k.upper()}" for k, v in kinds.items() if v)
            raise InputDataError(path, f"holds {counts}; give one segmentation object (its file, or a folder)")
        if kinds["seg"]:
            label_map = read_seg(kinds["seg"][0], images, options, redactor)
        elif kinds["rtstruct"]:
            label_map = read_rtstruct(kinds["rtstruct"][0], images, options, redactor)
        else:
            if path.is_file():  # one slice of a series: read the series it belongs to
                images = [h for h in read_headers(dicom_files(path.parent), redactor) if h.series == images[0].series]
            series = {h.series for h in images}
            if len(series) > 1:
                raise InputDataError(
                    path, f"holds {len(series)} image series and no SEG or RTSTRUCT; give the label series' folder"
                )
            label_map = read_label_series(path, images, options)
    label_map.source = str(path)
    return label_map
