"""Writing DICOM for the clinic's viewers: the image series a SEG or RTSTRUCT refers to (a reference series read,
or a derived MR series written beside them) and its grid, a binary DICOM SEG (highdicom) and an RTSTRUCT
(:mod:`.export_rtstruct`). Arrays, an affine and segment descriptions go in; files come out.

Geometry: the label map's affine is RAS (NIfTI); DICOM is LPS. Every slice written is one voxel slice along the
grid's third axis, ImageOrientationPatient from its first two axes (columns, rows) and ImagePositionPatient per
slice from the full affine, so oblique, flipped and anisotropic grids are written as they are.

Identity: only a reference series given by the user brings patient and study attributes (its modules copied
verbatim); a derived series has them present and empty (Type 2) and fresh UIDs. Messages stay redacted
(:class:`~brainmets.io.dicom.headers.Redactor`)."""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmets._version import __version__
from brainmets.errors import InputDataError
from brainmets.io.core import LPS_TO_RAS
from brainmets.io.dicom.headers import Redactor, dicom_files, is_image, read_headers, uid_digest
from brainmets.io.dicom.series import series_geometry

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MANUFACTURER = "brainmets"

#: The Patient and General Study modules' attributes a reference series passes on, copied verbatim.
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDsSequence",
    "PatientBirthDate",
    "PatientSex",
    "PatientComments",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyDescription",
)

#: Type 2 attributes of the Patient and General Study modules: present and empty in a derived series.
EMPTY_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


@dataclass
class SourceSeries:
    """The image series an export refers to: its slices' data sets in the grid's slice order (pixel data not
    needed), the grid's RAS affine of voxel (column, row, slice) and its shape; ``reference`` when the user gave
    it (then its patient and study modules are the export's)."""

    datasets: list
    affine: np.ndarray
    shape: tuple[int, int, int]
    reference: bool

    @property
    def first(self):
        return self.datasets[0]


def read_reference_series(folder: Path, redactor: Redactor) -> SourceSeries:
    """The one image series in ``folder`` (its headers; SEG and RTSTRUCT objects there are passed over)."""
    if not folder.is_dir():
        raise InputDataError(folder, "the reference series folder does not exist")
    headers = [h for h in read_headers(dicom_files(folder), redactor) if is_image(h) and "PixelSpacing" in h.dataset]
    series = {h.series for h in headers}
    if len(series) != 1:
        found = ", ".join(sorted(uid_digest(s) for s in series)) or "none"
        raise InputDataError(folder, f"holds {len(series)} image series ({found}); give the folder of one series")
    try:
        ordered, affine_lps, shape = series_geometry(headers)
    except InputDataError as exc:
        raise InputDataError(folder, exc.problem) from None
    return SourceSeries([h.dataset for h in ordered], LPS_TO_RAS @ affine_lps, shape, reference=True)


def reference_grid(affine: np.ndarray, shape: tuple[int, ...], source: SourceSeries, name: str):
    """A function putting arrays of the label map's grid on the reference series' grid (the same voxels, their
    axes possibly permuted or flipped); refuses another grid with a message naming ``name``."""
    import nibabel as nib

    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(affine), nib.orientations.io_orientation(source.affine)
    )
    moved_shape = tuple(int(shape[int(a)]) for a in np.argsort(ornt[:, 0]))
    moved = affine @ nib.orientations.inv_ornt_aff(ornt, shape)
    spacing = float(np.min(np.linalg.norm(source.affine[:3, :3], axis=0)))
    off = float(np.max(np.abs(moved - source.affine)[:3]))
    if moved_shape != tuple(source.shape) or off > 1e-3 * max(spacing, 1.0):
        raise InputDataError(
            name,
            f"is not on the reference series' grid (segmentation {'x'.join(map(str, shape))} voxels, reference "
            f"series {'x'.join(map(str, source.shape))}; voxel positions differ by up to {off:.3g} mm): export it on "
            "the series it was drawn on, or give no --reference-series",
        )
    return lambda array: nib.orientations.apply_orientation(array, ornt)


def _uid(uid: str | None = None):
    from pydicom.uid import generate_uid

    return uid or generate_uid()


def _now() -> tuple[str, str]:
    now = datetime.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def derived_series(
    folder: Path, pixels: np.ndarray, affine: np.ndarray, description: str, series_number: int = 900
) -> SourceSeries:
    """Write a derived MR series into ``folder`` (an empty or new folder): one MR Image Storage file per voxel
    slice along the third axis, 16-bit unsigned ``pixels`` (columns, rows, slices); patient attributes present
    and empty, study, series and frame of reference UIDs fresh."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    x, y = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    normal = np.cross(x, y)
    thickness = abs(float(lps[:3, 2] @ normal))
    study, series, frame = _uid(), _uid(), _uid()
    date, time = _now()
    data = np.clip(np.rint(pixels), 0, 65535).astype(np.uint16)
    datasets = []
    for k in range(data.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPInstanceUID = _uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        ds.SOPClassUID = MR_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        for keyword in EMPTY_TYPE2:
            setattr(ds, keyword, "")
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesDate, ds.SeriesTime, ds.ContentDate, ds.ContentTime = date, time, date, time
        ds.Modality = "MR"
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.SeriesDescription = description[:64]
        ds.Manufacturer = MANUFACTURER
        ds.SoftwareVersions = __version__
        ds.PositionReferenceIndicator = ""
        ds.PatientOrientation = ""
        ds.PatientPosition, ds.Laterality = "", ""
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
        ds.MRAcquisitionType = ""
        ds.EchoTime, ds.RepetitionTime, ds.EchoTrainLength = "", "", ""
        ds.SliceThickness = f"{thickness:.6g}"
        ds.PixelSpacing = [f"{spacing[1]:.10g}", f"{spacing[0]:.10g}"]  # between rows, between columns
        ds.ImageOrientationPatient = [f"{v:.10f}" for v in (*x, *y)]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in lps[:3, :3] @ [0.0, 0.0, k] + lps[:3, 3]]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T).tobytes()
        pydicom.dcmwrite(folder / f"MR{k + 1:04d}.dcm", ds, enforce_file_format=True)
        datasets.append(ds)
    return SourceSeries(datasets, affine, tuple(int(s) for s in data.shape), reference=False)


def display_pixels(image: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
    """The derived series' pixels: the image given scaled to 0..4095 (robust range: 0.5th-99.5th percentile),
    else the label map scaled (each label value times 4095 over the largest)."""
    if image is None:
        top = max(int(labels.max()), 1)
        return labels.astype(np.float64) * (4095 // top)
    finite = np.nan_to_num(image.astype(np.float64))
    low, high = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    return np.clip((finite - low) / max(high - low, 1e-12), 0, 1) * 4095


@dataclass
class Segment:
    """One segment of a SEG: its label and description, what it is (``enhancing``, ``necrotic``, ``core``,
    ``edema`` or ``cavity``), its voxels on the grid, and the tracking identity of the lesion it belongs to."""

    label: str
    description: str
    kind: str
    mask: np.ndarray
    tracking_id: str | None = None
    tracking_uid: str | None = None


def segment_codes(kind: str) -> tuple:
    """(property category, property type) codes of a segment kind (SNOMED CT, as in pydicom's code dictionary:
    CID 7150 and CID 7159 of DICOM PS3.16)."""
    from pydicom.sr.codedict import codes

    category = codes.SCT.MorphologicallyAbnormalStructure  # SCT 49755003
    types = {
        "enhancing": codes.SCT.NeoplasmMetastatic,  # SCT 14799000
        "core": codes.SCT.NeoplasmMetastatic,
        "necrotic": codes.SCT.Necrosis,  # SCT 6574001
        "edema": codes.SCT.Edema,  # SCT 79654002
        "cavity": codes.SCT.Lesion,  # SCT 52988006: no resection-cavity concept in CID 7159; the label says it
    }
    return category, types[kind]


def write_seg(path: Path, segments: list[Segment], source: SourceSeries, series_description: str) -> None:
    """A binary DICOM SEG of ``segments`` (numbered 1..N in order) over ``source``'s slices: empty frames
    omitted; anatomic region SCT 12738006 Brain on every segment."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if not segments:
        raise InputDataError(path, "no segment to write: the study has no lesion")
    descriptions = []
    for number, segment in enumerate(segments, start=1):
        category, kind = segment_codes(segment.kind)
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=segment.label[:64],
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="brainmets", family=codes.DCM.MorphologicalOperations, version=__version__
            ),
            tracking_uid=segment.tracking_uid if segment.tracking_id else None,
            tracking_id=segment.tracking_id,
            anatomic_regions=[codes.SCT.Brain],
        )
        desc.SegmentDescription = segment.description[:1024]
        descriptions.append(desc)
    stack = np.zeros((source.shape[2], source.shape[1], source.shape[0], len(segments)), dtype=np.uint8)
    for channel, segment in enumerate(segments):
        stack[..., channel] = segment.mask.transpose(2, 1, 0)
    seg = hd.seg.Segmentation(
        source_images=source.datasets,
        pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=_uid(),
        series_number=901,
        sop_instance_uid=_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="brainmets export",
        software_versions=__version__,
        device_serial_number="none",
        content_label="LESIONS",
        content_description="brainmets lesions (research use only)",
        content_creator_name="",
    )
    seg.SeriesDescription = series_description[:64]
    seg.save_as(path)


def copy_patient_study(target, source: SourceSeries) -> None:
    """The export's patient and study attributes: the reference series' verbatim, else present and empty, with
    the derived series' study UID."""
    first = source.first
    if source.reference:
        for keyword in PATIENT_STUDY_KEYWORDS:
            if keyword in first:
                target[keyword] = copy.deepcopy(first[keyword])
    else:
        for keyword in EMPTY_TYPE2:
            setattr(target, keyword, "")
        target.StudyInstanceUID = first.StudyInstanceUID
    for keyword in EMPTY_TYPE2:  # Type 2: present even when the reference series lacks them
        if keyword not in target:
            setattr(target, keyword, "")
