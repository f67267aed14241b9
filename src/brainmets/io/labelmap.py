"""The one in-memory form every reader returns: integer labels + a RAS affine + identifier-free provenance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainmets.schemes import LabelScheme


@dataclass
class LabelMap:
    """An integer label array with the 4x4 voxel-to-world affine (RAS+, millimetres).

    ``provenance`` holds only what describes the file, never who it belongs to: format, sha256, shape,
    header facts. The source path is kept apart (``source``) for error messages and is not written out.
    """

    labels: np.ndarray
    affine: np.ndarray
    source: str
    provenance: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: set by readers whose format names what each label means (DICOM SEG segments, RTSTRUCT ROIs)
    scheme: LabelScheme | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.labels.shape)  # type: ignore[return-value]
