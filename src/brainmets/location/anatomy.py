"""Anatomy measured on the subject's own parcellation (FreeSurfer aseg labels, as SynthSeg and FreeSurfer
write them): the ideal midline plane and the midline shift, the ventricle volumes and the Evans index.

Everything is measured in the head's own frame, found from the labels (left-right from the hemispheres,
anterior-posterior from the brain's long axis, superior from their cross product), never from the image's
axes: a rotated head gives the same values. Pure functions over a label array and its affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from brainmets.location.parameters import LocationParameters
from brainmets.location.references import Reference
from brainmets.measurement.geometry import (
    apply_affine,
    bounding_box,
    crop_affine,
    voxel_spacing_mm,
    voxel_volume_mm3,
)

# FreeSurfer aseg label numbers (FreeSurferColorLUT.txt; SynthSeg "labels table.txt").
LEFT_LATERAL_VENTRICLE, LEFT_INF_LAT_VENT = 4, 5
RIGHT_LATERAL_VENTRICLE, RIGHT_INF_LAT_VENT = 43, 44
THIRD_VENTRICLE, FOURTH_VENTRICLE, BRAINSTEM, OPTIC_CHIASM = 14, 15, 16, 85
CEREBELLUM = (7, 8, 46, 47)
#: Cerebral white matter and cortex of each side, with the aparc cortical parcels and wmparc white-matter
#: parcels where present (1000-1035 / 2000-2035, 3000-3035 / 4000-4035, 5001 / 5002).
LEFT_HEMISPHERE = (2, 3, *range(1000, 1036), *range(3000, 3036), 5001)
RIGHT_HEMISPHERE = (41, 42, *range(2000, 2036), *range(4000, 4036), 5002)

#: Classes of the lookup table that sorts every parcellation voxel in one pass; 4-11 are the small structures
#: whose every voxel is located, the hemispheres and cerebellum are sampled on every second voxel.
_NONE, _LEFT, _RIGHT, _CEREBELLUM, _LV_L, _ILV_L, _LV_R, _ILV_R, _V3, _V4, _BRAINSTEM, _CHIASM, _OTHER = range(13)
_SMALL = range(_LV_L, _OTHER)
_CLASS_OF = {
    LEFT_LATERAL_VENTRICLE: _LV_L,
    LEFT_INF_LAT_VENT: _ILV_L,
    RIGHT_LATERAL_VENTRICLE: _LV_R,
    RIGHT_INF_LAT_VENT: _ILV_R,
    THIRD_VENTRICLE: _V3,
    FOURTH_VENTRICLE: _V4,
    BRAINSTEM: _BRAINSTEM,
    OPTIC_CHIASM: _CHIASM,
    **dict.fromkeys(CEREBELLUM, _CEREBELLUM),
    **dict.fromkeys(LEFT_HEMISPHERE, _LEFT),
    **dict.fromkeys(RIGHT_HEMISPHERE, _RIGHT),
}
_MAX_LABEL = 13000  # larger labels (and negative ones) are not intracranial


#: The structures lesions are measured against (per-lesion distances), by name.
STRUCTURES = {"brainstem": _BRAINSTEM, "fourth_ventricle": _V4, "third_ventricle": _V3, "optic_chiasm": _CHIASM}


@dataclass(frozen=True)
class MidlinePlane:
    """The ideal midline plane: unit ``normal`` (world RAS, pointing to the subject's right) and a ``point`` on it."""

    normal: np.ndarray
    point: np.ndarray

    def signed_distance(self, world: np.ndarray) -> np.ndarray:
        """Distance (mm) of each point from the plane, positive on the subject's right."""
        return (np.asarray(world, float) - self.point) @ self.normal


@dataclass
class ParcellationAnatomy:
    """What the subject's parcellation shows beyond lesion location (see the module docstring)."""

    study: dict[str, Any]  # the study fields (midline shift, ventricle volumes, Evans index)
    plane: MidlinePlane | None
    shift_point: np.ndarray | None  # world position of the structure point displaced the most
    notes: list[str]
    trees: dict[str, cKDTree | None] = field(default_factory=dict)  # structure name -> KD-tree of voxel centres

    def provenance(self) -> dict[str, Any]:
        """The midline as the features document records it (for the figure and the reader)."""
        if self.plane is None:
            return {"midline_plane": None}
        return {
            "midline_plane": {
                "normal_ras": self.plane.normal.tolist(),
                "point_ras_mm": self.plane.point.tolist(),
                "shift_point_ras_mm": None if self.shift_point is None else self.shift_point.tolist(),
            }
        }


NO_PARCELLATION = "no subject parcellation given"


def subject_anatomy(reference: Reference | None, params: LocationParameters) -> ParcellationAnatomy:
    """The anatomy of the study's own parcellation (measured once per reference and parameters: a batch's
    studies of one subject share it); empty with the reason when the reference is not one (an atlas or a
    registered template shows the template's anatomy, not the patient's)."""
    if reference is None or reference.kind != "parcellation":
        reason = NO_PARCELLATION
        if reference is not None:
            reason += f" (the {reference.kind} shows its own anatomy, not the patient's)"
        return ParcellationAnatomy(empty_anatomy(reason), None, None, [])
    if len(reference.images) != 1:
        reason = f"the parcellation reference {reference.definition.name!r} has {len(reference.images)} images, not one"
        return ParcellationAnatomy(empty_anatomy(reason), None, None, [])
    (image,) = reference.images.values()
    return reference.derived(("anatomy", params), lambda: measure_anatomy(image.labels, image.affine, params))


def empty_anatomy(reason: str | None) -> dict[str, Any]:
    """The study fields when there is no subject parcellation (or it cannot be read for them)."""
    return {
        "midline_shift_mm": None,
        "midline_shift_towards": None,
        "midline_shift_reason": reason,
        "lateral_ventricle_volume_left_ml": None,
        "lateral_ventricle_volume_right_ml": None,
        "third_ventricle_volume_ml": None,
        "fourth_ventricle_volume_ml": None,
        "evans_index": None,
    }


def _lookup_table() -> np.ndarray:
    """Label -> class. Intracranial (the Evans index's cranium): the aseg structures 1-99 (brain, ventricles,
    extracerebral CSF 24) and the cortical and white-matter parcels; 100-999 are left out (head tissues in
    FreeSurferColorLUT, extracerebral classes in SynthSeg's training maps)."""
    table = np.full(2**16, _NONE, dtype=np.uint8)  # indexed by the labels' 16 bits: negative ones land high
    table[1:100] = _OTHER
    table[1000:5000] = _OTHER
    table[[5001, 5002]] = _OTHER
    table[11100:13000] = _OTHER
    for label, cls in _CLASS_OF.items():
        table[label] = cls
    return table


_TABLE = _lookup_table()


@dataclass(frozen=True)
class _Grid:
    """Voxel classes on a grid and the affine of its first voxel."""

    cls: np.ndarray
    affine: np.ndarray

    def world(self, ijk: np.ndarray) -> np.ndarray:
        return apply_affine(self.affine, ijk)

    def sub(self, box: tuple[slice, ...] | None) -> _Grid:
        """The part of the grid in ``box`` (all of it for None)."""
        if box is None:
            return self
        return _Grid(self.cls[box], crop_affine(self.affine, [s.start for s in box]))


def measure_anatomy(labels: np.ndarray, affine: np.ndarray, params: LocationParameters) -> ParcellationAnatomy:
    """Midline plane and shift, ventricle volumes and the Evans index of one parcellation (``labels`` on the
    grid ``affine``), and KD-trees of the structures the lesions are measured against."""
    order = [int(a) for a in np.argsort(np.abs(labels.strides))[::-1]]  # a transposed array read in memory order
    labels, affine = labels.transpose(order), affine[:, [*order, 3]]
    box = bounding_box(labels != 0)
    if box is None:
        return ParcellationAnatomy(empty_anatomy("the parcellation is empty"), None, None, [])
    whole = _Grid(labels, affine).sub(box)
    if whole.cls.dtype.itemsize <= 2:  # int16 and smaller: every value indexes the table as it is
        index = whole.cls.astype(np.int16, copy=False).view(np.uint16)
    else:
        index = np.clip(whole.cls, 0, _MAX_LABEL + 1)
    grid = _Grid(_TABLE[index], whole.affine)
    points = _small_structures(grid)
    vox_ml = voxel_volume_mm3(affine) / 1000.0
    study = empty_anatomy(None)
    notes: list[str] = []
    for key, classes, what in (
        ("lateral_ventricle_volume_left_ml", (_LV_L, _ILV_L), "left lateral ventricle (4, 5)"),
        ("lateral_ventricle_volume_right_ml", (_LV_R, _ILV_R), "right lateral ventricle (43, 44)"),
        ("third_ventricle_volume_ml", (_V3,), "third ventricle (14)"),
        ("fourth_ventricle_volume_ml", (_V4,), "fourth ventricle (15)"),
    ):
        voxels = sum(len(points[c]) for c in classes)
        study[key] = voxels * vox_ml if voxels else None
        if not voxels:
            notes.append(f"the parcellation has no {what} label: {key} is null")
    trees = {name: (cKDTree(points[c]) if len(points[c]) else None) for name, c in STRUCTURES.items()}

    midline, reason = _midline(grid, params)
    if midline is None:
        study["midline_shift_reason"] = reason
        notes.append(f"midline shift and Evans index not measured: {reason}")
        return ParcellationAnatomy(study, None, None, notes, trees)
    shift, shift_point, reason = _shift(grid, points, midline, params)
    if shift is None:
        study["midline_shift_reason"] = reason
        notes.append(f"midline shift not measured: {reason}")
    else:
        study["midline_shift_mm"] = abs(shift)
        if abs(shift) >= params.midline_shift_direction_min_mm:
            study["midline_shift_towards"] = "right" if shift > 0 else "left"
    study["evans_index"], why = _evans_index(grid, points, midline)
    if why:
        notes.append(f"evans_index not measured: {why}")
    return ParcellationAnatomy(study, midline.plane, shift_point, notes, trees)


def _points_by_class(cls: np.ndarray, affine: np.ndarray, classes: range) -> dict[int, np.ndarray]:
    """World coordinates of the voxel centres of each of ``classes`` (consecutive) in one pass over ``cls``."""
    flat = cls.reshape(-1)
    index = np.flatnonzero((flat >= classes.start) & (flat < classes.stop))
    found = flat[index]
    index = index[np.argsort(found, kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(found, minlength=classes.stop)[classes])])
    world = apply_affine(affine, np.column_stack(np.unravel_index(index, cls.shape)).astype(float))
    return {c: world[bounds[n] : bounds[n + 1]] for n, c in enumerate(classes)}


def _small_structures(grid: _Grid) -> dict[int, np.ndarray]:
    """World coordinates of every voxel centre of the ventricles, brainstem and chiasm, by class."""
    return _points_by_class(grid.cls, grid.affine, _SMALL)


def _sampled(grid: _Grid) -> dict[int, np.ndarray]:
    """World coordinates of every second voxel (along each axis) of the hemispheres and the cerebellum, by
    class: enough for centroids and axes."""
    affine = grid.affine.copy()
    affine[:3, :3] *= 2  # the sample's grid
    return _points_by_class(np.ascontiguousarray(grid.cls[::2, ::2, ::2]), affine, range(_LEFT, _CEREBELLUM + 1))


@dataclass(frozen=True)
class _Frame:
    """The head's frame: rows u (to the subject's right), a (anterior), s (superior), around ``origin``."""

    axes: np.ndarray  # 3 x 3, rows u, a, s
    origin: np.ndarray

    def coordinates(self, world: np.ndarray) -> np.ndarray:
        return (world - self.origin) @ self.axes.T

    def with_normal(self, normal: np.ndarray, origin: np.ndarray) -> _Frame:
        a = self.axes[1] - (self.axes[1] @ normal) * normal
        a /= np.linalg.norm(a)
        return _Frame(np.array([normal, a, np.cross(normal, a)]), origin)


def _initial_frame(left: np.ndarray, right: np.ndarray, cerebellum: np.ndarray) -> _Frame:
    """Left-right from the hemispheres' centroids; anterior-posterior the hemispheres' longest axis across
    that, pointing away from the cerebellum (or along world +y without one); superior their cross product."""
    u = right.mean(axis=0) - left.mean(axis=0)
    u /= np.linalg.norm(u)
    both = np.concatenate([left[::4], right[::4]])  # a sample of the sample: the axes change by far under a degree
    centre = both.mean(axis=0)
    flat = (both - centre) - np.outer((both - centre) @ u, u)
    a = np.linalg.eigh(flat.T @ flat)[1][:, -1]
    back = (cerebellum.mean(axis=0) - centre) if len(cerebellum) else -np.array([0.0, 1.0, 0.0])
    if a @ back > 0:
        a = -a
    return _Frame(np.array([u, a, np.cross(u, a)]), centre)


@dataclass(frozen=True)
class _Rows:
    """Rows of voxels along the grid axis closest to the head's left-right axis: ``axis``, and whether its
    index grows towards the subject's right; ``across`` is the distance along u of one step."""

    axis: int
    rightwards: bool
    across: float

    @classmethod
    def along(cls, affine: np.ndarray, u: np.ndarray) -> _Rows:
        columns = affine[:3, :3]
        cosines = (u @ columns) / np.linalg.norm(columns, axis=0)
        axis = int(np.argmax(np.abs(cosines)))
        return cls(axis, bool(cosines[axis] > 0), float(abs(u @ columns[:, axis])))

    def ends(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's first and last index of ``mask`` (counted towards the right), and which rows hold any."""
        n = mask.shape[self.axis]
        rows = np.ascontiguousarray(np.moveaxis(mask, self.axis, -1))  # argmax is fastest along rows in memory
        first = rows.argmax(axis=-1)
        last = n - 1 - rows[..., ::-1].argmax(axis=-1)
        present = np.take_along_axis(rows, first[..., None], axis=-1)[..., 0]
        if not self.rightwards:
            first, last = n - 1 - last, n - 1 - first
        return first, last, present

    def points(self, grid_affine: np.ndarray, shape, position: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """World coordinates of index ``position`` (counted towards the right) in each row of ``rows``
        (a boolean array over the other two axes)."""
        n = shape[self.axis]
        along = position[rows] if self.rightwards else n - 1 - position[rows]
        others = np.nonzero(rows)
        ijk = np.empty((len(along), 3))
        ijk[:, self.axis] = along
        for k, axis in enumerate(a for a in range(3) if a != self.axis):
            ijk[:, axis] = others[k]
        return apply_affine(grid_affine, ijk)


def _facing(grid: _Grid, rows: _Rows, left: int, right: int, max_gap: float, box=None) -> np.ndarray:
    """Where a left and a right structure face each other: in every row holding both with the left one's
    rightmost voxel before the right one's leftmost, at most ``max_gap`` mm apart across, the point halfway
    between those two voxel centres (world coordinates). ``box``: the part of the grid to read."""
    part = grid.sub(box)
    _, wall_l, has_l = rows.ends(part.cls == left)
    wall_r, _, has_r = rows.ends(part.cls == right)
    gap = (wall_r - wall_l) * rows.across
    keep = has_l & has_r & (wall_r > wall_l) & (gap <= max_gap)
    return rows.points(part.affine, part.cls.shape, (wall_l + wall_r) / 2.0, keep)


@dataclass(frozen=True)
class _Midline:
    """The fitted plane, the head's frame aligned with it, the rows the grid is read along, and the sampled
    hemisphere points (for the Evans index's slab)."""

    plane: MidlinePlane
    frame: _Frame
    rows: _Rows
    hemispheres: np.ndarray


def _midline(grid: _Grid, params: LocationParameters) -> tuple[_Midline | None, str | None]:
    """The ideal midline plane: a plane fitted (least squares, outliers beyond 3 robust SDs dropped) to the
    interhemispheric fissure's midpoints near the frontal and occipital poles (the anterior and posterior
    ``midline_pole_fraction`` of the hemispheres' length), where the falx is attached and a mass does not push
    it; refitted twice in the frame of the previous fit. Returns (the midline, or None and the reason)."""
    sampled = _sampled(grid)
    left, right = sampled[_LEFT], sampled[_RIGHT]
    if len(left) < 100 or len(right) < 100:
        return None, "the parcellation has no left and right hemisphere labels (2/3 and 41/42)"
    frame = _initial_frame(left, right, sampled[_CEREBELLUM])
    rows = _Rows.along(grid.affine, frame.axes[0])
    both = np.concatenate([left, right])
    along = frame.coordinates(both)[:, 1]
    length = np.percentile(along, [0.5, 99.5])
    reach = params.midline_pole_fraction * (length[1] - length[0])
    margin = 10.0  # mm: the refits turn the frame far less than this at the poles' inner edges
    fissure = np.concatenate(
        [
            _facing(grid, rows, _LEFT, _RIGHT, params.midline_fissure_max_gap_mm, _structure_box(grid, pole, rows=rows))
            for pole in (both[along >= length[1] - reach - margin], both[along <= length[0] + reach + margin])
        ]
    )
    plane = None
    for _ in range(3):
        local = frame.coordinates(fissure)
        front, back = local[:, 1] >= length[1] - reach, local[:, 1] <= length[0] + reach
        if min(front.sum(), back.sum()) < 10:
            return None, (
                f"too few interhemispheric fissure points near the frontal ({front.sum()}) and occipital "
                f"({back.sum()}) poles"
            )
        coef = _robust_plane(local[front | back])
        normal = frame.axes.T @ np.array([1.0, -coef[1], -coef[2]])
        normal /= np.linalg.norm(normal)
        plane = MidlinePlane(normal, frame.origin + coef[0] * frame.axes[0])
        frame = frame.with_normal(normal, plane.point)
    return _Midline(plane, frame, rows, both), None


def _robust_plane(local: np.ndarray) -> np.ndarray:
    """u = c0 + c1 a + c2 s fitted to the points, dropping those beyond 3 robust SDs (at least 1 mm) twice."""
    keep = np.ones(len(local), bool)
    design = np.column_stack([np.ones(len(local)), local[:, 1], local[:, 2]])
    for _ in range(3):
        coef = np.linalg.lstsq(design[keep], local[keep, 0], rcond=None)[0]
        residual = local[:, 0] - design @ coef
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        keep = np.abs(residual) <= max(3 * spread, 1.0)
    return coef


def _structure_box(grid: _Grid, *worlds: np.ndarray, rows: _Rows | None = None) -> tuple[slice, ...]:
    """The grid's box around the given world points (two voxels of margin, for sampled points), whole along
    the ``rows`` axis when given."""
    ijk = apply_affine(np.linalg.inv(grid.affine), np.concatenate(worlds))
    low = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - 2, 0)
    high = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 3, grid.cls.shape)
    if rows is not None:
        low[rows.axis], high[rows.axis] = 0, grid.cls.shape[rows.axis]
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def _shift(grid: _Grid, points, midline: _Midline, params: LocationParameters):
    """The largest distance from the plane of the septum pellucidum (halfway between the lateral ventricles 4
    and 43 where they face each other) or of the third ventricle (14, halfway between its walls), each point's
    distance first replaced by the median over the points of that structure within ``midline_smoothing_mm``
    (in the midline plane). Returns (signed shift, the point's world position, reason when none)."""
    plane, frame, rows = midline.plane, midline.frame, midline.rows
    structures = []
    if len(points[_LV_L]) and len(points[_LV_R]):
        box = _structure_box(grid, points[_LV_L], points[_LV_R])
        structures.append(_facing(grid, rows, _LV_L, _LV_R, params.septum_max_gap_mm, box))
    if len(points[_V3]):
        box = _structure_box(grid, points[_V3])
        part = grid.sub(box)
        first, last, present = rows.ends(part.cls == _V3)
        structures.append(rows.points(part.affine, part.cls.shape, (first + last) / 2.0, present))
    candidates = []
    for world in structures:
        if len(world) < 3:
            continue
        distance = plane.signed_distance(world)
        local = frame.coordinates(world)[:, 1:]
        neighbours = cKDTree(local).query_ball_point(local, params.midline_smoothing_mm)
        table = np.full((len(world), max(map(len, neighbours))), np.nan)
        for row, near in enumerate(neighbours):
            table[row, : len(near)] = distance[near]
        smoothed = np.nanmedian(table, axis=1)
        worst = int(np.argmax(np.abs(smoothed)))
        candidates.append((float(smoothed[worst]), world[worst]))
    if not candidates:
        return None, None, "the parcellation has no septum (facing lateral ventricles 4 and 43) or third ventricle (14)"
    shift, where = max(candidates, key=lambda c: abs(c[0]))
    return shift, where, None


def _evans_index(grid: _Grid, points, midline: _Midline) -> tuple[float | None, str | None]:
    """Frontal-horn width over the internal cranial width on the same axial slab (one voxel thick, normal to
    the head's superior axis), both across the midline plane's normal: the frontal horns are the lateral
    ventricles (4, 43) in front of the third ventricle's anterior end, the cranium the parcellation's labelled
    intracranial extent (so the index reads high). Widths run between voxel centres."""
    frame, rows, hemispheres = midline.frame, midline.rows, midline.hemispheres
    third, lv_l, lv_r = points[_V3], points[_LV_L], points[_LV_R]
    if not len(third) or not len(lv_l) or not len(lv_r):
        return None, "the parcellation lacks the lateral (4, 43) or third (14) ventricle"
    step = float(voxel_spacing_mm(grid.affine).max())
    front = frame.coordinates(third)[:, 1].max()
    horns_l, horns_r = frame.coordinates(lv_l), frame.coordinates(lv_r)
    horns_l, horns_r = horns_l[horns_l[:, 1] > front], horns_r[horns_r[:, 1] > front]
    if not len(horns_l) or not len(horns_r):
        return None, "no lateral ventricle lies in front of the third ventricle"
    sl, sr = np.floor(horns_l[:, 2] / step).astype(int), np.floor(horns_r[:, 2] / step).astype(int)
    slabs = np.intersect1d(sl, sr)
    if not len(slabs):
        return None, "the frontal horns share no axial slab"
    widths = [horns_r[sr == k, 0].max() - horns_l[sl == k, 0].min() for k in slabs]
    best = int(np.argmax(widths))
    # the cranium's extent across: the rows' outermost intracranial voxels that lie in the same slab (read in
    # the box of the hemispheres' samples within 5 mm of it, whole along the rows)
    near = np.abs(frame.coordinates(hemispheres)[:, 2] - (slabs[best] + 0.5) * step) <= 5 + step
    box = _structure_box(grid, hemispheres[near], rows=rows)
    part = grid.sub(box)
    first, last, present = rows.ends(part.cls != _NONE)
    ends = frame.coordinates(
        np.concatenate([rows.points(part.affine, part.cls.shape, p, present) for p in (first, last)])
    )
    ends = ends[np.floor(ends[:, 2] / step).astype(int) == slabs[best]]
    return float(widths[best] / (ends[:, 0].max() - ends[:, 0].min())), None
