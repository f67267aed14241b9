"""Segmentation readers: NIfTI through nibabel, NRRD/MHA/MHD through SimpleITK (LPS converted to RAS), DICOM
(SEG, label series, RTSTRUCT) through :mod:`.dicom`."""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.compressed import (
    DATA_FILE,
    GZIP_MAGIC,
    check_compressed,
    damaged,
    itk_layout,
    read_image,
    verified_gzip,
)
from brainmets.io.core import (
    DEFAULT_MAX_VOXELS,
    as_integer_labels,
    check_voxel_count,
    checked_affine,
    file_sha256,
    sitk_ras_affine,
)
from brainmets.io.dicom import DicomOptions, is_dicom_file, load_dicom
from brainmets.io.labelmap import LabelMap

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom")


@contextlib.contextmanager
def _captured_stderr(into: list[str]) -> Iterator[None]:
    """Catch what C++ libraries (ITK's MetaIO, GDCM) print on the process's stderr, so that it reaches the
    user inside brainmets' own one-line message instead of as stray lines."""
    import os
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            into.extend(line for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip())


def sitk_read(path: str | Path, action: Callable[[], Any]) -> Any:
    """Run a SimpleITK read, its RuntimeError (and what ITK printed) turned into an InputDataError."""
    printed: list[str] = []
    try:
        with _captured_stderr(printed):
            return action()
    except RuntimeError as exc:
        lines = [*printed, *str(exc).strip().splitlines()]
        detail = next((line.strip() for line in reversed(lines) if "Description:" in line), lines[-1] if lines else exc)
        raise InputDataError(path, f"not a readable image ({' '.join(str(detail).split())})") from None


#: Header fields (NRRD, MetaImage) that give voxel sizes: ITK replaces a NaN by 1 and a negative by a flip.
_SPACING_FIELDS = re.compile(r"^(spacings|space directions|ElementSpacing|ElementSize)\s*[:=]\s*(.*)$", re.I)


def _text_header(path: Path) -> list[str]:
    """The header lines of a NRRD or MetaImage file (up to its blank line, or its ElementDataFile line)."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    lines = []
    for raw in head.split(b"\n"):
        line = raw.decode("latin-1").strip()
        if not line and lines and lines[0].startswith("NRRD"):
            break
        lines.append(line)
        if line.lower().startswith("elementdatafile"):
            break
    return lines


def check_itk_text_header(path: Path) -> tuple[list[Path], bool]:
    """Voxel sizes of a NRRD / MetaImage header as written (positive, finite, no zero direction), and the
    detached data files it names (which must exist); returns those files, and whether the data are
    compressed."""
    lines = _text_header(path)
    compressed = itk_layout(path)[0] is not None
    files = []
    for line in lines:
        if match := _SPACING_FIELDS.match(line):
            values = re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", match.group(2), re.I)
            numbers = [float(v) for v in values]
            key = match.group(1)
            if key.lower() == "space directions":
                vectors = re.findall(r"\(([^)]*)\)", match.group(2))
                bad = not all(math.isfinite(v) for v in numbers) or any(
                    not any(float(x) for x in re.split(r"[,\s]+", v.strip()) if x) for v in vectors
                )
            else:
                bad = not all(math.isfinite(v) and v > 0 for v in numbers)
            if bad:
                raise InputDataError(path, f"voxel size {key} {match.group(2).strip()!r} must be positive and finite")
        elif (match := DATA_FILE.match(line)) and match.group("name").strip().upper() not in ("LOCAL", ""):
            name = match.group("name").strip().split()[0]
            if "%" in name or name.upper() == "LIST":
                continue  # a numbered or listed set of files: ITK reads and checks them
            data = (path.parent / name) if not Path(name).is_absolute() else Path(name)
            if not data.is_file():
                problem = "is not a regular file" if data.exists() else "does not exist"
                raise InputDataError(path, f"the data file {data} that its header names {problem}")
            files.append(data)
    return files, compressed


def check_image_header(path: str | Path, max_voxels: int) -> None:
    """Checks of any image file SimpleITK reads, before its data are read: the values its header claims (voxels
    times components), voxel sizes that are positive and finite (ITK would silently turn a negative spacing
    into a flipped direction, and a NaN into 1 mm). Its compressed data are verified as it is read
    (:func:`.compressed.read_image`)."""
    import SimpleITK as sitk

    path = Path(path)
    itk_text = path.name.lower().endswith(ITK_SUFFIXES)
    data_files, compressed = check_itk_text_header(path) if itk_text else ([], False)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    sitk_read(path, reader.ReadImageInformation)
    bits = re.search(r"(\d+)-bit", sitk.GetPixelIDValueAsString(reader.GetPixelID()))
    components = reader.GetNumberOfComponents()
    shape = (*reader.GetSize(), components) if components > 1 else reader.GetSize()
    bytes_per_value = int(bits.group(1)) // 8 if bits else 1
    check_voxel_count(path, shape, bytes_per_value, max_voxels)
    if len(data_files) == 1 and not compressed:  # raw data beside the header: it must hold what it claims
        needed, held = math.prod(shape) * bytes_per_value, data_files[0].stat().st_size
        if held < needed:
            raise InputDataError(
                path, f"truncated: its data file {data_files[0]} holds {held:,} bytes, the header claims {needed:,}"
            )
    spacing = reader.GetSpacing()
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        raise InputDataError(path, f"voxel spacing {list(spacing)} must be positive and finite")


def load_segmentation(
    path: str | Path, dicom: DicomOptions | None = None, max_voxels: int = DEFAULT_MAX_VOXELS
) -> LabelMap:
    """Read a segmentation label map, whatever its format, into a :class:`LabelMap`.

    The format is told by content (NIfTI and DICOM magic numbers) and extension; a folder is read as DICOM.
    ``dicom`` says how DICOM segments and ROIs map to roles. A header claiming more than ``max_voxels`` voxels
    is refused before any data is read. Raises :class:`InputDataError` (naming the file) for a missing,
    unreadable, oversized or inconsistent input.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "no such file")
    if not (path.is_file() or path.is_dir()):
        raise InputDataError(path, "not a regular file or folder (a pipe or device would block or never end)")
    name = path.name.lower()
    if path.is_dir() or name.endswith(DICOM_SUFFIXES) or is_dicom_file(path):
        label_map = load_dicom(path, dicom, max_voxels)
    elif name.endswith(NIFTI_SUFFIXES) or _looks_like_nifti(path):
        label_map = _read_nifti(path, max_voxels)
    elif name.endswith(ITK_SUFFIXES):
        label_map = _read_itk(path, max_voxels)
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


@contextlib.contextmanager
def _nibabel_messages(into: list[str]) -> Iterator[None]:
    """Hold back what nibabel logs (it prints header fixes itself and they would also reach the root
    logger): the messages are collected into ``into``, to be reported once as the file's warnings."""
    logger = logging.getLogger("nibabel.global")

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into.append(record.getMessage())

    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [Hold()], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved


def _is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic number (False when it cannot be read: the reader says why)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False


def _raw_nifti_header(path: Path, compressed: bool):
    """The header as stored, before nibabel's fixes (which turn a zero voxel size into 1 mm)."""
    import nibabel as nib

    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            block = fh.read(540)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        with open(path, "rb") as fh:
            if fh.read(2) != GZIP_MAGIC:  # not gzip at all, whatever its name says
                raise InputDataError(path, f"not a readable NIfTI file ({exc})") from None
        raise damaged(path, exc, kind="NIfTI") from None
    except OSError as exc:
        raise InputDataError(path, f"not a readable NIfTI file ({exc})") from None
    for header_class in (nib.Nifti1Header, nib.Nifti2Header):
        size = header_class.sizeof_hdr
        if len(block) >= size and header_class.may_contain_header(block[:size]):
            return header_class(block[:size], check=False)
    if compressed:
        check_compressed(path, kind="NIfTI")  # a damaged stream says so, rather than "no header"
    raise InputDataError(path, "not a readable NIfTI file (no NIfTI-1 or NIfTI-2 header)")


def _read_nifti(path: Path, max_voxels: int = DEFAULT_MAX_VOXELS) -> LabelMap:
    import nibabel as nib

    compressed = _is_gzip(path)  # told by content: a name can say .gz of a file that is not, or not say it
    named_gz = path.name.lower().endswith(".gz")
    raw = _raw_nifti_header(path, compressed)
    try:
        shape, itemsize = tuple(int(s) for s in raw.get_data_shape()), raw.get_data_dtype().itemsize
    except Exception as exc:  # dimensions or data type the format does not allow
        raise InputDataError(path, f"not a readable NIfTI header ({exc})") from None
    check_voxel_count(path, shape, itemsize, max_voxels)
    if len(shape) < 3:
        raise InputDataError(path, f"is {len(shape)}D with shape {shape}; expected a 3D label map")
    if len(shape) > 3 and any(s != 1 for s in shape[3:]):
        raise InputDataError(path, f"is a {len(shape)}D image of shape {shape}; expected a single 3D label map")
    scode, qcode = int(raw["sform_code"]), int(raw["qform_code"])
    if not scode:  # the qform, or the fallback affine, takes the voxel sizes from pixdim
        pixdim = [float(v) for v in raw["pixdim"][1:4]]
        if not all(math.isfinite(v) and v > 0 for v in pixdim):
            raise InputDataError(
                path,
                f"voxel size pixdim[1:4] = {pixdim} must be positive and finite (the file has no sform, so its "
                f"{'qform' if qcode else 'affine'} is built from it)",
            )
    if not compressed:
        needed = int(raw.get_data_offset()) + math.prod(shape) * itemsize
        held = path.stat().st_size
        if held < needed:
            raise InputDataError(path, f"truncated: the header claims {needed:,} bytes, the file holds {held:,}")

    messages: list[str] = []
    image_class = nib.Nifti2Image if isinstance(raw, nib.Nifti2Header) else nib.Nifti1Image
    with _nibabel_messages(messages):
        if compressed:  # one pass: nibabel reads what it needs, the rest of the stream for its checksum
            claimed = max(int(raw.get_data_offset()), 352) + math.prod(shape) * itemsize
            with verified_gzip(path, claimed, "NIfTI") as stream:
                img, data = _nifti_data(path, lambda: image_class.from_stream(stream), shape)
        elif path.name.lower().endswith(".nii"):
            img, data = _nifti_data(path, lambda: nib.load(str(path)), shape)
        else:  # recognised by its magic only, or misnamed .gz: nibabel would go by the name
            img, data = _nifti_data(path, lambda: image_class.from_bytes(path.read_bytes()), shape)

    warnings = list(dict.fromkeys(messages))
    if compressed != named_gz:
        warnings.append(
            "gzip-compressed although its name does not end in .gz"
            if compressed
            else "not gzip-compressed although its name ends in .gz"
        )
    sform, _ = img.get_sform(coded=True)
    qform, _ = img.get_qform(coded=True)
    if scode and qcode and not np.allclose(sform, qform, atol=1e-3):
        diff = float(np.abs(sform - qform).max())
        warnings.append(f"sform and qform disagree (largest difference {diff:.4g}); using the sform")
    if not scode and not qcode:
        warnings.append("neither sform nor qform is set; using the voxel sizes alone (orientation unknown)")
    scaled = getattr(img.dataobj, "slope", 1) != 1 or getattr(img.dataobj, "inter", 0) != 0
    return LabelMap(
        labels=as_integer_labels(data, path),
        affine=checked_affine(np.asarray(img.affine, dtype=float), path),
        source=str(path),
        provenance={
            "input_format": "nifti",
            "shape": [int(s) for s in shape[:3]],
            "stored_dtype": str(img.get_data_dtype()),
            "sform_code": scode,
            "qform_code": qcode,
            "scaling_applied": bool(scaled),
        },
        warnings=warnings,
    )


def _nifti_data(path: Path, load: Callable[[], Any], shape: tuple[int, ...]) -> tuple[Any, np.ndarray]:
    """The nibabel image ``load`` gives and its data as a 3D array; a damaged gzip stream's errors pass through
    (the caller's :func:`verified_gzip` names them), others become the file's InputDataError."""
    stream_errors = (EOFError, zlib.error, gzip.BadGzipFile)
    try:
        img = load()
    except stream_errors:
        raise
    except Exception as exc:  # nibabel raises several types for bad headers
        raise InputDataError(path, f"not a readable NIfTI file ({exc})") from None
    try:
        return img, np.asanyarray(img.dataobj).reshape(shape[:3])
    except stream_errors:
        raise
    except Exception as exc:
        raise InputDataError(path, f"cannot read the image data ({type(exc).__name__}: {exc})") from None


def _read_itk(path: Path, max_voxels: int = DEFAULT_MAX_VOXELS) -> LabelMap:
    import SimpleITK as sitk

    check_image_header(path, max_voxels)
    img = sitk_read(path, lambda: read_image(path))
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
