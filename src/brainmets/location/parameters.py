"""The parameters of locating lesions and of registering a template, from the config's ``anatomy`` section
(light to import: SimpleITK is loaded only when a template is registered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LocationParameters:
    """Thresholds turning overlaps into categories (all fractions of the lesion's core voxels)."""

    mixed_margin: float = 0.1  # <= margin in the posterior fossa: supratentorial; >= 1 - margin: infratentorial
    brainstem_min_fraction: float = 0.05
    eloquent_min_fraction: float = 0.05
    max_outside_brain_fraction: float = 0.5  # beyond this the reference is taken not to line up
    # measured on the subject's own parcellation (brainmets.location.anatomy; docs/methods.md)
    midline_pole_fraction: float = 0.1  # share of the brain's length at each pole that places the midline
    midline_fissure_max_gap_mm: float = 10.0  # widest interhemispheric gap read as the fissure
    septum_max_gap_mm: float = 4.0  # widest gap between the lateral ventricles read as the septum
    midline_smoothing_mm: float = 3.0  # running-median radius along the septum and third ventricle
    midline_shift_direction_min_mm: float = 1.0  # below this the shift has no direction
    fourth_ventricle_contact_mm: float = 1.0  # a lesion this close to the 4th (or 3rd) ventricle touches it
    optic_chiasm_near_mm: float = 3.0
    pf_hydrocephalus_ventricle_ratio_max: float = 0.02  # J Neurooncol 2024, PMID 39607570
    pf_hydrocephalus_edema_ratio_max: float = 0.85  # idem

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> LocationParameters:
        return cls(**{k: float(section[k]) for k in cls.__dataclass_fields__ if k in section})


@dataclass(frozen=True)
class RegistrationParameters:
    """Settings of the template registration (all in the config's ``anatomy.registration`` section)."""

    deformable: bool = False
    histogram_bins: int = 32
    sampling_fraction: float = 0.05
    iterations: int = 200
    bspline_mesh_size: int = 6
    bspline_iterations: int = 50
    shrink_factors: tuple[int, ...] = (4, 2)  # multi-resolution levels of the linear stages (1 = full)
    min_brain_dice: float = 0.8  # warn below this overlap of the template's brain with the subject's

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> RegistrationParameters:
        values = {k: section[k] for k in cls.__dataclass_fields__ if k in section}
        if "shrink_factors" in values:
            values["shrink_factors"] = tuple(values["shrink_factors"])
        return cls(**values)
