"""Growth beyond measurement noise: the change of a lesion between two scans against its uncertainties, with
analytic answers."""

import math

import numpy as np
import pytest

from brainmets.longitudinal.growth import DAYS_PER_MONTH, Grid, GrowthParameters, Size, assess, describe

ONE_MM = Grid(1.0, 1.0, 1.0)
PARAMS = GrowthParameters()


def test_the_grid_gives_in_plane_spacing_mean_spacing_and_slice_thickness():
    anisotropic = Grid.from_affine(np.diag([0.7, 0.9, 2.5, 1.0]))
    assert anisotropic == Grid(0.9, pytest.approx((0.7 + 0.9 + 2.5) / 3), 2.5)
    permuted = np.zeros((4, 4))
    permuted[:3, :3] = [[0, 0, -0.5], [3.0, 0, 0], [0, -1.2, 0]]  # voxel axes (j, -k, -i) -> x, y, z; k is S-I
    permuted[3, 3] = 1
    assert Grid.from_affine(permuted) == Grid(3.0, pytest.approx(4.7 / 3), 1.2)


def test_clear_growth_is_beyond_noise_with_its_rate_and_uncertainty():
    before, after = Size(1.0, 12.0, 500.0, ONE_MM), Size(2.0, 15.0, 800.0, ONE_MM)
    change = assess(before, after, 30, PARAMS)
    assert change["growth_beyond_noise"] is True and change["not_beyond_noise_because"] == []
    assert change["volume_change_ml"] == 1.0 and change["volume_uncertainty_ml"] == pytest.approx(0.25 + 0.4)
    assert change["axial_diameter_change_mm"] == 3.0 and change["axial_diameter_uncertainty_mm"] == 2.0
    power = DAYS_PER_MONTH / 30
    assert change["growth_percent_per_month"] == pytest.approx(100 * (2**power - 1))
    relative = math.hypot(0.25 / 1.0, 0.4 / 2.0)  # each scan: half a voxel layer over its surface
    assert change["growth_percent_per_month_uncertainty"] == pytest.approx(100 * power * 2**power * relative)
    assert change["volume_doubling_time_days"] == pytest.approx(30.0)
    assert "+3.0 mm (± 2.0)" in describe(change) and "per month" in describe(change)


@pytest.mark.parametrize(
    "before, after, days, because",
    [
        # a 4 mm focus read as 5 mm ten days later: every criterion fails
        (Size(0.034, 4.0, 50.0, ONE_MM), Size(0.065, 5.0, 79.0, ONE_MM), 10, ["below the measurable", "within its uncertainty", "within one voxel layer", "under 21"]),
        # a 15 mm sphere read as 17 mm: two voxels of diameter, 0.80 mL against a 0.81 mL voxel layer
        (Size(1.77, 15.0, 707.0, ONE_MM), Size(2.57, 17.0, 908.0, ONE_MM), 42, ["within its uncertainty", "within one voxel layer"]),
        # shrinking is not growth
        (Size(2.0, 15.0, 800.0, ONE_MM), Size(1.0, 12.0, 500.0, ONE_MM), 60, ["within its uncertainty", "within one voxel layer"]),
    ],
)  # fmt: skip
def test_noise_level_changes_are_not_growth(before, after, days, because):
    change = assess(before, after, days, PARAMS)
    assert change["growth_beyond_noise"] is False
    assert [b for b in because if not any(b in why for why in change["not_beyond_noise_because"])] == []
    assert len(change["not_beyond_noise_because"]) == len(because)


def test_coarser_grids_widen_the_uncertainties():
    coarse = Grid(2.0, 3.0, 5.0)
    change = assess(Size(1.0, 12.0, 500.0, ONE_MM), Size(2.0, 15.0, 800.0, coarse), 30, PARAMS)
    assert change["axial_diameter_uncertainty_mm"] == 4.0  # the coarser grid's in-plane spacing, twice
    assert change["volume_uncertainty_ml"] == pytest.approx(0.25 + 0.5 * 800 * 3.0 / 1000)
    assert change["growth_beyond_noise"] is False  # 3 mm is within 4 mm
    loose = GrowthParameters(diameter_uncertainty_voxels=1, volume_uncertainty_layers=0.5, min_interval_days=7)
    assert assess(Size(1.0, 12.0, 500.0, ONE_MM), Size(2.0, 15.0, 800.0, coarse), 14, loose)["growth_beyond_noise"]


def test_growth_from_nothing_has_no_rate_but_can_be_beyond_noise():
    change = assess(Size(0.0, 0.0, 0.0, ONE_MM), Size(0.9, 12.0, 450.0, ONE_MM), 60, PARAMS)
    assert change["growth_percent_per_month"] is None and change["percent_change"] is None
    assert change["growth_beyond_noise"] is True


def test_the_settings_come_from_the_config_section():
    params = GrowthParameters.from_config({"growth_min_interval_days": 14, "growth_min_diameter_mm": 8, "other": 1})
    assert params == GrowthParameters(min_diameter_mm=8.0, min_interval_days=14.0)
