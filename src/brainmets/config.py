"""Configuration: one JSON schema (``schemas/config.schema.yaml``) for the CLI and the workflow."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError, InputDataError
from .labels import LabelScheme, get_scheme

SCHEMA_FILE = "config.schema.yaml"


def load_yaml(text: str) -> Any:
    """Parse YAML with libyaml's C loader when available (five to ten times faster than pure Python)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def schema_path(name: str = SCHEMA_FILE) -> Path:
    """Filesystem path of a schema (the workflow hands the config schema to ``snakemake.utils.validate``)."""
    return Path(str(resources.files("brainmets") / "schemas" / name))


@cache
def load_schema(name: str = SCHEMA_FILE) -> dict:
    return load_yaml(schema_path(name).read_text(encoding="utf-8"))


def _with_defaults(validator_class: type) -> type:
    """A validator that fills in schema defaults, as ``snakemake.utils.validate(set_default=True)`` does."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _non_finite(data: Any, where: tuple = ()) -> Iterator[tuple]:
    """Paths of the NaN and infinite numbers in ``data`` (JSON and YAML both can spell them)."""
    if isinstance(data, float) and not math.isfinite(data):
        yield where
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _non_finite(value, (*where, key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _non_finite(value, (*where, i))


def validate_with(schema: str, data: Any, source: str) -> Any:
    """Validate (a copy of) ``data`` against one of the package's schemas; return it with defaults filled in.
    A NaN or infinite number anywhere is refused first: JSON schema's bounds let NaN through."""
    for where in _non_finite(data):
        raise ConfigError(f"{source}: {'.'.join(map(str, where)) or '(top level)'}: not a finite number")
    data = copy.deepcopy(data)
    errors = sorted(_Validator(load_schema(schema)).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: {where}: {err.message}")
    return data


def validate_config(config: dict[str, Any], source: str = "configuration") -> dict[str, Any]:
    """Validate (a copy of) a brainmets config and return it with every default filled in."""
    return validate_with(SCHEMA_FILE, config, source)


def read_text(path: str | Path, error: type[Exception] = ConfigError) -> str:
    """A text file people wrote: UTF-8 (a byte-order mark is accepted); anything else is ``error`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _error(error, path, "no such file") from None
    except UnicodeDecodeError as exc:
        raise _error(error, path, f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise _error(error, path, f"cannot read it ({exc.strerror or exc})") from None


def _error(error: type[Exception], path: str | Path, problem: str) -> Exception:
    return error(path, problem) if error is InputDataError else error(f"{path}: {problem}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (not yet validated)."""
    try:
        data = load_yaml(read_text(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


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

    @classmethod
    def from_config(cls, features: dict[str, Any] | None = None) -> FeatureParameters:
        """From the ``features`` section of a config (validated here, defaults filled in)."""
        section = validate_config({"features": features or {}})["features"]
        rano = section["rano_bm"]
        return cls(
            scheme=get_scheme(section["label_scheme"]),
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
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of every parameter, in config terms."""
        return {
            "label_scheme": self.scheme.as_dict(),
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
        }
