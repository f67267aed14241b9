import numpy as np
import pytest
from scipy.spatial.distance import cdist

from brainmets.measurement.lesions import assign_edema, find_lesions

from .conftest import ball, features


def _find(core, affine=None, **kwargs):
    return find_lesions(core, np.zeros_like(core), np.eye(4) if affine is None else affine, **kwargs)


def _two_cubes(touch: str) -> np.ndarray:
    core = np.zeros((8, 8, 8), bool)
    core[1:3, 1:3, 1:3] = True
    if touch == "corner":
        core[3:5, 3:5, 3:5] = True
    else:  # share an edge
        core[3:5, 3:5, 1:3] = True
    return core


@pytest.mark.parametrize(
    "touch, connectivity, count",
    [("corner", 26, 1), ("corner", 18, 2), ("corner", 6, 2), ("edge", 26, 1), ("edge", 18, 1), ("edge", 6, 2)],
)
def test_connectivity(touch, connectivity, count):
    assert _find(_two_cubes(touch), connectivity=connectivity).count == count


def test_small_components_are_discarded_and_counted():
    core = ball((30, 30, 30), (10, 10, 10), 4)
    core[25, 25, 25] = True
    lesions = _find(core, np.diag([2.0, 2.0, 2.0, 1.0]), min_volume_mm3=9.0)
    assert lesions.count == 1 and lesions.discarded_count == 1 and lesions.discarded_voxels == 1
    assert _find(core, np.diag([2.0, 2.0, 2.0, 1.0]), min_volume_mm3=8.0).count == 2  # 1 voxel = 8 mm3


def test_merging_by_distance_in_mm():
    core = np.zeros((30, 10, 10), bool)
    core[2:6, 3:7, 3:7] = True
    core[9:13, 3:7, 3:7] = True  # voxel centres 4 voxels apart (3 empty voxels between)
    affine = np.diag([0.5, 1.0, 1.0, 1.0])  # ... = 2.0 mm
    assert _find(core, affine, merge_distance_mm=1.9).count == 2
    merged = _find(core, affine, merge_distance_mm=2.0)
    assert merged.count == 1 and merged.members == [[1, 2]]
    result = features(core.astype(np.uint8) * 3, affine, merge_distance_mm=2.0)
    assert result.lesions[0]["core_components"] == 2
    assert result.lesions[0]["voxel_count"] == 2 * 64


def test_merging_is_transitive_and_filters_after_merging():
    core = np.zeros((40, 5, 5), bool)
    for start in (2, 6, 10):
        core[start, 2, 2] = True  # three single voxels in a chain, 4 mm apart
    lesions = _find(core, min_volume_mm3=3, merge_distance_mm=4)
    assert lesions.count == 1 and lesions.discarded_count == 0


def test_ids_are_ordered_by_volume_then_position_independent_of_storage():
    labels = np.zeros((40, 20, 20), np.uint8)
    labels |= ball(labels.shape, (8, 10, 10), 3).astype(np.uint8) * 3  # small
    labels |= ball(labels.shape, (30, 10, 10), 5).astype(np.uint8) * 3  # large
    labels |= ball(labels.shape, (19, 10, 10), 3).astype(np.uint8) * 3  # small, same size
    rows = features(labels).lesions
    assert [r["voxel_count"] for r in rows] == sorted((r["voxel_count"] for r in rows), reverse=True)
    assert rows[0]["centroid_x_mm"] == 30
    assert [rows[1]["centroid_x_mm"], rows[2]["centroid_x_mm"]] == [8, 19]  # tie: smaller x first
    flipped = np.flip(labels, axis=0)
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])
    affine[0, 3] = labels.shape[0] - 1
    rows_flipped = features(flipped, affine).lesions
    assert [r["centroid_x_mm"] for r in rows_flipped] == [30, 8, 19]


def _nearest_reference(instances: np.ndarray, edema: np.ndarray, spacing) -> np.ndarray:
    """Brute force: each edema voxel to the lesion with the nearest core voxel (lowest id on ties)."""
    owner = np.zeros(instances.shape, np.int32)
    e_idx = np.argwhere(edema) * spacing
    ids = sorted(set(np.unique(instances)) - {0})
    dist = np.stack([cdist(e_idx, np.argwhere(instances == i) * spacing).min(axis=1) for i in ids])
    owner[edema] = np.asarray(ids)[np.argmin(dist, axis=0)]
    return owner


def test_shared_edema_goes_to_the_nearest_core():
    shape = (40, 24, 16)
    spacing = np.array([1.0, 0.8, 1.5])
    core = ball(shape, (10, 12, 8), 4, spacing) | ball(shape, (27, 12, 8), 2.5, spacing)
    edema = (ball(shape, (10, 12, 8), 10, spacing) | ball(shape, (27, 12, 8), 8, spacing)) & ~core
    affine = np.diag([*spacing, 1.0])
    lesions = find_lesions(core, edema, affine)
    assignment = assign_edema(lesions, edema, affine)
    assert lesions.count == 2 and lesions.region_lesions == {1: [1, 2]} and not assignment.edema_only
    expected = _nearest_reference(lesions.instances(), edema, spacing)
    assert assignment.lesion_voxels.tolist() == np.bincount(expected[edema], minlength=3).tolist()
    assert 0 < assignment.lesion_voxels[2] < assignment.lesion_voxels[1]


def test_equidistant_edema_is_resolved_the_same_in_any_storage_order():
    shape = (21, 9, 9)
    core = np.zeros(shape, bool)
    core[4, 4, 4] = core[16, 4, 4] = True
    edema = np.zeros(shape, bool)
    edema[5:16, 4, 4] = True  # voxel 10 is 6 mm from both cores
    labels = np.where(core, 3, np.where(edema, 2, 0)).astype(np.uint8)
    a = features(labels).lesions
    assert sorted(round(r["edema_volume_ml"] * 1000) for r in a) == [5, 6]  # 5 each + the tie voxel
    for flip_axes, order in (((0,), (0, 1, 2)), ((0, 2), (2, 0, 1)), ((), (1, 2, 0))):
        data = np.flip(labels, axis=flip_axes) if flip_axes else labels
        affine = np.eye(4)
        for axis in flip_axes:
            affine[axis, axis], affine[axis, 3] = -1.0, shape[axis] - 1
        perm = np.eye(4)
        perm[:3, :3] = np.eye(3)[:, order]
        b = features(data.transpose(order), affine @ perm).lesions
        assert [r["centroid_x_mm"] for r in b] == [r["centroid_x_mm"] for r in a]
        assert [r["edema_volume_ml"] for r in b] == [r["edema_volume_ml"] for r in a]


def test_edema_only_components_are_not_lesions():
    shape = (40, 20, 20)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (10, 10, 10), 6)] = 2
    labels[ball(shape, (10, 10, 10), 2)] = 3
    labels[ball(shape, (30, 10, 10), 4)] = 2  # edema with no core
    result = features(labels)
    assert result.study["lesion_count"] == 1
    assert result.study["edema_only_component_count"] == 1
    only = result.document["edema_only_components"][0]
    assert only["voxel_count"] == int(ball(shape, (30, 10, 10), 4).sum())
    assert only["centroid_x_mm"] == pytest.approx(30)
    assert result.study["total_edema_volume_ml"] == pytest.approx(
        result.lesions[0]["edema_volume_ml"] + result.study["edema_only_volume_ml"]
    )


def test_edema_around_a_discarded_speck_is_edema_only():
    shape = (20, 20, 20)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (10, 10, 10), 5)] = 2
    labels[10, 10, 10] = 3  # a 1 mm3 core speck, below the minimum lesion volume
    result = features(labels, min_lesion_volume_mm3=20)
    assert result.study["lesion_count"] == 0
    assert result.study["discarded_core_component_count"] == 1
    assert result.study["edema_only_component_count"] == 1
    assert result.document["edema_only_components"][0]["voxel_count"] == int(ball(shape, (10, 10, 10), 5).sum()) - 1


def test_small_edema_only_components_are_discarded_and_counted():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:4, 2:4, 2:4] = 2
    result = features(labels, min_edema_component_volume_mm3=9)
    assert result.study["edema_only_component_count"] == 0
    assert result.study["discarded_edema_component_count"] == 1
    assert result.study["discarded_edema_volume_ml"] == pytest.approx(0.008)


def test_discarded_specks_do_not_disturb_shared_edema_or_the_instance_map():
    shape = (40, 20, 20)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (20, 10, 10), 12)] = 2
    labels[ball(shape, (12, 10, 10), 3)] = 3
    labels[ball(shape, (28, 10, 10), 2)] = 3
    labels[20, 10, 16] = 3  # a speck inside the shared edema, below the minimum volume
    result = features(labels, min_lesion_volume_mm3=5)
    assert result.study["lesion_count"] == 2 and result.study["discarded_core_component_count"] == 1
    instances = result.instances
    assert instances[20, 10, 16] == 0
    assert sorted(np.unique(instances).tolist()) == [0, 1, 2]
    edema_total = int((labels == 2).sum())
    assert sum(r["edema_volume_ml"] for r in result.lesions) * 1000 == pytest.approx(edema_total)


@pytest.mark.slow
def test_label_arrays_are_two_bytes_a_voxel_and_widen_past_65535_components():
    """Regions and core components take uint16 (half cc3d's uint32) while they fit; 72,000 single-voxel
    lesions (the 65,536th overflows uint16) are all kept, numbered and mapped."""
    core = np.zeros((20, 20, 20), bool)
    core[2:6, 2:6, 2:6] = core[10:14, 10:14, 10:14] = True
    few = find_lesions(core, np.zeros_like(core), np.eye(4))
    assert few.regions.dtype == few.components.dtype == np.uint16 and few.count == 2
    many = np.zeros((120, 120, 40), bool)
    many[::2, ::2, ::2] = True
    lesions = find_lesions(many, np.zeros_like(many), np.eye(4), connectivity=26)
    assert lesions.count == lesions.component_count == 72000
    instances = lesions.instances()
    assert instances.max() == 72000 and np.array_equal(np.sort(instances[many]), np.arange(1, 72001))
