"""Writing an RTSTRUCT (pydicom): one ROI per mask, its closed planar contours on every slice of the source series
traced by scikit-image's ``find_contours`` (the 0.5 iso-line of the mask on the slice, outer boundaries and
holes alike: readers fill them with the even-odd rule, as brainmets' own reader does)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmets._version import __version__
from brainmets.errors import InputDataError
from brainmets.io.dicom.export import MANUFACTURER, SourceSeries, _now, _uid, copy_patient_study

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
#: The Referenced SOP Class of an RTSTRUCT's referenced study (Study Component Management, as PS3.3 C.8.8.5 uses).
STUDY_COMPONENT_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
#: ROI display colours (RGB), cycled.
COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))


@dataclass
class Roi:
    """One ROI: its number (unique in the structure set), name, description and voxels on the grid."""

    number: int
    name: str
    description: str
    mask: np.ndarray


def slice_contours(mask: np.ndarray, affine_lps: np.ndarray, k: int) -> list[np.ndarray]:
    """The closed contours of slice ``k`` of ``mask`` (columns, rows, slices) in LPS patient coordinates (mm),
    each an (n, 3) array without its repeated last point."""
    from skimage.measure import find_contours

    plane = np.pad(mask[:, :, k].astype(np.float32), 1)
    out = []
    for line in find_contours(plane, 0.5):
        if np.allclose(line[0], line[-1]):
            line = line[:-1]
        if len(line) < 3:
            continue
        # undo the padding; a contour along the grid's edge runs half a voxel out: kept a hair inside, so that
        # rounding the coordinates never puts it off the grid (voxel centres are unaffected)
        line = np.clip(line - 1, -0.499, np.asarray(mask.shape[:2]) - 0.501)
        ijk = np.column_stack([line, np.full(len(line), float(k))])
        out.append(ijk @ affine_lps[:3, :3].T + affine_lps[:3, 3])
    return out


def _ds_values(points: np.ndarray) -> list[str]:
    """Coordinates as DS strings (at most 16 characters: 1e-4 mm resolution up to +-1e10 mm)."""
    return [f"{v:.4f}" for v in points.ravel()]


def write_rtstruct(path: Path, rois: list[Roi], source: SourceSeries, series_description: str) -> None:
    """An RTSTRUCT of ``rois`` over ``source``: structure set, ROI contours (each contour referencing the image
    of its slice) and RT ROI observations (interpreted type GTV)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    if not rois:
        raise InputDataError(path, "no ROI to write: the study has no lesion")
    first = source.first
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ source.affine
    date, time = _now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = _uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = RTSTRUCT_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    copy_patient_study(ds, source)
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = _uid()
    ds.SeriesNumber, ds.InstanceNumber = 902, 1
    ds.SeriesDescription = series_description[:64]
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.OperatorsName = ""
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = MANUFACTURER, "brainmets export", __version__
    ds.StructureSetLabel = "LESIONS"
    ds.StructureSetName = "brainmets lesions"
    ds.StructureSetDescription = "brainmets lesion cores (research use only)"
    ds.StructureSetDate, ds.StructureSetTime = date, time
    frame_uid = str(first.FrameOfReferenceUID)
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")

    frame = Dataset()
    frame.FrameOfReferenceUID = frame_uid
    study = Dataset()
    study.ReferencedSOPClassUID = STUDY_COMPONENT_SOP_CLASS
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = Sequence([_image_ref(d) for d in source.datasets])
    study.RTReferencedSeriesSequence = Sequence([series])
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])

    ds.StructureSetROISequence = Sequence()
    ds.ROIContourSequence = Sequence()
    ds.RTROIObservationsSequence = Sequence()
    for index, roi in enumerate(rois):
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = frame_uid
        item.ROIName = roi.name[:64]
        item.ROIDescription = roi.description[:1024]
        item.ROIGenerationAlgorithm = "AUTOMATIC"
        ds.StructureSetROISequence.append(item)
        contours = Dataset()
        contours.ReferencedROINumber = roi.number
        contours.ROIDisplayColor = list(COLOURS[index % len(COLOURS)])
        contours.ContourSequence = Sequence()
        for k in np.flatnonzero(roi.mask.any(axis=(0, 1))).tolist():
            for points in slice_contours(roi.mask, lps, k):
                contour = Dataset()
                contour.ContourImageSequence = Sequence([_image_ref(source.datasets[k])])
                contour.ContourGeometricType = "CLOSED_PLANAR"
                contour.NumberOfContourPoints = len(points)
                contour.ContourData = _ds_values(points)
                contours.ContourSequence.append(contour)
        ds.ROIContourSequence.append(contours)
        observation = Dataset()
        observation.ObservationNumber = roi.number
        observation.ReferencedROINumber = roi.number
        observation.ROIObservationLabel = roi.name[:16]
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(observation)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def _image_ref(image) -> object:
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID = image.SOPClassUID
    ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
    return ref
