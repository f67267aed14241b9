"""DICOM headers read without identity leaking: identifying values redacted from every message, UIDs as
digests, the files of a folder and their kind."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.core import (
    file_sha256,
)

log = logging.getLogger(__name__)


#: What a DICOM input can be (said when it is something else).
READ_OBJECTS = "brainmets reads DICOM SEG, RTSTRUCT (with its image series) and label-image series"
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
def guarded(path: Path, redactor: Redactor) -> Iterator[None]:
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


def sop_name(header: Header) -> str:
    """The SOP class of a DICOM object, by name (an unknown or missing class says so)."""
    import pydicom

    uid = header.sop_class
    if not uid:
        return "object without a SOP Class UID (no data set)"
    name = pydicom.uid.UID(uid).name
    return f"{name} object" if name != uid else f"object of an unknown or private SOP class ({uid_digest(uid)})"


def is_image(header: Header) -> bool:
    """An image object: it has the image pixel module's Rows and Columns (pixel data follows them)."""
    return "Rows" in header.dataset and "Columns" in header.dataset


def files_sha256(files: Iterable[Path]) -> str:
    """One SHA-256 for a set of files: of their sorted individual digests (names play no part)."""
    digests = sorted(file_sha256(f) for f in files)
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def geometry_provenance(affine: np.ndarray, shape) -> dict:
    return {
        "shape": [int(s) for s in shape],
        "voxel_size_mm": [float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)],
    }
