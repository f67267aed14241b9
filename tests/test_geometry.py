import csv
import math

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainmets.io import load_segmentation
from brainmets.measurement.geometry import (
    AxialGrid,
    Mesh,
    axial_diameters,
    axis_shear_deg,
    longest_chord,
    max_pairwise_distance,
    mesh_volume_and_area,
    surface_mesh,
    voxel_volume_mm3,
)

from .conftest import ball, features

#: Features that describe the object itself (not where it is stored): equal for the same object.
SHAPE_FEATURES = (
    "voxel_count",
    "volume_ml",
    "mesh_volume_ml",
    "surface_area_mm2",
    "sphericity",
    "max_diameter_3d_mm",
    "equivalent_sphere_diameter_mm",
)
AXIAL_FEATURES = ("axial_longest_diameter_mm", "axial_perpendicular_diameter_mm", "axial_slice_count")


def rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = math.radians(degrees)
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def irregular_lesion() -> np.ndarray:
    """A lumpy, non-convex lesion (two overlapping balls and a bump), deterministic."""
    shape = (30, 26, 14)
    mask = ball(shape, (12, 12, 6), 7, (1, 1, 1.5)) | ball(shape, (19, 15, 7), 5, (1, 1, 1.5))
    mask |= ball(shape, (8, 18, 8), 3, (1, 1, 1.5))
    return mask.astype(np.uint8) * 3


ANISO = np.diag([0.9, 1.1, 2.5, 1.0])


def test_max_pairwise_distance_matches_brute_force():
    for n in (400, 5000):  # every pair compared; only the hull's vertices
        pts = np.random.default_rng(0).normal(size=(n, 3)) * (3, 2, 1)
        assert max_pairwise_distance(pts) == pytest.approx(pdist(pts).max(), rel=1e-12)
    flat = np.c_[np.random.default_rng(1).normal(size=(2000, 2)), np.zeros(2000)]  # no hull: all pairs, in blocks
    assert max_pairwise_distance(flat, chunk=300) == pytest.approx(pdist(flat).max(), rel=1e-12)
    assert max_pairwise_distance(np.zeros((1, 3))) == 0.0
    flat = np.c_[np.random.default_rng(1).normal(size=(50, 2)), np.zeros(50)]
    assert max_pairwise_distance(flat) == pytest.approx(pdist(flat).max(), rel=1e-12)


def _polygon(points) -> np.ndarray:
    pts = np.asarray(points, float)
    return np.stack([pts, np.roll(pts, -1, axis=0)], axis=1)


def test_longest_chord_in_a_rectangle():
    rect = _polygon([(0, 0), (20, 0), (20, 10), (0, 10)])
    assert longest_chord(rect, np.array([1.0, 0.0])) == pytest.approx(10.0)
    assert longest_chord(rect, np.array([0.0, 1.0])) == pytest.approx(20.0)
    # perpendicular to the diagonal: lines with direction (-10, 20) span the full height: 10 / sin
    assert longest_chord(rect, np.array([20.0, 10.0])) == pytest.approx(10 / (20 / math.hypot(20, 10)))


def test_longest_chord_stays_inside_a_non_convex_outline():
    # a U: two 2-wide arms, 10 tall, joined by a 2-high base, 10 wide overall
    u_shape = _polygon([(0, 0), (10, 0), (10, 10), (8, 10), (8, 2), (2, 2), (2, 10), (0, 10)])
    assert longest_chord(u_shape, np.array([0.0, 1.0])) == pytest.approx(10.0)  # chords along x: the base
    assert longest_chord(u_shape, np.array([1.0, 0.0])) == pytest.approx(10.0)  # along y: an arm
    # a hole (even-odd rule): a 10-wide, 4-high bar with a 8 x 2 slot; chords across the bar (along y)
    # are 4 long only at the solid ends, and 1 + 1 where they cross the slot
    bar = _polygon([(0, 0), (10, 0), (10, 4), (0, 4)])
    slot = _polygon([(1, 1), (1, 3), (9, 3), (9, 1)])
    assert longest_chord(np.concatenate([bar, slot]), np.array([1.0, 0.0])) == pytest.approx(4.0)
    strips = np.concatenate(
        [_polygon([(0, 0), (10, 0), (10, 1), (0, 1)]), _polygon([(0, 3), (10, 3), (10, 4), (0, 4)])]
    )
    # two separate strips: a chord may not bridge the gap between them
    assert longest_chord(strips, np.array([1.0, 0.0])) == pytest.approx(1.0)


def _chords_by_brute_force(segments: np.ndarray, direction: np.ndarray) -> float:
    """The longest chord, line by line in Python: each vertex offset nudged to either side, every segment
    tested, crossings sorted and paired (even-odd)."""
    d = direction / np.linalg.norm(direction)
    across = np.array([-d[1], d[0]])
    a, b = segments @ d, segments @ across
    nudge = np.ptp(a) * 1e-9
    best = 0.0
    for t in sorted({v + s for v in a.ravel() for s in (-nudge, nudge)}):
        hits = sorted(
            b0 + (t - a0) / (a1 - a0) * (b1 - b0) for (a0, a1), (b0, b1) in zip(a, b) if (a0 - t) * (a1 - t) < 0
        )
        best = max([best, *(hits[i + 1] - hits[i] for i in range(0, len(hits) - 1, 2))])
    return best


def test_longest_chord_of_random_outlines_matches_a_line_by_line_search():
    """Star-shaped outlines (non-convex, with lines crossing them four or more times), some with a hole or a
    second island: the vectorised search finds exactly the chord a plain loop over lines finds."""
    rng = np.random.default_rng(11)
    for trial in range(40):
        k = int(rng.integers(5, 40))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = rng.uniform(2, 10, k)
        outline = [_polygon(np.c_[radii * np.cos(angles), radii * np.sin(angles)])]
        if trial % 3 == 0:  # a hole or an island
            centre, r = rng.uniform(-12, 12, 2), rng.uniform(0.5, 1.5)
            outline.append(_polygon(centre + r * np.c_[np.cos(angles[:5] * 1.3), np.sin(angles[:5] * 1.3)]))
        segments = np.concatenate(outline)
        direction = rng.normal(size=2)
        assert longest_chord(segments, direction) == _chords_by_brute_force(segments, direction), trial


def test_single_voxel_mesh():
    mesh = surface_mesh(np.ones((1, 1, 1), bool), np.diag([2.0, 2.0, 2.0, 1.0]))
    # an octahedron with vertices on the voxel faces: volume 4/3 * (1)^3 * ... at 2 mm voxels
    assert mesh_volume_and_area(mesh)[0] == pytest.approx(4 / 3 * 1.0**3, rel=1e-9)
    assert max_pairwise_distance(mesh.vertices) == pytest.approx(2.0)


def test_mesh_volume_sign_does_not_depend_on_handedness():
    mask = ball((9, 9, 9), (4, 4, 4), 3.2)
    right = surface_mesh(mask, np.eye(4))
    left = surface_mesh(mask, np.diag([-1.0, 1.0, 1.0, 1.0]))
    assert mesh_volume_and_area(right)[0] > 0
    assert mesh_volume_and_area(left) == pytest.approx(mesh_volume_and_area(right), rel=1e-12)


def test_axial_grid_of_common_acquisitions():
    axial = AxialGrid.from_affine(np.diag([0.5, 0.5, 3.0, 1.0]), (20, 20, 10))
    assert (axial.slice_axis, axial.spacing_mm, axial.obliquity_deg) == (2, 3.0, 0.0)
    sagittal = np.array([[0, 0, -1.2, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    grid = AxialGrid.from_affine(sagittal, (10, 20, 20))
    assert (grid.slice_axis, grid.spacing_mm, grid.obliquity_deg) == (1, 1.0, 0.0)
    tilted = np.eye(4)
    tilted[:3, :3] = rotation((1, 0, 0), 20) @ np.diag([1.0, 1.0, 5.0])
    grid = AxialGrid.from_affine(tilted, (20, 20, 10))
    assert grid.slice_axis == 2 and grid.obliquity_deg == pytest.approx(20.0)
    assert grid.spacing_mm == pytest.approx(5 * math.cos(math.radians(20)))


def test_shear_is_measured():
    assert axis_shear_deg(np.diag([1.0, 2.0, 3.0, 1.0])) == pytest.approx(0.0)
    sheared = np.eye(4)
    sheared[0, 1] = math.tan(math.radians(10))
    assert axis_shear_deg(sheared) == pytest.approx(10.0)


def test_axial_diameters_of_a_disc_stack():
    """A cylinder of 5 slices whose outline is a pixel disc: the same section on every slice."""
    disc = ball((31, 31, 1), (15, 15, 0), 12.0)[..., 0]
    mask = np.repeat(disc[..., None], 5, axis=2)
    mesh = surface_mesh(mask, np.diag([0.5, 0.5, 2.0, 1.0]))
    axial = axial_diameters(mesh, AxialGrid.from_affine(np.diag([0.5, 0.5, 2.0, 1.0]), mask.shape))
    assert axial.slice_count == 5
    assert axial.longest_mm == pytest.approx(12.0, abs=0.5)  # 24 px disc at 0.5 mm, outline via edge midpoints
    assert axial.perpendicular_mm == pytest.approx(axial.longest_mm, abs=0.5)


def _segment_distance(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest of the segments (M, 2, 2)."""
    a, b = segments[:, 0], segments[:, 1]
    ab = b - a
    t = np.clip(((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300), 0, 1)
    return np.linalg.norm(points[:, None] - (a + t[..., None] * ab), axis=-1).min(axis=1)


def _flat_ellipsoid(stored_flipped: bool):
    """A flat ellipsoid (semi-axes 12 and 6 mm in the axial plane, turned 30 degrees; 7 mm high) on a
    0.5 x 0.5 x 2 mm grid, as is or stored with x reversed and the axes permuted (the affine saying so)."""
    spacing = np.array([0.5, 0.5, 2.0])
    world = np.indices((60, 60, 9), dtype=float).transpose(1, 2, 3, 0) * spacing - [15.0, 15.0, 8.0]
    turn = np.deg2rad(30)
    u = world[..., 0] * np.cos(turn) + world[..., 1] * np.sin(turn)
    v = -world[..., 0] * np.sin(turn) + world[..., 1] * np.cos(turn)
    mask = (u / 12) ** 2 + (v / 6) ** 2 + (world[..., 2] / 7) ** 2 <= 1
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-15.0, -15.0, -8.0]
    if stored_flipped:  # voxel (x, y, z) stored at (y, z, 59 - x)
        mask = np.ascontiguousarray(np.flip(mask, axis=0).transpose(1, 2, 0))
        affine = affine @ np.array([[0, 0, -1, 59], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])
    return mask, affine


def test_the_calipers_lie_on_the_outline_of_their_plane_whatever_the_storage_order():
    """The longest diameter's ends and the perpendicular's lie on the section outline of the plane reported,
    are as far apart as the lengths reported, and are perpendicular; the same voxels stored flipped and
    permuted give the same ends (ties broken in world order, not storage order)."""
    from brainmets.measurement.geometry import plane_sections

    ends = []
    for flipped in (False, True):
        mask, affine = _flat_ellipsoid(flipped)
        mesh = surface_mesh(mask, affine)
        grid = AxialGrid.from_affine(affine, mask.shape)
        axial = axial_diameters(mesh, grid)
        longest, perpendicular = axial.longest_ends, axial.perpendicular_ends
        assert np.linalg.norm(longest[1] - longest[0]) == pytest.approx(axial.longest_mm, rel=1e-9)
        assert np.linalg.norm(perpendicular[1] - perpendicular[0]) == pytest.approx(axial.perpendicular_mm, rel=1e-9)
        assert axial.longest_mm == pytest.approx(24.0, abs=1) and axial.perpendicular_mm == pytest.approx(12.0, abs=1)
        assert abs((longest[1] - longest[0]) @ (perpendicular[1] - perpendicular[0])) < 1e-6
        planes, bounds, segments = plane_sections(mesh, grid.origin_z_mm, grid.spacing_mm, 1e-6)
        k = int(np.argmin(np.abs(grid.origin_z_mm + planes * grid.spacing_mm - axial.plane_z_mm)))
        outline = segments[bounds[k] : bounds[k + 1]]
        assert np.all(_segment_distance(np.vstack([longest, perpendicular]), outline) < 1e-9)
        ends.append(np.vstack([longest, perpendicular]))
    assert np.allclose(ends[0], ends[1], atol=1e-6)


def _same(a: dict, b: dict, keys, rel=1e-9):
    for key in keys:
        assert b[key] == pytest.approx(a[key], rel=rel, abs=1e-9), key


OBLIQUE_ANISO = np.eye(4)
OBLIQUE_ANISO[:3, :3] = rotation((2, -1, 1), 35) @ np.diag([0.9, 1.1, 2.5])
OBLIQUE_ANISO[:3, 3] = (3.7, -12.2, 40.9)


@pytest.mark.parametrize("grid", [ANISO, OBLIQUE_ANISO], ids=["axial", "oblique"])
@pytest.mark.parametrize(
    "flip_axes, order",
    [((0,), (0, 1, 2)), ((1, 2), (0, 1, 2)), ((), (2, 0, 1)), ((0, 2), (1, 2, 0)), ((0, 1, 2), (2, 1, 0))],
)
def test_flipping_and_permuting_axes_changes_nothing(flip_axes, order, grid):
    """The same object stored with flipped / permuted voxel axes (affine adjusted): identical features, the
    axial ones included on an oblique anisotropic grid (its axial planes are the patient's, not the storage's)."""
    labels = irregular_lesion()
    base = features(labels, grid).lesions[0]
    data = np.flip(labels, axis=flip_axes) if flip_axes else labels
    affine = grid.copy()
    for axis in flip_axes:  # voxel i -> n-1-i
        flip = np.eye(4)
        flip[axis, axis], flip[axis, 3] = -1, labels.shape[axis] - 1
        affine = affine @ flip
    data = data.transpose(order)
    perm = np.eye(4)
    perm[:3, :3] = np.eye(3)[:, order]
    affine = affine @ perm
    other = features(data, affine).lesions[0]
    _same(base, other, SHAPE_FEATURES + AXIAL_FEATURES + ("axial_plane_z_mm", "centroid_x_mm", "centroid_y_mm"))


@pytest.mark.parametrize("axis, degrees", [((0, 0, 1), 33.0), ((1, 2, 3), 47.0), ((1, 0, 0), 90.0)])
def test_rotating_the_grid_moves_the_object_rigidly(axis, degrees):
    """Same voxels, rotated affine: the object is rotated, so shape features are unchanged (to 1e-9);
    axial features are unchanged for rotations about the superior axis only."""
    labels = irregular_lesion()
    base = features(labels, ANISO).lesions[0]
    rotated = ANISO.copy()
    rotated[:3, :3] = rotation(axis, degrees) @ ANISO[:3, :3]
    other = features(labels, rotated).lesions[0]
    _same(base, other, SHAPE_FEATURES)
    if axis == (0, 0, 1):
        _same(base, other, AXIAL_FEATURES)
    centroid = lambda r: np.array([r["centroid_x_mm"], r["centroid_y_mm"], r["centroid_z_mm"]])  # noqa: E731
    assert np.allclose(centroid(other), rotation(axis, degrees) @ centroid(base))


@pytest.mark.parametrize(
    "linear",
    [
        np.eye(3),
        rotation((1, 2, 0.5), 25) @ np.eye(3),
        rotation((0, 1, 0), 90) @ np.eye(3),  # sagittal storage
        rotation((2, -1, 1), 60) @ np.diag([0.8, 0.8, 1.6]),
    ],
    ids=["axial", "oblique-25", "sagittal", "oblique-60-aniso"],
)
def test_the_same_ellipsoid_sampled_on_any_grid(linear):
    """A world-fixed ellipsoid (semi-axes 15, 9, 6 mm along x, y, z) voxelised on rotated or anisotropic
    grids. Tolerances: volume 3 %, 3D diameter, axial diameters and the planes' span 1.5 voxel."""
    shape = (56, 56, 56)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ ((np.array(shape) - 1) / 2) + 0.3  # not centred on a voxel
    ijk = np.indices(shape).reshape(3, -1).T
    world = ijk @ linear.T + affine[:3, 3]
    inside = (((world - 0.3) / (15, 9, 6)) ** 2).sum(axis=1) <= 1
    lesion = features(inside.reshape(shape).astype(np.uint8) * 3, affine).lesions[0]
    voxel = float(np.linalg.norm(linear, axis=0).max())
    assert lesion["volume_ml"] * 1000 == pytest.approx(4 / 3 * math.pi * 15 * 9 * 6, rel=0.03)
    assert lesion["max_diameter_3d_mm"] == pytest.approx(30, abs=1.5 * voxel)
    assert lesion["axial_longest_diameter_mm"] == pytest.approx(30, abs=1.5 * voxel)
    assert lesion["axial_perpendicular_diameter_mm"] == pytest.approx(18, abs=1.5 * voxel)
    spacing = AxialGrid.from_affine(affine, shape).spacing_mm
    assert abs(lesion["axial_slice_count"] * spacing - 12) <= 1.5 * voxel  # the planes span the 12 mm height
    assert abs(lesion["axial_slice_count"] - lesion["extent_z_mm"] / spacing) <= 1  # every plane cutting the surface


# ---- independent references (../shared) ---------------------------------------------------------


@pytest.mark.shared
def test_ibsi_digital_phantom(shared):
    """IBSI 1 digital phantom morphology reference values (tolerances from IBSI)."""
    lm = load_segmentation(shared / "ibsi/ibsi_1_digital_phantom/nifti/mask/mask.nii.gz")
    mask = lm.labels > 0
    mesh = surface_mesh(mask, lm.affine)
    volume, area = mesh_volume_and_area(mesh)
    assert volume == pytest.approx(556, abs=4)
    assert mask.sum() * voxel_volume_mm3(lm.affine) == pytest.approx(592, abs=4)
    assert max_pairwise_distance(mesh.vertices) == pytest.approx(13.1, abs=0.1)
    assert area == pytest.approx(388, abs=3)


def _pyradiomics_baseline(shared) -> dict:
    with open(shared / "real/pyradiomics/baseline_shape.csv", newline="") as fh:
        return {row["featureName"]: row for row in csv.DictReader(fh)}


@pytest.mark.shared
@pytest.mark.parametrize("case", ["brain1", "brain2"])
def test_pyradiomics_baseline(shared, case):
    """PyRadiomics' own regression values for its brain masks (its ROI = the whole label, all components)."""
    baseline = _pyradiomics_baseline(shared)
    lm = load_segmentation(shared / f"real/pyradiomics/{case}_label.nrrd")
    mask = lm.labels > 0
    mesh = surface_mesh(mask, lm.affine)
    ref = lambda name: float(baseline[f"original_shape_{name}"][case])  # noqa: E731
    assert mask.sum() * voxel_volume_mm3(lm.affine) == pytest.approx(ref("VoxelVolume"), rel=0.005)
    assert mesh_volume_and_area(mesh)[0] == pytest.approx(ref("MeshVolume"), rel=0.005)
    assert max_pairwise_distance(mesh.vertices) == pytest.approx(ref("Maximum3DDiameter"), rel=0.005)


@pytest.mark.shared
def test_brain1_axial_diameter_uses_acquired_slices_only(shared):
    """PyRadiomics' Maximum2DDiameterSlice (53.59 mm) mixes two slices' outlines on half-way planes; the
    RANO-BM longest diameter within an acquired slice is 47.97 mm (mesh vertices on slice planes,
    measured independently in ../shared/design/feature-definitions.md section 2.3)."""
    lm = load_segmentation(shared / "real/pyradiomics/brain1_label.nrrd")
    axial = axial_diameters(surface_mesh(lm.labels > 0, lm.affine), AxialGrid.from_affine(lm.affine, lm.shape))
    assert axial.longest_mm == pytest.approx(47.97, abs=0.01)
    assert axial.slice_count == int(np.any(lm.labels > 0, axis=(0, 1)).sum())


def test_mesh_class_is_plain_data():
    mesh = Mesh(vertices=np.zeros((3, 3)), faces=np.array([[0, 1, 2]]))
    assert mesh.faces.shape == (1, 3)
