"""A lesion's change between two scans, judged against measurement noise.

A segmentation's boundary is uncertain by about a voxel, so a small lesion's "growth" between two scans is
often noise: a 4 mm focus read as 5 mm ten days later is not a lesion growing by hundreds of percent a month. Growth counts
as real (``growth_beyond_noise``) only when the lesion is measurable at the later scan (axial longest diameter
>= ``min_diameter_mm``, RANO-BM's 10 mm), its axial longest diameter grew by more than its uncertainty
(``diameter_uncertainty_voxels`` x the larger in-plane voxel spacing of the two grids), its volume grew by
more than a layer of voxels over its surface (``volume_uncertainty_layers`` x surface area x mean voxel
spacing, half from each scan), and the scans are at least ``min_interval_days`` apart. Each scan's volume
uncertainty (half a voxel layer of its surface) is propagated to the growth rate to first order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class GrowthParameters:
    """The config's ``followup`` noise settings (each an assumption, stated in the follow-up's output)."""

    min_diameter_mm: float = 10.0
    diameter_uncertainty_voxels: float = 2.0
    volume_uncertainty_layers: float = 1.0
    min_interval_days: float = 21.0

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> GrowthParameters:
        names = {f"growth_{name}": name for name in cls.__dataclass_fields__}
        return cls(**{names[k]: float(v) for k, v in section.items() if k in names})


@dataclass(frozen=True)
class Grid:
    """What a scan's voxel grid says about measurement noise."""

    in_plane_spacing_mm: float  # the larger spacing of the two voxel axes other than the slice axis
    mean_spacing_mm: float
    slice_thickness_mm: float  # the spacing along the voxel axis closest to superior-inferior

    @classmethod
    def from_affine(cls, affine: np.ndarray) -> Grid:
        columns = affine[:3, :3]
        sizes = np.linalg.norm(columns, axis=0)
        slice_axis = int(np.argmax(np.abs(columns[2]) / sizes))
        in_plane = max(float(s) for k, s in enumerate(sizes) if k != slice_axis)
        return cls(in_plane, float(sizes.mean()), float(sizes[slice_axis]))


@dataclass(frozen=True)
class Size:
    """One lesion at one scan (all zero when it is gone), and the grid it was measured on."""

    volume_ml: float
    diameter_mm: float | None  # axial longest diameter (None: not measured)
    surface_mm2: float | None
    grid: Grid

    @classmethod
    def of(cls, row: dict[str, Any] | None, grid: Grid) -> Size:
        """From a features lesion row; None (a resolved lesion) is size zero."""
        if row is None:
            return cls(0.0, 0.0, 0.0, grid)

        def number(name: str) -> float | None:
            return None if row.get(name) is None else float(row[name])

        return cls(float(row["volume_ml"]), number("axial_longest_diameter_mm"), number("surface_area_mm2"), grid)

    def volume_uncertainty_ml(self, params: GrowthParameters) -> float | None:
        """Half a voxel layer over the lesion's surface (the two scans of a change give one layer together)."""
        if self.surface_mm2 is None:
            return None
        return 0.5 * params.volume_uncertainty_layers * self.surface_mm2 * self.grid.mean_spacing_mm / 1000.0


def assess(before: Size, after: Size, days: float, params: GrowthParameters) -> dict[str, Any]:
    """The change from ``before`` to ``after`` over ``days``: percent change, compound growth per month with its
    uncertainty, volume doubling time, the volume and axial-diameter changes with their uncertainties, and
    whether it is growth beyond measurement noise (with the reasons when it is not)."""
    v1, v2 = before.volume_ml, after.volume_ml
    d1, d2 = before.volume_uncertainty_ml(params), after.volume_uncertainty_ml(params)
    known = d1 is not None and d2 is not None
    ratio = v2 / v1 if v1 > 0 else None
    rate = uncertainty = None
    if ratio is not None and days > 0:
        power = DAYS_PER_MONTH / days
        rate = 100.0 * (ratio**power - 1)
        if known and v2 > 0:
            uncertainty = 100.0 * power * ratio**power * math.hypot(d1 / v1, d2 / v2)
    diameter_uncertainty = params.diameter_uncertainty_voxels * max(
        before.grid.in_plane_spacing_mm, after.grid.in_plane_spacing_mm
    )
    out = {
        "days": days,
        "percent_change": None if ratio is None else 100.0 * (ratio - 1),
        "growth_percent_per_month": rate,
        "growth_percent_per_month_uncertainty": uncertainty,
        "volume_doubling_time_days": None
        if ratio is None or ratio in (0.0, 1.0) or days <= 0
        else days * math.log(2) / math.log(ratio),
        "volume_change_ml": v2 - v1,
        "volume_uncertainty_ml": d1 + d2 if known else None,
        "axial_diameter_change_mm": None
        if after.diameter_mm is None or before.diameter_mm is None
        else after.diameter_mm - before.diameter_mm,
        "axial_diameter_uncertainty_mm": diameter_uncertainty,
    }
    failed = {}
    if None in (after.diameter_mm, before.diameter_mm, after.surface_mm2, before.surface_mm2):
        failed["measured"] = "axial diameter or surface area not measured"
    elif after.diameter_mm < params.min_diameter_mm:
        failed["measurable"] = (
            f"{after.diameter_mm:.1f} mm at the later scan, below the measurable {params.min_diameter_mm:g} mm"
        )
    if out["axial_diameter_change_mm"] is not None and out["axial_diameter_change_mm"] <= diameter_uncertainty:
        failed["diameter"] = (
            f"axial diameter {out['axial_diameter_change_mm']:+.1f} mm, within its uncertainty "
            f"{diameter_uncertainty:.1f} mm"
        )
    if out["volume_uncertainty_ml"] is not None and out["volume_change_ml"] <= out["volume_uncertainty_ml"]:
        failed["volume"] = (
            f"volume {out['volume_change_ml']:+.3g} mL, within one voxel layer of its surface "
            f"({out['volume_uncertainty_ml']:.3g} mL)"
        )
    if days < params.min_interval_days:
        failed["interval"] = f"{days:g} days apart, under {params.min_interval_days:g}"
    out["growth_beyond_noise"] = not failed
    out["not_beyond_noise_because"] = list(failed.values())
    out["failed_criteria"] = list(failed)
    return out


def describe(change: dict[str, Any]) -> str:
    """A change in words, for evidence: diameter and volume changes with their uncertainties, and the rate."""

    def shown(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    rate = change["growth_percent_per_month"]
    uncertainty = change["growth_percent_per_month_uncertainty"]
    per_month = "" if rate is None else f", {rate:.0f} ± {shown(uncertainty, '.0f')} % per month"
    return (
        f"axial diameter {shown(change['axial_diameter_change_mm'], '+.1f')} mm "
        f"(± {change['axial_diameter_uncertainty_mm']:.1f}), volume {change['volume_change_ml']:+.3g} mL "
        f"(± {shown(change['volume_uncertainty_ml'], '.3g')}) over {change['days']:g} days{per_month}"
    )
