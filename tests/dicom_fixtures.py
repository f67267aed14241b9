"""Write label maps as DICOM with real writers: the MR series and label series with SimpleITK, DICOM SEG with
highdicom, RTSTRUCT with pydicom. Every object carries the planted identifiers below, so tests can search
outputs and logs for them."""

from __future__ import annotations

import locale
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from brainmets.io import LabelMap
from brainmets.io.images import to_sitk

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
#: Planted in every header: none of these may reach an output or a log.
IDENTIFIERS = {
    "PatientName": "Leakcheck^Wilhelmina",
    "PatientID": "PID-5550123",
    "PatientBirthDate": "19390517",
    "AccessionNumber": "ACC99887766",
    "InstitutionName": "Saint Leakage Hospital",
    "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.11223344556677",
    "FrameOfReferenceUID": "1.2.826.0.1.3680043.8.498.99887766554433",
}
ROLE_LABELS = {1: "Necrotic tumor core", 2: "Peritumoral edema", 3: "Enhancing tumor", 4: "Resection cavity"}


def planted_strings() -> list[str]:
    """Every identifier as it could appear in text (names also by their parts)."""
    values = list(IDENTIFIERS.values())
    return values + IDENTIFIERS["PatientName"].split("^")


def write_series(folder: Path, array: np.ndarray, affine_ras: np.ndarray, series_uid: str | None = None) -> list[Path]:
    """One DICOM file per slice (SimpleITK's writer, tags set as its DICOM series example does)."""
    folder.mkdir(parents=True, exist_ok=True)
    img = to_sitk(LabelMap(array, affine_ras, "<fixture>"))
    direction = img.GetDirection()
    series_uid = series_uid or generate_uid()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    saved_locale = locale.setlocale(locale.LC_ALL)  # GDCM's writer switches the process to the C locale
    for k in range(img.GetDepth()):
        plane = img[:, :, k : k + 1]  # a one-slice volume: SimpleITK then writes the true slice spacing
        tags = {
            "0010|0010": IDENTIFIERS["PatientName"],
            "0010|0020": IDENTIFIERS["PatientID"],
            "0010|0030": IDENTIFIERS["PatientBirthDate"],
            "0008|0050": IDENTIFIERS["AccessionNumber"],
            "0008|0080": IDENTIFIERS["InstitutionName"],
            "0020|000d": IDENTIFIERS["StudyInstanceUID"],
            "0020|0052": IDENTIFIERS["FrameOfReferenceUID"],
            "0020|000e": series_uid,
            "0008|0016": MR_IMAGE_STORAGE,
            "0008|0018": generate_uid(),
            "0008|0060": "MR",
            "0008|0020": "20240229",
            "0020|0011": "7",
            "0020|0013": str(k + 1),
            "0018|0050": f"{img.GetSpacing()[2]:.6f}",
            "0018|0088": f"{img.GetSpacing()[2]:.6f}",  # SimpleITK writes 1 for a 2D slice otherwise
            "0020|0037": "\\".join(f"{v:.10f}" for v in (*direction[0::3], *direction[1::3])),
            "0020|0032": "\\".join(f"{v:.6f}" for v in img.TransformIndexToPhysicalPoint((0, 0, k))),
        }
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        path = folder / f"slice{k:04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(plane)
        paths.append(path)
    locale.setlocale(locale.LC_ALL, saved_locale)
    return paths


def write_seg(
    path: Path,
    labels: np.ndarray,
    mr_folder: Path,
    *,
    fractional: bool = False,
    masks: dict[str, np.ndarray] | None = None,
    omit_empty_frames: bool = True,
) -> Path:
    """A DICOM SEG over the MR series (highdicom): one segment per BraTS-METS role (empty ones included, as
    a model's output describes every class it predicts), or one per entry of ``masks`` (label -> boolean
    or fractional array, possibly overlapping)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(p) for p in sorted(mr_folder.glob("*.dcm"))]
    sources.sort(key=lambda ds: int(ds.InstanceNumber))
    if masks is None:
        masks = {ROLE_LABELS[v]: labels == v for v in sorted(ROLE_LABELS)}
    stack = np.stack([m.transpose(2, 1, 0) for m in masks.values()], axis=-1)  # frames, rows, columns, segments
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for n, label in enumerate(masks, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stack.astype(np.float32) if fractional else stack.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL
        if fractional
        else hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="brainmets tests",
        manufacturer_model_name="fixtures",
        software_versions="1",
        device_serial_number="SN-LEAK-4242",
        omit_empty_frames=omit_empty_frames,
    )
    seg.save_as(path)
    return path


def write_rtstruct(path: Path, labels: np.ndarray, mr_folder: Path, rois: dict[str, np.ndarray] | None = None) -> Path:
    """An RTSTRUCT over the MR series (pydicom): per ROI, the 0.5 iso-contours of its mask on every slice
    (outer boundaries and holes), in patient coordinates."""
    from skimage.measure import find_contours

    sources = sorted(
        (pydicom.dcmread(p, stop_before_pixels=True) for p in mr_folder.glob("*.dcm")),
        key=lambda d: int(d.InstanceNumber),
    )
    first = sources[0]
    x, y = np.array(first.ImageOrientationPatient[:3], float), np.array(first.ImageOrientationPatient[3:], float)
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    if rois is None:
        rois = {ROLE_LABELS[v]: labels == v for v in sorted(ROLE_LABELS) if (labels == v).any()}

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = RTSTRUCT_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName"):
        setattr(ds, keyword, IDENTIFIERS[keyword])
    ds.StudyInstanceUID = IDENTIFIERS["StudyInstanceUID"]
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "Leakcheck plan"
    ds.StructureSetDate = "20240301"
    frame = Dataset()
    frame.FrameOfReferenceUID = IDENTIFIERS["FrameOfReferenceUID"]
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = Sequence([_image_ref(s) for s in sources])
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = IDENTIFIERS["StudyInstanceUID"]
    study.RTReferencedSeriesSequence = Sequence([series])
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    ds.StructureSetROISequence = Sequence()
    ds.ROIContourSequence = Sequence()
    ds.RTROIObservationsSequence = Sequence()
    for number, (name, mask) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        roi.ReferencedFrameOfReferenceUID = IDENTIFIERS["FrameOfReferenceUID"]
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        contours = Dataset()
        contours.ReferencedROINumber = number
        contours.ROIDisplayColor = [255, 0, 0]
        contours.ContourSequence = Sequence()
        for k, source in enumerate(sources):
            plane = np.pad(mask[:, :, k].astype(float), 1)
            for line in find_contours(plane, 0.5):
                columns_rows = line - 1  # undo the padding: (column, row) indices
                origin = np.array(source.ImagePositionPatient, float)
                points = (
                    origin
                    + np.outer(columns_rows[:, 0] * column_spacing, x)
                    + np.outer(columns_rows[:, 1] * row_spacing, y)
                )
                item = Dataset()
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(points)
                item.ContourData = [f"{v:.4f}" for v in points.ravel()]
                item.ContourImageSequence = Sequence([_image_ref(source)])
                contours.ContourSequence.append(item)
        ds.ROIContourSequence.append(contours)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = IDENTIFIERS["PatientName"]
        ds.RTROIObservationsSequence.append(observation)
    ds.save_as(path, enforce_file_format=True)
    return path


def _image_ref(source) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return ref
