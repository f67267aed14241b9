"""DICOM segmentations: DICOM SEG (highdicom), a DICOM series holding a label image (SimpleITK's series
reader) and RTSTRUCT contours rasterised on their referenced image series.

Nothing identifying leaves this module: provenance holds file hashes and geometry, never DICOM identity, and
every message (errors, pydicom/highdicom warnings) is redacted of the names, IDs, dates and UIDs found in the
headers read. UIDs that an error must mention appear as ``uid#<first 12 hex digits of their SHA-256>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..labels import ROLE_NAMES, LabelScheme
from .core import (
    DEFAULT_MAX_VOXELS,
    LPS_TO_RAS,
    as_integer_labels,
    check_voxel_count,
    file_sha256,
    sitk_ras_affine,
)
from .labelmap import LabelMap

log = logging.getLogger(__name__)

#: Roles in the order a voxel covered by several segments takes them (first wins), unless configured.
DEFAULT_OVERLAP_PRIORITY = ("enhancing", "necrotic", "core", "cavity", "edema")
#: Segment label / ROI name patterns (case-insensitive regular expressions, first match wins) -> role.
DEFAULT_ROLE_PATTERNS = (
    (r"whole", "ignored"),
    (r"non[-_ ]?enhanc|necro|\bNETC\b|\bNCR\b", "necrotic"),
    (r"enhanc|\bET\b", "enhancing"),
    (r"o?edema|\bSNFH\b|\bED\b", "edema"),
    (r"cavity|resect|\bRC\b", "cavity"),
    (r"^GTV|tumou?r|metast|\bmets?\b|lesion|core", "core"),
    (r"brain|body|external|skull|eye|lens|optic|chiasm|cochlea|hippocamp|^PTV|^CTV|ring|couch", "ignored"),
)
#: Segmented property type codes (scheme:value) -> role; checked before the label patterns.
DEFAULT_ROLE_CODES = {"SCT:79654002": "edema", "SCT:6574001": "necrotic"}

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Header values that identify a patient, study or series (besides every PN, UI, DA, DT and TM value).
IDENTIFYING_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "DeviceSerialNumber",
    "PatientAddress",
    "StructureSetLabel",
    "StructureSetName",
)
IDENTIFYING_VRS = {"PN", "UI", "DA", "DT", "TM"}


@dataclass(frozen=True)
class DicomOptions:
    """How segments and ROIs become roles, how overlaps and fractions resolve, where RTSTRUCT images are."""

    role_patterns: tuple[tuple[str, str], ...] = DEFAULT_ROLE_PATTERNS
    role_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_CODES))
    unmatched: str = "error"  # or "ignore"
    overlap_priority: tuple[str, ...] = DEFAULT_OVERLAP_PRIORITY
    fractional_threshold: float = 0.5
    reference_series: str | None = None
    max_voxels: int = DEFAULT_MAX_VOXELS  # a header claiming more is refused before pixel data is read

    @classmethod
    def from_config(cls, section: dict | None, reference_series: str | None = None) -> DicomOptions:
        """From the config's validated ``dicom`` section (defaults where a key is absent)."""
        section = section or {}
        patterns = section.get("segment_roles")
        return cls(
            role_patterns=tuple((p["pattern"], p["role"]) for p in patterns) if patterns else DEFAULT_ROLE_PATTERNS,
            role_codes=dict(section.get("segment_codes") or DEFAULT_ROLE_CODES),
            unmatched=section.get("unmatched", "error"),
            overlap_priority=tuple(section.get("overlap_priority") or DEFAULT_OVERLAP_PRIORITY),
            fractional_threshold=float(section.get("fractional_threshold", 0.5)),
            reference_series=reference_series,
        )

    def role_of(self, label: str, code: str | None = None) -> str | None:
        """The role a segment label (or ROI name) and optional coded property type stand for."""
        if code and code in self.role_codes:
            return self.role_codes[code]
        for pattern, role in self.role_patterns:
            if re.search(pattern, label, re.IGNORECASE):
                return role
        return None


def uid_digest(uid: str) -> str:
    """How a UID appears in messages: a digest, so logs stay free of DICOM identity."""
    return "uid#" + hashlib.sha256(str(uid).encode()).hexdigest()[:12]


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: 'DICM' after the 128-byte preamble."""
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


class Redactor:
    """Collects identifying header values and removes them from any text."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, dataset) -> None:
        for element in dataset.iterall():
            if element.VR in IDENTIFYING_VRS or element.keyword in IDENTIFYING_KEYWORDS:
                values = element.value if element.VM > 1 else [element.value]
                for value in values:
                    text = str(value).strip()
                    if len(text) >= 3:
                        self.values.add(text)
                        if element.VR == "PN":
                            self.values.update(p for p in re.split(r"[\^= ]+", text) if len(p) >= 3)

    def __call__(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "<redacted>")
        return text


@contextlib.contextmanager
def _guarded(path: Path, redactor: Redactor) -> Iterator[None]:
    """Run DICOM reading with its warnings and log records held back, then released redacted; any other
    exception becomes an InputDataError naming the file, also redacted."""
    records: list[str] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                records.append(record.getMessage())

    loggers = [logging.getLogger(name) for name in ("pydicom", "highdicom")]
    saved = [(lg.handlers[:], lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers, lg.propagate = [Hold()], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except InputDataError as exc:
                raise InputDataError(path, redactor(exc.problem)) from None
            except Exception as exc:
                raise InputDataError(
                    path, redactor(f"cannot read the DICOM data ({type(exc).__name__}: {exc})")
                ) from None
            finally:
                records.extend(str(w.message) for w in caught)
    finally:
        for lg, (handlers, propagate) in zip(loggers, saved):
            lg.handlers, lg.propagate = handlers, propagate
        for message in dict.fromkeys(records):
            log.warning("%s: %s", path, redactor(message))


# ---- discovery ----------------------------------------------------------------------------------------


@dataclass
class Header:
    path: Path
    dataset: object  # pydicom Dataset without pixel data

    @property
    def sop_class(self) -> str:
        return str(getattr(self.dataset, "SOPClassUID", ""))

    @property
    def series(self) -> str:
        return str(getattr(self.dataset, "SeriesInstanceUID", ""))


def read_headers(files: Iterable[Path], redactor: Redactor) -> list[Header]:
    import pydicom

    headers = []
    for file in files:
        dataset = pydicom.dcmread(file, stop_before_pixels=True)
        redactor.add(dataset)
        headers.append(Header(file, dataset))
    return headers


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom_file(p))


READ_OBJECTS = "brainmets reads DICOM SEG, RTSTRUCT (with its image series) and label-image series"


def _sop_name(header: Header) -> str:
    """The SOP class of a DICOM object, by name (an unknown or missing class says so)."""
    import pydicom

    uid = header.sop_class
    if not uid:
        return "object without a SOP Class UID (no data set)"
    name = pydicom.uid.UID(uid).name
    return f"{name} object" if name != uid else f"object of an unknown or private SOP class ({uid_digest(uid)})"


def _is_image(header: Header) -> bool:
    """An image object: it has the image pixel module's Rows and Columns (pixel data follows them)."""
    return "Rows" in header.dataset and "Columns" in header.dataset


def load_dicom(path: Path, options: DicomOptions | None = None, max_voxels: int | None = None) -> LabelMap:
    """A DICOM segmentation given as a file or a folder: SEG, RTSTRUCT (with its referenced series) or a
    label-image series. Other DICOM objects (structured reports, presentation states, a bare preamble) are
    refused with their SOP class; in a folder they are passed over."""
    options = options or DicomOptions()
    if max_voxels is not None:
        options = dataclasses.replace(options, max_voxels=max_voxels)
    redactor = Redactor()
    with _guarded(path, redactor):
        files = dicom_files(path) if path.is_dir() else [path]
        if not files:
            raise InputDataError(
                path, "is a folder without DICOM files; expected a label-map file (NIfTI, NRRD, MetaImage) or DICOM"
            )
        headers = read_headers(files, redactor)
        unread = [h for h in headers if h.sop_class not in (SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS) and not _is_image(h)]
        if unread and (path.is_file() or len(unread) == len(headers)):
            kinds = sorted({_sop_name(h) for h in unread})
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
            label_map = _read_seg(kinds["seg"][0], images, options, redactor)
        elif kinds["rtstruct"]:
            label_map = _read_rtstruct(kinds["rtstruct"][0], images, options, redactor)
        else:
            if path.is_file():  # one slice of a series: read the series it belongs to
                images = [h for h in read_headers(dicom_files(path.parent), redactor) if h.series == images[0].series]
            series = {h.series for h in images}
            if len(series) > 1:
                raise InputDataError(
                    path, f"holds {len(series)} image series and no SEG or RTSTRUCT; give the label series' folder"
                )
            label_map = _read_label_series(path, images, options)
    label_map.source = str(path)
    return label_map


def files_sha256(files: Iterable[Path]) -> str:
    """One SHA-256 for a set of files: of their sorted individual digests (names play no part)."""
    digests = sorted(file_sha256(f) for f in files)
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def role_scheme(roles: Iterable[str]) -> LabelScheme:
    """The scheme of a role-coded label map: each role's value is its :class:`Role` number."""
    values = {ROLE_NAMES[r]: frozenset({int(ROLE_NAMES[r])}) for r in roles if r != "ignored"}
    return LabelScheme(
        name="dicom-roles",
        values=values,
        description="roles of DICOM segments or ROIs: "
        + ", ".join(f"{int(r)} {r.name.lower()}" for r in sorted(values)),
    )


def combine_roles(masks: list[tuple[str, np.ndarray]], options: DicomOptions) -> np.ndarray:
    """One label map from per-segment masks: a voxel covered by several takes the role first in
    ``overlap_priority``; ignored segments are dropped."""
    shape = masks[0][1].shape if masks else ()
    labels = np.zeros(shape, np.uint8)
    order = {role: n for n, role in enumerate(options.overlap_priority)}
    for role, mask in sorted(masks, key=lambda m: order.get(m[0], len(order)), reverse=True):
        if role != "ignored":
            labels[mask] = int(ROLE_NAMES[role])
    return labels


def _segment_roles(items: list[tuple[int, str, str | None]], options: DicomOptions, what: str) -> dict[int, str]:
    """Role of each (number, label, code); an unmatched one is an error unless options.unmatched is ignore."""
    roles = {}
    for number, label, code in items:
        role = options.role_of(label, code)
        if role is None:
            if options.unmatched == "ignore":
                log.warning("%s %d %r matches no role: ignored", what, number, label)
                role = "ignored"
            else:
                raise InputDataError(
                    "",
                    f"unknown {what} {number} {label!r}: it matches no role pattern or code "
                    "(add one to dicom.segment_roles, or set dicom.unmatched: ignore)",
                )
        roles[number] = role
    if not any(r in ("enhancing", "necrotic", "core") for r in roles.values()):
        raise InputDataError("", f"no {what} maps to a tumour-core role (enhancing, necrotic or core): {roles}")
    return roles


def _geometry_provenance(affine: np.ndarray, shape) -> dict:
    return {
        "shape": [int(s) for s in shape],
        "voxel_size_mm": [float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)],
    }


# ---- DICOM SEG ----------------------------------------------------------------------------------------


def _read_seg(header: Header, images: list[Header], options: DicomOptions, redactor: Redactor) -> LabelMap:
    """A DICOM SEG on its source series' grid when that series is at hand (the folder given, the SEG's folder
    or --reference-series), else on the grid of its own frames."""
    import highdicom as hd

    ds = header.dataset
    rows, columns, frames = int(ds.get("Rows", 0)), int(ds.get("Columns", 0)), int(ds.get("NumberOfFrames", 1) or 1)
    check_voxel_count(header.path, (columns, rows, frames), 1, options.max_voxels)
    seg = hd.seg.segread(header.path)
    redactor.add(seg)
    _check_frames(seg)
    items = []
    for number in seg.segment_numbers:
        desc = seg.get_segment_description(number)
        prop = desc.segmented_property_type
        items.append((number, str(desc.segment_label), f"{prop.scheme_designator}:{prop.value}"))
    roles = _segment_roles(items, options, "segment")
    fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    source = _seg_source_series(seg, header, images, options, redactor)
    if source is not None:  # (slices, rows, columns, segments) -> (columns, rows, slices, segments)
        series, affine_lps, shape = source
        check_voxel_count(header.path, (*shape, len(items)), 1, options.max_voxels)
        uids = [str(h.dataset.SOPInstanceUID) for h in series]
        array = seg.get_pixels_by_source_instance(uids, rescale_fractional=True).transpose(2, 1, 0, 3)
        affine = LPS_TO_RAS @ affine_lps
        grid = "the source image series' grid"
    else:
        volume = seg.get_volume(combine_segments=False, rescale_fractional=True)
        array = np.asarray(volume.array)
        affine = volume.get_affine("RAH")
        grid = "the SEG's frames"
        _check_slice_spacing(seg, volume.affine)
    if array.ndim == 3:
        array = array[..., None]
    masks = []
    for channel, number in enumerate(seg.segment_numbers):
        values = array[..., channel]
        masks.append((roles[number], values >= options.fractional_threshold if fractional else values > 0))
    labels = combine_roles(masks, options)
    if source is None and _source_instance_count(seg) > labels.shape[0]:
        # empty frames omitted and the source series absent: one empty slice each side, so that no lesion
        # seems cut by the crop (touches_image_border cannot see the source's first and last slices)
        labels = np.pad(labels, ((1, 1), (0, 0), (0, 0)))
        affine[:3, 3] -= affine[:3, 0]
        grid = (
            "the extent of the SEG's frames plus one empty slice each side (its empty frames are omitted and its "
            "source series was not found; touches_image_border cannot see the source's first and last slices)"
        )
    return LabelMap(
        labels=labels,
        affine=affine,
        source=str(header.path),
        provenance={
            "input_format": "dicom-seg",
            **_geometry_provenance(affine, labels.shape),
            "segmentation_type": seg.segmentation_type.value,
            "segments": [{"number": n, "label": redactor(lbl), "role": roles[n]} for n, lbl, _ in items],
            "fractional_threshold": options.fractional_threshold if fractional else None,
            "grid": grid,
            "overlap_priority": list(options.overlap_priority),
            "input_sha256": files_sha256([header.path, *(h.path for h in source[0])] if source else [header.path]),
        },
        scheme=role_scheme(roles.values()),
    )


def _seg_source_series(seg, header: Header, images: list[Header], options: DicomOptions, redactor: Redactor):
    """(sorted headers, LPS affine, shape) of the SEG's source series if it is at hand and in the SEG's frame
    of reference, else None. A series given explicitly (``reference_series``) must be that: otherwise an
    error names both, rather than a silent fallback to the SEG's own frames."""
    try:
        series_uid = str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)
    except (AttributeError, IndexError):
        series_uid = None
    given = Path(options.reference_series) if options.reference_series else None
    if given is not None:
        if not given.is_dir():
            raise InputDataError("", f"the reference series folder {given} does not exist")
        images = read_headers(dicom_files(given), redactor)
    elif series_uid is None:
        return None
    elif not images:
        images = read_headers(dicom_files(header.path.parent), redactor)
    if series_uid is None:
        raise InputDataError(
            "", f"the SEG names no source series, so the reference series {given} cannot be matched to it"
        )
    series = [h for h in images if h.series == series_uid]
    frame = str(getattr(seg, "FrameOfReferenceUID", ""))
    frames = {str(getattr(h.dataset, "FrameOfReferenceUID", "")) for h in series}
    if given is not None and not series:
        found = sorted({uid_digest(h.series) for h in images}) or ["none"]
        raise InputDataError(
            "",
            f"the SEG's source series {uid_digest(series_uid)} is not in the reference series {given} (series "
            f"found there: {', '.join(found)}): give the series the SEG was drawn on, or none",
        )
    if given is not None and frames != {frame}:
        raise InputDataError(
            "",
            f"the reference series {given} is in frame of reference {', '.join(uid_digest(f) for f in sorted(frames))}, "
            f"not the SEG's {uid_digest(frame)}",
        )
    if not series or frames != {frame}:
        return None
    return series_geometry(series)


def _check_slice_spacing(seg, affine_lps: np.ndarray) -> None:
    """Warn when the volume's slice spacing (from the SEG's SpacingBetweenSlices) is a fraction of the
    distance between its frames: the tag is then likely wrong and the volume stretched along the slices."""
    spacing = float(np.linalg.norm(affine_lps[:3, 0]))
    positions = [
        [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        for frame in getattr(seg, "PerFrameFunctionalGroupsSequence", [])
        if "PlanePositionSequence" in frame
    ]
    distances = np.unique(np.round(np.asarray(positions).reshape(-1, 3) @ (affine_lps[:3, 0] / spacing), 3))
    if distances.size > 1 and np.diff(distances).min() > 1.5 * spacing:
        log.warning(
            "the SEG's slice spacing (SpacingBetweenSlices, %.4g mm) is smaller than the smallest distance "
            "between its frames (%.4g mm): the tag is probably wrong; give the source series "
            "(--reference-series) to read the SEG on its grid",
            spacing,
            np.diff(distances).min(),
        )


def _source_instance_count(seg) -> int:
    """How many source images the SEG was derived from (0 when it does not say)."""
    return sum(
        len(getattr(series, "ReferencedInstanceSequence", []))
        for series in getattr(seg, "ReferencedSeriesSequence", [])
    )


def _check_frames(seg) -> None:
    """The frames the SEG declares are all there: one functional group each, and (uncompressed) their pixels."""
    frames = int(getattr(seg, "NumberOfFrames", 1))
    groups = len(getattr(seg, "PerFrameFunctionalGroupsSequence", []))
    if groups != frames:
        raise InputDataError("", f"missing frames: NumberOfFrames is {frames} but {groups} frames are described")
    if not seg.file_meta.TransferSyntaxUID.is_compressed and "PixelData" in seg:
        bits = int(seg.BitsAllocated) * int(seg.Rows) * int(seg.Columns) * int(getattr(seg, "SamplesPerPixel", 1))
        held = len(seg.PixelData) * 8 // bits
        if held < frames:
            raise InputDataError("", f"missing frames: the pixel data holds {held} of the {frames} frames declared")


# ---- image series geometry ----------------------------------------------------------------------------


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


# ---- a DICOM series holding a label image --------------------------------------------------------------


def _read_label_series(path: Path, images: list[Header], options: DicomOptions) -> LabelMap:
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
            "dicom_object": _sop_name(images[0]),
            **_geometry_provenance(affine, data.shape),
            "stored_dtype": img.GetPixelIDTypeAsString(),
            "input_sha256": files_sha256(h.path for h in images),
        },
    )


# ---- RTSTRUCT -----------------------------------------------------------------------------------------


def _referenced_series(rtstruct) -> tuple[str, str]:
    """(frame of reference UID, series UID) the structure set's contours refer to."""
    try:
        frame = rtstruct.ReferencedFrameOfReferenceSequence[0]
        series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
        return str(frame.FrameOfReferenceUID), str(series.SeriesInstanceUID)
    except (AttributeError, IndexError):
        raise InputDataError("", "the RTSTRUCT names no referenced image series") from None


def _read_rtstruct(header: Header, images: list[Header], options: DicomOptions, redactor: Redactor) -> LabelMap:
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
    roles = _segment_roles(items, options, "ROI")
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
            **_geometry_provenance(affine, shape),
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
