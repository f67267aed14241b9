"""Configuration: one JSON schema (``schemas/config.schema.yaml``) for the CLI and the workflow."""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from brainmets.errors import ConfigError, InputDataError

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


#: Values a configuration or document may hold at most (aliases included: a YAML "billion laughs" is refused).
MAX_VALUES = 200_000
#: Whole numbers beyond this are not counts or sizes anybody means (and would overflow a float).
MAX_INTEGER = 2**53


def _bad_values(data: Any, infinity: bool = False) -> Iterator[tuple[tuple, str]]:
    """(path, problem) of what a config or document must not hold: NaN, infinities (unless ``infinity``),
    integers too large for a float, and more values or depth than anybody means (a recursive or exploding YAML
    alias)."""
    budget = MAX_VALUES
    stack: list[tuple[tuple, Any, int]] = [((), data, 0)]
    while stack:
        where, value, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > 100:
            yield where, f"more than {MAX_VALUES:,} values or 100 levels deep (a recursive or exploding alias?)"
            return
        if isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value) and not (infinity and math.isinf(value)):
            yield where, "not a finite number"
        elif isinstance(value, int) and abs(value) > MAX_INTEGER:
            yield where, f"the number {str(value)[:20]}... is out of range"
        elif isinstance(value, dict):
            stack.extend(((*where, k), v, depth + 1) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend(((*where, i), v, depth + 1) for i, v in enumerate(value))


#: Valid configurations and reference definitions remembered (by schema, source and ``repr``): a batch's
#: studies share them, so each is validated once; every caller gets its own deep copy.
_SHARED_SCHEMAS = (SCHEMA_FILE, "reference.schema.yaml")
_VALIDATED: dict[tuple[str, str, str], Any] = {}
_VALIDATED_MAX_ENTRIES, _VALIDATED_MAX_CHARS = 32, 100_000


def validate_with(schema: str, data: Any, source: str, infinity: bool = False) -> Any:
    """Validate (a copy of) ``data`` against one of the package's schemas; return it with defaults filled in.
    Unusable numbers (NaN, infinities unless ``infinity``: a document brainmets wrote may hold them, integers
    beyond 2^53) and structures too large or deep to be meant are refused first: JSON schema's bounds let NaN
    through."""
    for where, problem in _bad_values(data, infinity):  # first: an exploding alias must never be expanded (by repr)
        key = ".".join(map(str, where)) or "(top level)"
        raise ConfigError(f"{source}: {key if len(key) <= 80 else key[:77] + '...'}: {problem}")
    key = (schema, source, repr(data)) if schema in _SHARED_SCHEMAS else None
    cached = _VALIDATED.get(key) if key is not None else None
    if cached is not None:
        return copy.deepcopy(cached)
    valid = _validate(schema, data, source)
    if key is not None and len(key[2]) <= _VALIDATED_MAX_CHARS:
        if len(_VALIDATED) >= _VALIDATED_MAX_ENTRIES:
            _VALIDATED.clear()
        _VALIDATED[key] = copy.deepcopy(valid)
    return valid


def _validate(schema: str, data: Any, source: str) -> Any:
    data = copy.deepcopy(data)
    errors = sorted(_Validator(load_schema(schema)).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        while err.validator in ("oneOf", "anyOf") and err.context:  # the branch of the value's own type says why
            wrong_type = {
                e.relative_schema_path[0] for e in err.context if list(e.relative_schema_path)[1:] == ["type"]
            }
            specific = [e for e in err.context if e.relative_schema_path[0] not in wrong_type]
            if not specific:
                break
            err = specific[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: {where}: {err.message}")
    return data


def read_json(path: str | Path, what: str, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """A JSON object from a file (UTF-8); NaN and Infinity literals, nesting too deep and anything but an
    object are refused, naming the file. The strings "Infinity" and "-Infinity" (how brainmets writes an
    infinite number) are read back as float inf and -inf."""

    def constant(name: str) -> None:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        text = Path(path).read_bytes().decode("utf-8-sig") if Path(path).is_file() else read_text(path, error)
    except UnicodeDecodeError:
        raise _error(
            error, path, f"not a {what}: a JSON document was expected, this is binary data (an image?)"
        ) from None
    except OSError:
        text = read_text(path, error)  # says why it cannot be read
    try:
        document = json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        raise _error(error, path, f"not a {what} ({problem})") from None
    if not isinstance(document, dict):
        raise _error(error, path, f"not a {what} (a JSON object was expected)")
    return from_jsonable(document)


def from_jsonable(value: Any) -> Any:
    """A parsed JSON document with the strings "Infinity"/"-Infinity" (how brainmets writes +inf/-inf: see
    brainmets.io.writers.to_jsonable) read back as float inf/-inf."""
    if isinstance(value, dict):
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, str) and value in ("Infinity", "-Infinity"):
        return math.inf if value == "Infinity" else -math.inf
    return value


def validate_config(config: dict[str, Any], source: str = "configuration") -> dict[str, Any]:
    """Validate (a copy of) a brainmets config and return it with every default filled in."""
    valid = validate_with(SCHEMA_FILE, config, source)
    edges = valid["compare_detection_bins_mm3"]  # what JSON schema cannot say: ascending edges
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"{source}: compare_detection_bins_mm3: {edges}: the edges must be strictly ascending")
    return valid


def read_text(path: str | Path, error: type[Exception] = ConfigError) -> str:
    """A text file people wrote: UTF-8 (a byte-order mark is accepted); anything else is ``error`` naming it."""
    if Path(path).is_dir():
        raise _error(error, path, "is a folder, not a file")
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
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc or 'nested too deeply'})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def read_features_document(path: str | Path, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """A ``brainmets features`` document, checked for what other commands read (the key that is wrong is
    named), its lesion count matching its lesions."""
    document = read_json(path, "brainmets features document", error)
    try:
        document = validate_with("features_document.schema.yaml", document, str(path), infinity=True)
    except ConfigError as exc:
        raise _error(error, path, f"not a brainmets features document ({str(exc).removeprefix(f'{path}: ')})") from None
    if document["study"]["lesion_count"] != len(document["lesions"]):
        raise _error(error, path, "not a brainmets features document (its lesion_count is not its number of lesions)")
    return document


def load_config(config: str | os.PathLike | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A validated config with every default filled in: from a YAML file, a mapping of sections, or nothing.

    Returns:
        the config as a dict of sections (``features``, ``anatomy``, ``indications``, ``followup``, ...).

    Raises:
        ConfigError: a value is invalid (the message names its key), or the file is not a YAML mapping.

    Example::

        >>> config = brainmets.load_config({"features": {"min_lesion_volume_mm3": 50}})
        >>> config["features"]["min_lesion_volume_mm3"], config["features"]["connectivity"]
        (50, 26)
    """
    if config is None:
        return validate_config({}, "defaults")
    if isinstance(config, Mapping):
        return validate_config(copy.deepcopy(dict(config)), "config")
    return validate_config(read_config_file(config), str(config))


def with_features(config: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The config with ``parameters`` set in its ``features`` section, validated: ``rano_bm`` and
    ``radiotherapy_triage`` are merged key by key, every other value (a custom ``label_scheme`` mapping
    included) replaces the config's."""
    section = copy.deepcopy(config["features"])
    for key, value in parameters.items():
        nested = key in ("rano_bm", "radiotherapy_triage") and isinstance(value, Mapping)
        section[key] = {**section[key], **value} if nested else value
    return validate_config({**config, "features": section}, "parameters")


def default_threads() -> int:
    """CPUs this process may use (respects affinity masks such as SLURM's), at most 4."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))
