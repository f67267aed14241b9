"""Lesions as connected components of the tumour core, and the attribution of edema to them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cc3d
import numpy as np
from scipy import ndimage

from brainmets.measurement.geometry import apply_affine, voxel_spacing_mm, voxel_volume_mm3


def structure(connectivity: int) -> np.ndarray:
    """scipy.ndimage structuring element for 6-, 18- or 26-connectivity."""
    return ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])


def _expand(box: tuple[slice, ...], margin: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - int(m), 0), min(s.stop + int(m), n)) for s, m, n in zip(box, margin, shape))


def _union_box(boxes: list[tuple[slice, ...]]) -> tuple[slice, ...]:
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))


def _offset_box(box: tuple[slice, ...], origin: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(s.start + o.start, s.stop + o.start) for s, o in zip(box, origin))


@dataclass
class Lesions:
    """Lesions of one label map (or crop): core components grouped into lesions numbered 1..count by volume,
    inside the connected regions of core + edema."""

    components: np.ndarray  # connected components of the core (0 = none), numbered region by region
    members: list[list[int]]  # members[i - 1]: the components forming lesion i
    boxes: list[tuple[slice, ...]]  # boxes[i - 1]: bounding box of lesion i
    regions: np.ndarray  # connected components of core + edema
    region_boxes: list  # region_boxes[r]: bounding box of region r (index 0 unused)
    region_lesions: dict[int, list[int]]  # lesion ids in each region, ascending
    component_count: int = 0  # core components, kept or not
    discarded_count: int = 0
    discarded_voxels: int = 0

    @property
    def count(self) -> int:
        return len(self.members)

    def mask(self, lesion_id: int, box: tuple[slice, ...] | None = None) -> np.ndarray:
        """Core voxels of one lesion within ``box`` (default: its bounding box)."""
        box = self.boxes[lesion_id - 1] if box is None else box
        comps = self.components[box]
        members = self.members[lesion_id - 1]
        return comps == members[0] if len(members) == 1 else np.isin(comps, members)

    def instances(self) -> np.ndarray:
        """Lesion instance map: core voxels carry their lesion id, all else 0."""
        lut = np.zeros(self.component_count + 1, dtype=np.uint16 if self.count < 65535 else np.int32)
        for lesion_id, members in enumerate(self.members, start=1):
            lut[members] = lesion_id
        return lut[self.components]


def find_lesions(
    core: np.ndarray,
    edema: np.ndarray,
    affine: np.ndarray,
    connectivity: int = 26,
    min_volume_mm3: float = 0.0,
    merge_distance_mm: float = 0.0,
) -> Lesions:
    """Connected components of the tumour core, optionally merged when closer than ``merge_distance_mm``
    (voxel centre to voxel centre), dropped when smaller than ``min_volume_mm3``, and numbered by
    decreasing volume with ties broken by the world position of their centroid (so numbering does not
    depend on the storage order of the voxel axes).

    The regions of core + edema are labelled first (one pass over the array); core components, which
    always lie inside one region, are then labelled region by region on the regions' bounding boxes.
    """
    regions, n_regions = cc3d.connected_components(core | edema, connectivity=connectivity, return_N=True)
    regions = _narrow(regions, n_regions)  # cc3d's uint32, or wider: 4 bytes a voxel where 2 do
    region_boxes = [None, *ndimage.find_objects(regions)] if n_regions else [None]
    components = np.zeros(core.shape, dtype=np.uint16)  # widened below if there are more core components
    comp_boxes: list = [None]
    comp_counts: list[int] = [0]
    comp_region: list[int] = [0]
    for r in range(1, n_regions + 1):
        rbox = region_boxes[r]
        local_core = core[rbox] & (regions[rbox] == r)
        local, k = cc3d.connected_components(local_core, connectivity=connectivity, return_N=True)
        if k == 0:
            continue
        first = len(comp_boxes)
        if first - 1 + k > np.iinfo(components.dtype).max:
            components = components.astype(np.int32)
        components[rbox][local_core] = local[local_core].astype(components.dtype) + (first - 1)
        comp_counts.extend(np.bincount(local[local_core], minlength=k + 1)[1:].tolist())
        comp_boxes.extend(_offset_box(b, rbox) for b in ndimage.find_objects(local))
        comp_region.extend([r] * k)
    n = len(comp_boxes) - 1

    group = np.arange(n + 1)
    if merge_distance_mm > 0 and n > 1:
        group = _merge_groups(components, n, comp_boxes, affine, merge_distance_mm)
    members: dict[int, list[int]] = {}
    for c in range(1, n + 1):
        members.setdefault(int(group[c]), []).append(c)
    counts = np.asarray(comp_counts)
    size = {g: int(counts[m].sum()) for g, m in members.items()}

    vox_mm3 = voxel_volume_mm3(affine)
    kept = [g for g in members if size[g] * vox_mm3 >= min_volume_mm3 * (1 - 1e-9)]
    sizes_seen = Counter(size[g] for g in kept)
    tied = [g for g in kept if sizes_seen[size[g]] > 1]
    position = {g: _world_centroid(components, members[g], [comp_boxes[c] for c in members[g]], affine) for g in tied}
    kept.sort(key=lambda g: (-size[g], *position.get(g, ())))

    region_lesions: dict[int, list[int]] = {}
    for lesion_id, g in enumerate(kept, start=1):
        for r in sorted({comp_region[c] for c in members[g]}):
            region_lesions.setdefault(r, []).append(lesion_id)
    kept_set = set(kept)
    dropped = [g for g in members if g not in kept_set]
    return Lesions(
        components=components,
        members=[members[g] for g in kept],
        boxes=[_union_box([comp_boxes[c] for c in members[g]]) for g in kept],
        regions=regions,
        region_boxes=region_boxes,
        region_lesions=region_lesions,
        component_count=n,
        discarded_count=len(dropped),
        discarded_voxels=sum(size[g] for g in dropped),
    )


def _narrow(labels: np.ndarray, count: int) -> np.ndarray:
    """The labels as uint16 when ``count`` fits (the same values in half the memory of cc3d's uint32)."""
    return labels.astype(np.uint16) if count <= np.iinfo(np.uint16).max and labels.dtype != np.uint16 else labels


def _world_centroid(labels: np.ndarray, components: list[int], boxes: list, affine: np.ndarray) -> tuple:
    """World position (rounded to 1e-6 mm) of the centre of mass of some components, to order ties."""
    box = _union_box(boxes)
    ijk = np.argwhere(np.isin(labels[box], components)) + [s.start for s in box]
    return tuple(np.round(apply_affine(affine, ijk.mean(axis=0)), 6))


def _merge_groups(labels: np.ndarray, n: int, boxes: list, affine: np.ndarray, distance_mm: float) -> np.ndarray:
    """Union-find over components whose nearest voxel centres are at most ``distance_mm`` apart."""
    parent = np.arange(n + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    spacing = voxel_spacing_mm(affine)
    margin = np.ceil(distance_mm / spacing).astype(int)
    for c in range(1, n + 1):
        box = _expand(boxes[c], margin, labels.shape)
        crop = labels[box]
        dist = ndimage.distance_transform_edt(crop != c, sampling=spacing)
        for other in np.unique(crop[(dist <= distance_mm * (1 + 1e-9)) & (crop > c)]):
            a, b = root(c), root(int(other))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n + 1)])


def _nearest_lesion_counts(
    instances: np.ndarray, targets: np.ndarray, affine: np.ndarray, spacing: np.ndarray, minlength: int
) -> np.ndarray:
    """How many ``targets`` voxels have each lesion's core as the nearest core (Euclidean, mm)."""
    return np.bincount(_nearest_lesion(instances, targets, affine, spacing)[targets], minlength=minlength)


def _nearest_lesion(instances: np.ndarray, targets: np.ndarray, affine: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """The id of the nearest lesion core at each ``targets`` voxel (0 elsewhere), on the arrays' grid.

    One feature transform (scipy's exact EDT) over the arrays turned to the closest RAS orientation, so that
    voxels equidistant from two lesions are resolved the same way however the voxel axes are stored.
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    canonical = nib.orientations.apply_orientation(instances, ornt)
    canon_spacing = np.empty(3)
    canon_spacing[ornt[:, 0].astype(int)] = spacing
    index = ndimage.distance_transform_edt(
        canonical == 0, sampling=canon_spacing, return_distances=False, return_indices=True
    )
    at = nib.orientations.apply_orientation(targets, ornt)  # read the nearest core only where it counts
    nearest = np.zeros(canonical.shape, dtype=canonical.dtype)
    nearest[at] = canonical[index[0][at], index[1][at], index[2][at]]
    inverse = np.empty_like(ornt)  # back to the arrays' own axes
    inverse[ornt[:, 0].astype(int)] = np.column_stack([np.arange(3), ornt[:, 1]])
    return nib.orientations.apply_orientation(nearest, inverse)


def edema_owners(lesions: Lesions, edema: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxel by voxel, the lesion each edema voxel is attributed to (0: edema-only or not edema): the same rule
    as :func:`assign_edema` (whose counts it reproduces), for writing each lesion's edema as its own segment."""
    owners = np.zeros(edema.shape, dtype=np.int32)
    spacing = voxel_spacing_mm(affine)
    for r, ids in lesions.region_lesions.items():
        box = lesions.region_boxes[r]
        targets = (lesions.regions[box] == r) & edema[box]
        if len(ids) == 1:
            owners[box][targets] = ids[0]
            continue
        lut = np.zeros(lesions.component_count + 1, dtype=np.int32)
        for lesion_id in ids:
            lut[lesions.members[lesion_id - 1]] = lesion_id
        instances = np.where(lesions.regions[box] == r, lut[lesions.components[box]], 0)
        owners[box][targets] = _nearest_lesion(instances, targets, affine, spacing)[targets]
    return owners


@dataclass
class EdemaComponent:
    """A connected region of edema (with core) that holds no lesion: reported apart, never as a lesion."""

    box: tuple[slice, ...]
    label: int  # its label in ``Lesions.regions``
    edema_voxels: int


@dataclass
class EdemaAssignment:
    """Edema voxels attributed to each lesion, and the edema-only components."""

    lesion_voxels: np.ndarray  # lesion_voxels[i]: edema voxels given to lesion i (index 0 unused)
    edema_only: list[EdemaComponent] = field(default_factory=list)
    discarded_edema_only_count: int = 0
    discarded_edema_only_voxels: int = 0


def assign_edema(
    lesions: Lesions, edema: np.ndarray, affine: np.ndarray, min_edema_only_mm3: float = 0.0
) -> EdemaAssignment:
    """Give every edema voxel to the nearest lesion core (Euclidean, mm) within its connected region of
    core + edema; regions holding no lesion become edema-only components.

    Voxels equidistant from two lesions are resolved in a fixed order of the patient axes, whatever the
    order in which the voxel axes are stored.
    """
    regions = lesions.regions
    n = len(lesions.region_boxes) - 1
    lesion_voxels = np.zeros(lesions.count + 1, dtype=np.int64)
    edema_counts = np.bincount(regions[edema], minlength=n + 1)
    spacing = voxel_spacing_mm(affine)
    for r, ids in lesions.region_lesions.items():
        if len(ids) == 1:
            lesion_voxels[ids[0]] += edema_counts[r]
            continue
        box = lesions.region_boxes[r]
        in_region = regions[box] == r
        lut = np.zeros(lesions.component_count + 1, dtype=np.int32)
        for lesion_id in ids:
            lut[lesions.members[lesion_id - 1]] = lesion_id
        instances = np.where(in_region, lut[lesions.components[box]], 0)
        lesion_voxels += _nearest_lesion_counts(instances, in_region & edema[box], affine, spacing, lesions.count + 1)

    vox_mm3 = voxel_volume_mm3(affine)
    edema_only, dropped, dropped_voxels = [], 0, 0
    for r in np.flatnonzero(edema_counts).tolist():
        if r in lesions.region_lesions:
            continue
        voxels = int(edema_counts[r])
        if voxels * vox_mm3 < min_edema_only_mm3 * (1 - 1e-9):
            dropped += 1
            dropped_voxels += voxels
            continue
        edema_only.append(EdemaComponent(box=lesions.region_boxes[r], label=r, edema_voxels=voxels))
    return EdemaAssignment(
        lesion_voxels=lesion_voxels,
        edema_only=edema_only,
        discarded_edema_only_count=dropped,
        discarded_edema_only_voxels=dropped_voxels,
    )
