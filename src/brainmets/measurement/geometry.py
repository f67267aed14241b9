"""Volumes, surfaces and diameters in millimetres, from a mask crop and the image's full affine.

Everything here is computed in world coordinates: the surface mesh is built in voxel-index space with
marching cubes and mapped through the 4x4 affine, so anisotropic, oblique, flipped and even sheared grids
give physically correct lengths, areas and volumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import cdist, pdist
from skimage.measure import marching_cubes

#: Offset of each axial cutting plane from its nominal position, as a fraction of the plane spacing, so that
#: planes through voxel centres never contain mesh vertices exactly (see ``axial_diameters``).
PLANE_OFFSET_FRACTION = 1e-6
#: Directions at which section widths are sampled to bound the longest diameter (see ``axial_diameters``).
WIDTH_DIRECTIONS = 16
#: Calipers of equal length (within this fraction) are ties, broken by world position to this many decimals
#: (mm), so that the storage order of the voxels never picks among them.
TIE_TOLERANCE = 1e-9
TIE_DECIMALS = 6


def voxel_volume_mm3(affine: np.ndarray) -> float:
    """Volume of one voxel: |det| of the affine's linear part."""
    return float(abs(np.linalg.det(affine[:3, :3])))


def voxel_spacing_mm(affine: np.ndarray) -> np.ndarray:
    """Length in mm of one step along each voxel axis (column norms of the linear part)."""
    return np.linalg.norm(affine[:3, :3], axis=0)


def axis_shear_deg(affine: np.ndarray) -> float:
    """Largest deviation from 90 degrees between two voxel axes (0 for every scanner-made grid)."""
    cols = affine[:3, :3] / voxel_spacing_mm(affine)
    cosines = np.abs(cols.T @ cols)[np.triu_indices(3, 1)]
    return float(np.degrees(np.arcsin(np.clip(cosines.max(), 0.0, 1.0))))


def apply_affine(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """World (RAS mm) coordinates of voxel-index points, shape (..., 3)."""
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def crop_affine(affine: np.ndarray, origin) -> np.ndarray:
    """The affine of a crop whose first voxel is voxel ``origin`` of the image."""
    shifted = affine.copy()
    shifted[:3, 3] = apply_affine(affine, np.asarray(origin, dtype=float))
    return shifted


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of a 3D mask's true voxels (None when there are none): three projections, two passes."""
    across = mask.any(axis=0)
    box = []
    for along in (mask.any(axis=(1, 2)), across.any(axis=1), across.any(axis=0)):
        idx = np.flatnonzero(along)
        if not idx.size:
            return None
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)


@dataclass(frozen=True)
class AxialGrid:
    """The patient-axial cutting planes of an image: z = origin_z + n * spacing (RAS mm)."""

    origin_z_mm: float
    spacing_mm: float
    obliquity_deg: float  # angle between the voxel axis closest to superior and the superior direction
    slice_axis: int

    @classmethod
    def from_affine(cls, affine: np.ndarray, shape: tuple[int, ...]) -> AxialGrid:
        """Planes through the voxel centres along the voxel axis that points most nearly superior, anchored at
        the grid's centre: a point no storage order moves, so the same voxels stored with permuted, reversed
        or mirrored axes give the same planes (on an axial grid: the acquired slices)."""
        lin = affine[:3, :3]
        lengths = np.linalg.norm(lin, axis=0)
        cos_to_superior = np.abs(lin[2]) / lengths

        def preference(a: int) -> tuple:  # ties (a 45-degree grid) broken by what the voxels are, not their order
            direction = lin[:, a] / lengths[a] * (1 if lin[2, a] >= 0 else -1)
            return (-round(cos_to_superior[a], 12), round(abs(lin[2, a]), 9), shape[a], *np.round(direction, 9))

        axis = min(range(3), key=preference)
        spacing = float(abs(lin[2, axis]))
        centre = apply_affine(affine, (np.asarray(shape[:3], dtype=float) - 1) / 2)
        return cls(
            origin_z_mm=float(centre[2] - (shape[axis] - 1) / 2 * spacing),
            spacing_mm=spacing,
            obliquity_deg=float(np.degrees(np.arccos(np.clip(cos_to_superior[axis], 0.0, 1.0)))),
            slice_axis=axis,
        )


@dataclass(frozen=True)
class Mesh:
    """A closed triangle surface in world coordinates (mm)."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int


def surface_mesh(mask: np.ndarray, affine: np.ndarray, offset: tuple[int, int, int] = (0, 0, 0)) -> Mesh:
    """Marching-cubes surface (level 0.5) of a boolean crop whose first voxel is at index ``offset``.

    The crop is padded by one empty voxel so the surface is closed even where the object touches the edge.
    """
    padded = np.pad(mask.astype(np.float32, copy=False), 1)
    verts, faces, _, _ = marching_cubes(padded, level=0.5, method="lewiner")
    ijk = verts.astype(np.float64) + (np.asarray(offset, dtype=np.float64) - 1.0)
    return Mesh(vertices=apply_affine(affine, ijk), faces=faces)


def mesh_volume_and_area(mesh: Mesh) -> tuple[float, float]:
    """Enclosed volume (divergence theorem: signed tetrahedra, IBSI RNU0) and surface area (IBSI C0JK).

    With n = (b - a) x (c - a) for each triangle (a, b, c): area = sum |n| / 2, volume = |sum a . n| / 6.
    """
    v = mesh.vertices - mesh.vertices.mean(axis=0)
    a, b, c = v[mesh.faces[:, 0]], v[mesh.faces[:, 1]], v[mesh.faces[:, 2]]
    normals = np.cross(b - a, c - a)
    volume = abs(float(np.einsum("ij,ij->", a, normals))) / 6.0
    area = float(np.sqrt(np.einsum("ij,ij->i", normals, normals)).sum()) / 2.0
    return volume, area


#: Up to this many points every pair is compared (quicker than building their convex hull).
ALL_PAIRS_MAX_POINTS = 512


def max_pairwise_distance(points: np.ndarray, chunk: int = 1024) -> float:
    """Largest distance between any two points; only convex-hull vertices can realise it, so beyond
    ``ALL_PAIRS_MAX_POINTS`` points only those are compared."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return 0.0
    if len(points) <= ALL_PAIRS_MAX_POINTS:
        return float(np.sqrt(pdist(points, "sqeuclidean").max()))
    try:
        candidates = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # flat or collinear sets: no hull, compare them all
        candidates = np.unique(points, axis=0)
    best = 0.0
    for start in range(0, len(candidates), chunk):
        block = cdist(candidates[start : start + chunk], candidates[start:], "sqeuclidean")
        best = max(best, float(block.max()))
    return float(np.sqrt(best))


def _farthest_pair(points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The farthest pair among 2D points, with its length (hull first only when there are many points). Ties
    (a disc, a square) go to the pair that comes first in world coordinates, each pair's ends in x-then-y order,
    so the same outline stored in any voxel order gives the same caliper."""
    candidates = points
    if len(points) > 64:
        try:
            candidates = points[ConvexHull(points).vertices]
        except (QhullError, ValueError):
            candidates = np.unique(points, axis=0)
    if len(candidates) < 2:
        return 0.0, candidates[0], candidates[0]
    d2 = cdist(candidates, candidates, "sqeuclidean")
    tied = zip(*np.nonzero(np.triu(d2 >= d2.max() * (1 - TIE_TOLERANCE), 1)))
    p, q = min((sorted((candidates[i], candidates[j]), key=_world_key) for i, j in tied), key=_pair_key)
    return float(np.sqrt(d2.max())), p, q  # the ends of a tie lie within the tolerance of it


def _world_key(point: np.ndarray) -> tuple[float, ...]:
    """A point's place in x-then-y order, blind to the last bits (which the storage order can change)."""
    return tuple(np.round(point, TIE_DECIMALS) + 0.0)


def _pair_key(pair) -> tuple[float, ...]:
    return (*_world_key(pair[0]), *_world_key(pair[1]))


def plane_sections(
    mesh: Mesh, origin_z: float, spacing: float, offset: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections of the mesh with the planes z = origin_z + (n + offset) * spacing.

    Returns ``(planes, bounds, segments)``: the numbers n of the planes that cut the mesh (ascending), and the
    segments in (x, y), shape (M, 2, 2), grouped by plane: plane ``planes[k]`` holds
    ``segments[bounds[k]:bounds[k + 1]]``. A vertex exactly on a plane counts as above it, so every crossing
    triangle gives one segment.
    """
    tz = mesh.vertices[:, 2][mesh.faces]  # (F, 3)
    # plane n cuts triangle t when zmin < z_n <= zmax
    lo = np.floor((tz.min(axis=1) - origin_z) / spacing - offset).astype(np.int64) + 1
    hi = np.floor((tz.max(axis=1) - origin_z) / spacing - offset).astype(np.int64)
    count = np.maximum(hi - lo + 1, 0)
    t_idx = np.repeat(np.arange(len(tz)), count)
    if t_idx.size == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros((0, 2, 2))
    starts = np.cumsum(count) - count
    plane = lo[t_idx] + (np.arange(t_idx.size) - starts[t_idx])
    z = origin_z + (plane + offset) * spacing
    t3, z3 = mesh.vertices[mesh.faces[t_idx]], tz[t_idx]  # only the triangles that cross a plane
    above = z3 >= z[:, None]
    points, crossing = [], []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        cross = above[:, a] != above[:, b]
        dz = np.where(cross, z3[:, b] - z3[:, a], 1.0)
        t = np.where(cross, (z - z3[:, a]) / dz, 0.0)
        points.append(t3[:, a, :2] + t[:, None] * (t3[:, b, :2] - t3[:, a, :2]))
        crossing.append(cross)
    segments = np.stack(points, axis=1)[np.stack(crossing, axis=1)].reshape(-1, 2, 2)
    order = np.argsort(plane, kind="stable")
    plane, segments = plane[order], segments[order]
    first = np.flatnonzero(np.r_[True, np.diff(plane) != 0])
    return plane[first], np.r_[first, len(plane)], segments


def longest_chord(segments: np.ndarray, direction: np.ndarray) -> float:
    """Length of :func:`longest_chord_ends`' chord."""
    return longest_chord_ends(segments, direction)[0]


def longest_chord_ends(segments: np.ndarray, direction: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Longest segment perpendicular to ``direction`` lying inside the closed polygons made of ``segments``
    (even-odd rule), e.g. the RANO-BM perpendicular diameter when ``direction`` is the longest diameter: its
    length and its ends, shape (2, 2) (None when there is no chord); ties go to the chord first in world order.

    The inside length along a line is piecewise linear in the line's offset, so its maximum is reached next
    to a vertex: the offsets tried are every vertex offset, nudged to either side. Each segment is crossed
    by the lines whose offsets lie strictly within its span (a range of the sorted offsets), so only the
    crossings that exist are computed; each line's crossings, sorted, pair up into its chords.
    """
    d = direction / np.linalg.norm(direction)
    across = np.array([-d[1], d[0]])  # the chords run along this axis
    a = segments @ d  # (M, 2) offset of each endpoint's line along ``direction``
    b = segments @ across  # (M, 2) position along the chord
    span = float(np.ptp(a)) if a.size else 0.0
    if span == 0.0:
        return 0.0, None
    nudge = span * 1e-9
    verts = np.unique(a)
    offsets = np.concatenate([verts - nudge, verts + nudge])
    offsets = np.sort(offsets[(offsets > a.min()) & (offsets < a.max())])
    a0, a1, b0, b1 = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    first = np.searchsorted(offsets, np.minimum(a0, a1), side="right")  # lines strictly inside each span
    stop = np.searchsorted(offsets, np.maximum(a0, a1), side="left")
    count = np.maximum(stop - first, 0)
    if not count.any():
        return 0.0, None
    seg = np.repeat(np.arange(len(a)), count)  # one row per (segment, line) crossing
    line = first[seg] + (np.arange(seg.size) - (np.cumsum(count) - count)[seg])
    t = offsets[line]
    denom = np.where(a1 != a0, a1 - a0, 1.0)[seg]
    pos = b0[seg] + (t - a0[seg]) / denom * (b1[seg] - b0[seg])
    order = np.lexsort((pos, line))
    line, pos = line[order], pos[order]
    starts = np.flatnonzero(np.r_[True, line[1:] != line[:-1]])
    crossings = np.diff(np.r_[starts, line.size])  # per line
    rank = np.arange(line.size) - np.repeat(starts, crossings)
    opens = (rank % 2 == 0) & (rank + 1 < np.repeat(crossings // 2 * 2, crossings))  # even-odd pairs
    if not opens.any():
        return 0.0, None
    pick = opens[:-1]
    lengths = pos[1:][pick] - pos[:-1][pick]
    tied = lengths >= lengths.max() * (1 - TIE_TOLERANCE)
    at = offsets[line[:-1][pick][tied]][:, None] * d
    ends = np.stack([at + pos[:-1][pick][tied][:, None] * across, at + pos[1:][pick][tied][:, None] * across], 1)
    best = min(range(len(ends)), key=lambda k: _pair_key(sorted(ends[k], key=_world_key)))
    return float(lengths.max()), np.array(sorted(ends[best], key=_world_key))  # ends within the tolerance


@dataclass(frozen=True)
class AxialDiameters:
    """RANO-BM style bidimensional measurement in the patient's axial plane."""

    longest_mm: float
    perpendicular_mm: float
    slice_count: int
    plane_z_mm: float | None
    #: the calipers' ends in the plane, world (x, y) mm, shape (2, 2): where a reader would put them
    longest_ends: np.ndarray | None = None
    perpendicular_ends: np.ndarray | None = None


def axial_diameters(mesh: Mesh, grid: AxialGrid) -> AxialDiameters:
    """Longest diameter within any patient-axial plane, the longest chord perpendicular to it in that plane,
    and the number of planes that cut the lesion.

    Planes are z = origin + n * spacing (+ a tiny offset): for an axial acquisition they run through the
    acquired slices' voxel centres, so the sections are exactly the in-slice contours (marching squares at
    0.5) of the slices that hold the lesion; for oblique or sagittal acquisitions they are axial reformats
    of the same surface, taken at the image's resolution along z.
    """
    planes, bounds, segments = plane_sections(mesh, grid.origin_z_mm, grid.spacing_mm, PLANE_OFFSET_FRACTION)
    if not len(planes):
        return AxialDiameters(0.0, 0.0, 0, None)
    # The longest diameter is the largest width over all directions; widths sampled every 180/16 degrees
    # bound it from below (their maximum) and above (that maximum / cos(180/32 degrees)). Measure sections
    # in decreasing order of the upper bound; stop when none left can reach (or tie) the longest so far.
    angles = np.arange(WIDTH_DIRECTIONS) * np.pi / WIDTH_DIRECTIONS
    directions = np.stack([np.cos(angles), np.sin(angles)])
    projections = segments.reshape(-1, 2) @ directions  # every endpoint, every direction
    first = 2 * bounds[:-1]
    widths = (np.maximum.reduceat(projections, first) - np.minimum.reduceat(projections, first)).max(axis=1)
    upper = widths / np.cos(np.pi / (2 * WIDTH_DIRECTIONS))
    results, longest = [], float(widths.max())
    for k in np.argsort(upper)[::-1]:
        if upper[k] < longest * (1 - 1e-9):
            break
        zc, seg = grid.origin_z_mm + planes[k] * grid.spacing_mm, segments[bounds[k] : bounds[k + 1]]
        length, p, q = _farthest_pair(seg.reshape(-1, 2))
        longest = max(longest, length)
        results.append((length, zc, seg, np.array([p, q])))
    best_perp, best = -1.0, None
    for length, zc, seg, ends in sorted(results, key=lambda r: r[1]):
        if length >= longest * (1 - TIE_TOLERANCE) and length > 0:
            perp, perp_ends = longest_chord_ends(seg, ends[1] - ends[0])
            if perp > best_perp:
                best_perp, best = perp, (zc, ends, perp_ends)
    return AxialDiameters(
        longest_mm=float(longest),
        perpendicular_mm=float(max(best_perp, 0.0)),
        slice_count=len(planes),
        plane_z_mm=None if best is None else float(best[0]),
        longest_ends=None if best is None else best[1],
        perpendicular_ends=None if best is None else best[2],
    )
