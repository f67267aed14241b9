"""Subject and session labels come from files other people wrote: they are identifiers, never paths."""

from __future__ import annotations

import re
from pathlib import Path

from brainmets.errors import ConfigError

#: A BIDS label: letters and digits only (no '-', '_', '.', '/', spaces or other characters).
BIDS_LABEL = re.compile(r"[A-Za-z0-9]+")


def check_label(value: str | None, what: str) -> str | None:
    """``value`` if it is a BIDS label (or None); a ConfigError naming it otherwise."""
    if value is not None and not BIDS_LABEL.fullmatch(value):
        raise ConfigError(f"{what} {value!r} is not a BIDS label: use letters and digits only")
    return value


def inside(path: Path, folder: Path) -> Path:
    """``path`` if it lies inside ``folder`` (symbolic links resolved); a ConfigError otherwise."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(f"{path}: would be written outside the output folder {folder}")
    return path
