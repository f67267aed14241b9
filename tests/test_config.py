"""Configuration validation: defaults filled in, and a shared configuration validated once per process."""

import pytest

from brainmets import config
from brainmets.errors import ConfigError


def test_a_shared_configuration_is_validated_once_and_every_caller_gets_its_own_copy(monkeypatch):
    monkeypatch.setattr(config, "_VALIDATED", {})
    calls = []
    validate = config._validate
    monkeypatch.setattr(config, "_validate", lambda *args: calls.append(args) or validate(*args))
    first = config.validate_config({"features": {"min_lesion_volume_mm3": 7}}, "test")
    first["features"]["min_lesion_volume_mm3"] = 99  # a caller changing its copy changes nobody else's
    second = config.validate_config({"features": {"min_lesion_volume_mm3": 7}}, "test")
    assert second["features"]["min_lesion_volume_mm3"] == 7 and "connectivity" in second["features"]
    assert len(calls) == 1
    config.validate_config({"features": {"min_lesion_volume_mm3": 8}}, "test")
    assert len(calls) == 2  # another configuration: validated
    for _ in range(2):  # an invalid one is refused every time, never remembered
        with pytest.raises(ConfigError, match="min_lesion_volume_mm3"):
            config.validate_config({"features": {"min_lesion_volume_mm3": "large"}}, "test")
    assert len(calls) == 4
