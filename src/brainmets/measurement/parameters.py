"""The parameters of a study's measurement, from the config's ``features`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from brainmets.config import validate_config
from brainmets.errors import ConfigError
from brainmets.schemes import AUTO, LabelScheme, get_scheme


@dataclass(frozen=True)
class FeatureParameters:
    """Every parameter of the feature computation (recorded in each output's provenance)."""

    scheme: LabelScheme
    connectivity: int
    min_lesion_volume_mm3: float
    min_edema_component_volume_mm3: float
    merge_distance_mm: float
    cavity_rim_mm: float
    max_voxels: int
    rano_min_longest_mm: float
    rano_min_perpendicular_mm: float
    rano_min_slices: int
    rano_max_targets: int
    #: RTOG 90-05 dose levels: (largest maximum 3D diameter in mm, single-fraction dose in Gy), smallest first.
    rtog9005_dose_levels: tuple[tuple[float, float], ...] = ((20.0, 24.0), (30.0, 18.0), (40.0, 15.0))
    astro2022_tier_edges_mm: tuple[float, float, float] = (20.0, 30.0, 40.0)
    astro2022_discouraged_above_mm: float = 60.0
    #: Whether the scheme was chosen (by name, mapping or DICOM segments) rather than left to ``auto``.
    scheme_chosen: bool = True

    #: Each attribute's key in the config's ``features`` section (dots: nested); the options of ``brainmets
    #: features`` and the keywords of ``brainmets.measure`` follow the config (docs/reference/parameters.md).
    CONFIG_KEYS: ClassVar[dict[str, str]] = {
        "scheme": "label_scheme",
        "connectivity": "connectivity",
        "min_lesion_volume_mm3": "min_lesion_volume_mm3",
        "min_edema_component_volume_mm3": "min_edema_component_volume_mm3",
        "merge_distance_mm": "merge_distance_mm",
        "cavity_rim_mm": "cavity_rim_mm",
        "max_voxels": "max_voxels",
        "rano_min_longest_mm": "rano_bm.min_longest_diameter_mm",
        "rano_min_perpendicular_mm": "rano_bm.min_perpendicular_diameter_mm",
        "rano_min_slices": "rano_bm.min_axial_slices",
        "rano_max_targets": "rano_bm.max_target_lesions",
        "rtog9005_dose_levels": "radiotherapy_triage.rtog9005_dose_levels",
        "astro2022_tier_edges_mm": "radiotherapy_triage.astro2022_tier_edges_mm",
        "astro2022_discouraged_above_mm": "radiotherapy_triage.astro2022_discouraged_above_mm",
    }

    @classmethod
    def from_config(cls, features: dict[str, Any] | None = None) -> FeatureParameters:
        """From the ``features`` section of a config (validated here, defaults filled in)."""
        section = validate_config({"features": features or {}})["features"]
        rano, triage = section["rano_bm"], section["radiotherapy_triage"]
        levels = sorted(
            (float(level["max_diameter_mm"]), float(level["dose_gy"])) for level in triage["rtog9005_dose_levels"]
        )
        edges = tuple(float(edge) for edge in triage["astro2022_tier_edges_mm"])
        if list(edges) != sorted(edges):
            raise ConfigError(
                f"features.radiotherapy_triage.astro2022_tier_edges_mm: {list(edges)} is not in increasing order"
            )
        return cls(
            scheme=get_scheme(section["label_scheme"]),
            scheme_chosen=section["label_scheme"] != AUTO,
            connectivity=section["connectivity"],
            min_lesion_volume_mm3=float(section["min_lesion_volume_mm3"]),
            min_edema_component_volume_mm3=float(section["min_edema_component_volume_mm3"]),
            merge_distance_mm=float(section["merge_distance_mm"]),
            cavity_rim_mm=float(section["cavity_rim_mm"]),
            max_voxels=int(section["max_voxels"]),
            rano_min_longest_mm=float(rano["min_longest_diameter_mm"]),
            rano_min_perpendicular_mm=float(rano["min_perpendicular_diameter_mm"]),
            rano_min_slices=int(rano["min_axial_slices"]),
            rano_max_targets=int(rano["max_target_lesions"]),
            rtog9005_dose_levels=tuple(levels),
            astro2022_tier_edges_mm=edges,
            astro2022_discouraged_above_mm=float(triage["astro2022_discouraged_above_mm"]),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of every parameter, in config terms."""
        return {
            "label_scheme": self.scheme.as_dict(),
            "label_scheme_chosen": self.scheme_chosen,
            "connectivity": self.connectivity,
            "min_lesion_volume_mm3": self.min_lesion_volume_mm3,
            "min_edema_component_volume_mm3": self.min_edema_component_volume_mm3,
            "merge_distance_mm": self.merge_distance_mm,
            "cavity_rim_mm": self.cavity_rim_mm,
            "max_voxels": self.max_voxels,
            "rano_bm": {
                "min_longest_diameter_mm": self.rano_min_longest_mm,
                "min_perpendicular_diameter_mm": self.rano_min_perpendicular_mm,
                "min_axial_slices": self.rano_min_slices,
                "max_target_lesions": self.rano_max_targets,
            },
            "radiotherapy_triage": {
                "rtog9005_dose_levels": [{"max_diameter_mm": d, "dose_gy": g} for d, g in self.rtog9005_dose_levels],
                "astro2022_tier_edges_mm": list(self.astro2022_tier_edges_mm),
                "astro2022_discouraged_above_mm": self.astro2022_discouraged_above_mm,
            },
        }
