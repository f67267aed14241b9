"""One measured study as DICOM segments and ROIs: per lesion (numbered as in the lesion table) a segment per
sub-region present and one of the edema brainmets attributes to it, the resection cavities after them, and per
lesion core one RTSTRUCT ROI; with a follow-up, each lesion's track id and a Tracking UID stable across the
follow-up's sessions. What is written where is :mod:`brainmets.io.dicom.export`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainmets.io.dicom.export import Segment
from brainmets.io.dicom.export_rtstruct import Roi
from brainmets.measurement.geometry import crop_affine
from brainmets.measurement.lesions import edema_owners
from brainmets.schemes import Role, role_mask

#: Sub-regions of a lesion core, in the order their segments are written: (role, kind, label words).
SUB_REGIONS = (
    (Role.ENHANCING, "enhancing", "enhancing tumour"),
    (Role.NECROTIC, "necrotic", "necrosis"),
    (Role.CORE, "core", "tumour core"),
)

#: Prefix of the Tracking UIDs derived from a follow-up (pydicom's UID root: the UIDs are made by pydicom).
TRACKING_UID_PREFIX = "1.2.826.0.1.3680043.8.498."


@dataclass(frozen=True)
class Tracks:
    """A follow-up's identity for one session: its lesion ids' track ids, and the key the Tracking UIDs are
    derived from (the follow-up's own identity, never a patient identifier)."""

    track_ids: dict[int, int]
    key: str

    def uid(self, track_id: int) -> str:
        """The Tracking UID of a track: the same for every session exported from the same follow-up."""
        from pydicom.uid import generate_uid

        return generate_uid(
            prefix=TRACKING_UID_PREFIX, entropy_srcs=["brainmets lesion track", self.key, str(track_id)]
        )


def _mm(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f} mm"


def _ml(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f} mL"


def lesion_description(row: dict[str, Any]) -> str:
    """What a lesion's segments and ROI say about it, as its row in the lesion table."""
    parts = [f"lesion {row['lesion_id']}: core volume {_ml(row.get('volume_ml'))}"]
    for key, name in (("enhancing_volume_ml", "enhancing"), ("necrotic_volume_ml", "necrotic"),
                      ("edema_volume_ml", "edema")):  # fmt: skip
        if row.get(key) is not None:
            parts.append(f"{name} {_ml(row[key])}")
    parts.append(f"max 3D diameter {_mm(row.get('max_diameter_3d_mm'))}")
    parts.append(
        f"axial longest {_mm(row.get('axial_longest_diameter_mm'))} x perpendicular "
        f"{_mm(row.get('axial_perpendicular_diameter_mm'))}"
    )
    return ", ".join(parts) + " (brainmets, research use only)"


def _identity(lesion_id: int, tracks: Tracks | None) -> tuple[int, str, str]:
    """(number, Tracking ID, Tracking UID) of a lesion: its track with a follow-up, else its lesion id."""
    from pydicom.uid import generate_uid

    if tracks is None:
        return lesion_id, f"lesion {lesion_id}", generate_uid()
    track = tracks.track_ids[lesion_id]
    return track, f"lesion {track}", tracks.uid(track)


def study_segments(measurement, tracks: Tracks | None = None) -> list[Segment]:
    """The SEG's segments of a :class:`~brainmets.study.measure.Measurement`, in order: per lesion its
    sub-regions present and its attributed edema, then each resection cavity."""
    features, labels = measurement.features, measurement.label_map.labels
    scheme = features.scheme or measurement.parameters.scheme
    instances = features.instances
    owners = np.zeros(labels.shape, dtype=np.int32)
    if scheme.has(Role.EDEMA):
        box = features.box
        edema = role_mask(labels[box], scheme, Role.EDEMA)
        origin = tuple(s.start for s in box)
        owners[box] = edema_owners(features.lesion_map, edema, crop_affine(features.affine, origin))
    masks = {kind: role_mask(labels, scheme, role) for role, kind, _ in SUB_REGIONS if scheme.has(role)}
    segments = []
    for row in features.lesions:
        lesion_id = row["lesion_id"]
        number, tracking_id, tracking_uid = _identity(lesion_id, tracks)
        description = lesion_description(row)
        core = instances == lesion_id
        for _, kind, words in SUB_REGIONS:
            if kind in masks and (mask := core & masks[kind]).any():
                segments.append(Segment(f"lesion {number} {words}", description, kind, mask, tracking_id, tracking_uid))
        if (edema := owners == lesion_id).any():
            segments.append(Segment(f"lesion {number} edema", description, "edema", edema, tracking_id, tracking_uid))
    segments += _cavity_segments(measurement, scheme)
    return segments


def _cavity_segments(measurement, scheme) -> list[Segment]:
    """One segment per resection-cavity component, numbered as in the resection-cavity table (by decreasing
    voxel count, ties by world centroid)."""
    import cc3d

    rows = measurement.features.document["resection_cavities"]
    if not rows or not scheme.has(Role.CAVITY):
        return []
    cavity = role_mask(measurement.label_map.labels, scheme, Role.CAVITY)
    components, n = cc3d.connected_components(cavity, connectivity=measurement.parameters.connectivity, return_N=True)
    affine = measurement.features.affine
    keyed = []
    for label in range(1, n + 1):
        voxels = np.argwhere(components == label)
        centroid = voxels.mean(axis=0) @ affine[:3, :3].T + affine[:3, 3]
        keyed.append(((-len(voxels), *(round(float(c), 6) for c in centroid)), label))
    keyed.sort()
    out = []
    for row, (_, label) in zip(rows, keyed):
        rim = ", ".join(map(str, row.get("rim_lesion_ids") or [])) or "none"
        description = (
            f"resection cavity {row['component_id']}: volume {_ml(row['volume_ml'])}, max 3D diameter "
            f"{_mm(row['max_diameter_3d_mm'])}, lesions in its rim: {rim} (brainmets, research use only)"
        )
        out.append(Segment(f"resection cavity {row['component_id']}", description, "cavity", components == label))
    return out


def study_rois(measurement, tracks: Tracks | None = None) -> list[Roi]:
    """The RTSTRUCT's ROIs: one per lesion core, numbered by its track id (with a follow-up) or lesion id."""
    out = []
    for row in measurement.features.lesions:
        number, name, _ = _identity(row["lesion_id"], tracks)
        out.append(Roi(number, name, lesion_description(row), measurement.features.instances == row["lesion_id"]))
    return out
