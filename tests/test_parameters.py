"""The measurement's parameters: one name per parameter, or a mapping the docs show (config key <-> attribute)."""

from __future__ import annotations

import dataclasses

from brainmets.config import load_config
from brainmets.measurement.parameters import FeatureParameters


def _leaves(section: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_features_key_of_the_config_is_an_attribute_and_back():
    attributes = {f.name for f in dataclasses.fields(FeatureParameters)} - {"scheme_chosen"}
    assert set(FeatureParameters.CONFIG_KEYS) == attributes
    assert set(FeatureParameters.CONFIG_KEYS.values()) == set(_leaves(load_config()["features"]))


def test_each_attribute_is_read_from_and_recorded_at_its_config_key():
    """Distinct values at every key come back at the mapped attribute, and as_dict records them there."""
    section = {"connectivity": 18, "min_lesion_volume_mm3": 11.0, "min_edema_component_volume_mm3": 12.0,
               "merge_distance_mm": 13.0, "cavity_rim_mm": 4.0, "max_voxels": 10**8,
               "rano_bm": {"min_longest_diameter_mm": 15.0, "min_perpendicular_diameter_mm": 6.0,
                           "min_axial_slices": 3, "max_target_lesions": 4},
               "radiotherapy_triage": {"rtog9005_dose_levels": [{"max_diameter_mm": 25.0, "dose_gy": 20.0}],
                                       "astro2022_tier_edges_mm": [21.0, 31.0, 41.0],
                                       "astro2022_discouraged_above_mm": 61.0}}  # fmt: skip
    params = FeatureParameters.from_config(section)
    recorded = _leaves(params.as_dict())
    for attribute, key in FeatureParameters.CONFIG_KEYS.items():
        if attribute == "scheme":
            assert params.scheme.name == "brats-mets-2023" and recorded["label_scheme.name"] == "brats-mets-2023"
            continue
        expected = _leaves(section)[key]
        value = getattr(params, attribute)
        if attribute == "rtog9005_dose_levels":  # (largest diameter, dose) pairs
            value = [{"max_diameter_mm": d, "dose_gy": g} for d, g in value]
        assert (list(value) if isinstance(value, tuple) else value) == expected, attribute
        assert recorded[key] == expected, key
