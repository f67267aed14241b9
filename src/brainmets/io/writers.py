"""Writers, and atomic output: files are written to temporary names beside their targets, then renamed into place."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

MISSING = "n/a"


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` only if the block succeeds.

    The temporary name is short (``.brainmets-XXXXXXXX.tmp`` and the target's extension, which writers read),
    so any legal target name works; an error while writing names the target, not the temporary file."""
    with atomic_outputs(target) as (tmp_path,):
        yield tmp_path


#: Temporary output names (``atomic_path``): what `sweep_temporary_files` removes after a killed run.
TEMPORARY_GLOB = ".brainmets-*.tmp*"


@contextlib.contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    """A new empty temporary file in the target's folder, removed on the way out unless renamed meanwhile."""
    suffix = "".join(target.suffixes[-2:]) if target.name.endswith(".gz") else target.suffix
    tmp_path = None
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".brainmets-", suffix=f".tmp{suffix[-16:]}")
        except OSError as exc:  # the folder, or the temporary file in it, cannot be made: say which target
            where = f" (creating {exc.filename})" if exc.filename and Path(exc.filename).parent != target.parent else ""
            raise OSError(exc.errno, f"{exc.strerror or exc}{where}", str(target)) from None
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
    except OSError as exc:
        if exc.filename not in (None, str(tmp_path), str(target.parent), str(target)):
            raise  # about another file (an input read while writing)
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
    finally:  # also on Terminated (SIGTERM, SIGINT): see brainmets.interrupts
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_outputs(*targets: str | Path) -> Iterator[list[Path]]:
    """Temporary paths for several outputs: all are renamed into place if the block succeeds, none otherwise.
    A termination signal is held back while they are renamed, so it never leaves a set half replaced."""
    from brainmets.interrupts import raise_if_terminated, signals_deferred

    paths = [Path(t) for t in targets]
    with contextlib.ExitStack() as stack:
        tmp_paths = [stack.enter_context(_temporary_beside(t)) for t in paths]
        yield tmp_paths
        raise_if_terminated()  # a signal whose exception something swallowed while they were written
        with signals_deferred():
            for tmp_path, target in zip(tmp_paths, paths):
                try:
                    os.chmod(tmp_path, 0o644)
                    os.replace(tmp_path, target)
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None


def sweep_temporary_files(folder: str | Path, older_than_s: float = 900) -> list[Path]:
    """Remove the temporary outputs a killed process (SIGKILL, out of memory) left under `folder`: those not
    modified for `older_than_s` seconds. A temporary file lives only while its output is written (results are
    computed first), so an older one belongs to no running process, even of another run writing there."""
    import time

    removed = []
    for path in sorted(Path(folder).rglob(TEMPORARY_GLOB)):
        with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile by its writer
            if path.lstat().st_mtime < time.time() - older_than_s:
                path.unlink()
                removed.append(path)
    return removed


def check_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None]) -> None:
    """Refuse outputs that would overwrite an input (a file given, a link to it, or a file inside a folder
    given), that name a folder, or that two outputs share; raises ConfigError naming the path."""
    from brainmets.errors import ConfigError

    given = [Path(p) for p in inputs if p and Path(p).exists()]
    files = {p.resolve(): p for p in given if not p.is_dir()}
    folders = [p.resolve() for p in given if p.is_dir()]
    seen: dict[Path, str] = {}
    for output in outputs:
        text, path = str(output), Path(output)
        if text.endswith(("/", os.sep)) or path.is_dir():
            raise ConfigError(f"{text}: names a folder; give a file name")
        resolved = path.resolve()
        if resolved in seen:
            raise ConfigError(f"{text}: two outputs would be written to this same file")
        seen[resolved] = text
        if resolved in files:
            raise ConfigError(f"{text}: refusing to overwrite the input {files[resolved]}")
        if path.exists() and any(resolved.is_relative_to(folder) for folder in folders):
            raise ConfigError(f"{text}: refusing to overwrite a file of an input folder")


#: Every number written (JSON, TSV, Parquet) keeps this many significant digits: far below any measurement's
#: precision, and no float noise such as 19.346999999999998.
SIGNIFICANT_DIGITS = 6


#: How JSON spells the non-finite numbers it has no literal for (NaN is written as null); brainmets.config.read_json
#: reads them back as floats.
INFINITY, MINUS_INFINITY = "Infinity", "-Infinity"


def rounded(value: object) -> object:
    """Plain Python values: numpy scalars unwrapped, finite floats to SIGNIFICANT_DIGITS; inf, -inf and NaN kept."""
    if isinstance(value, Mapping):
        return {str(k): rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if isinstance(value, np.ndarray):
        return [rounded(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def _json_number(value: object) -> object:
    """A non-finite float as JSON has it: +inf and -inf as the strings "Infinity" and "-Infinity", NaN as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else INFINITY if value > 0 else MINUS_INFINITY
    return value


def to_jsonable(value: object) -> object:
    """Plain JSON values: as :func:`rounded`, with +inf/-inf as "Infinity"/"-Infinity" and NaN as null
    (an infinite distance, one side empty, stays apart from an undefined one)."""
    value = rounded(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return _json_number(value)


def write_json(path: str | Path, document: object) -> None:
    """Sorted, indented JSON with no NaN literal: NaN as null, +inf/-inf as "Infinity"/"-Infinity"."""
    text = json.dumps(to_jsonable(document), indent=2, sort_keys=True, allow_nan=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def tsv_cell(value: object) -> str:
    """One TSV cell: ``n/a`` for missing or NaN, ``inf``/``-inf`` for infinite numbers, ``true``/``false`` for
    booleans, lists joined by commas (an empty list, which is known to be empty rather than missing, as ``none``)."""
    value = rounded(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list):
        return ",".join(tsv_cell(v) for v in value) if value else "none"
    return str(value)


def write_tsv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> None:
    """A tab-separated table with a header row."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([tsv_cell(row.get(c)) for c in columns])


def write_nifti(path: str | Path, data: np.ndarray, affine: np.ndarray) -> None:
    """A NIfTI image (compressed when the name ends in .gz)."""
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


def rounded_frame(rows: Sequence[Mapping[str, Any]], columns: list[str], index: str | list[str] | None) -> pd.DataFrame:
    """A table of ``rows`` (its ``columns``, in order), numbers rounded as the files have them
    (:data:`brainmets.io.writers.SIGNIFICANT_DIGITS` significant digits: 19.347, not 19.346999999999998); inf and
    NaN stay floats."""
    import pandas as pd  # imported when a table is asked for: the CLI's start stays fast

    frame = pd.DataFrame([rounded(dict(row)) for row in rows], columns=columns)
    return frame.set_index(index) if index else frame
