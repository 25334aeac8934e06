"""The declarative files' one loader (settings, contracts, identity, models, tags, audiences, sources): the strict
base model, YAML read one way, and every validation error as the same one-line `ConfigError` naming the file, the
key and the reason, with how many more errors the file has."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from audiencelake.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A section of a declarative file: an unknown key is an error, and the values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: Path) -> Any:
    """What a YAML file holds (None for an empty file).

    Raises:
        ConfigError: the file is missing, cannot be read or is not YAML.
    """
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "<file>", "file not found") from None
    except OSError as exc:  # a folder, no permission
        raise ConfigError(str(path), "<file>", f"cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "<yaml>", f"not valid YAML: {' '.join(str(exc).split())}") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping a YAML file holds (empty for an empty file).

    Raises:
        ConfigError: the file is missing, is not YAML, or holds something other than a mapping.
    """
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "<root>", f"expected a mapping, got {type(data).__name__}")
    return data


Override = tuple[str, str, str]  # (dotted key within a file, value as written, where it came from: --set or $VAR)


def yaml_scalar(value: str) -> Any:
    """An override's value as YAML (`true`, `3`, `[a, b]`), or the string itself when it is not YAML
    (`{landing}/x/*.csv`)."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def set_path(data: dict[str, Any], keys: list[str], value: Any, origin: str) -> None:
    """Set `data[keys[0]][keys[1]]...` to `value` (a string is read as YAML), making sections on the way.

    Raises:
        ConfigError: a key on the way holds a value, not a section (named with `origin`).
    """
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(origin, ".".join(keys), f"'{key}' is not a section")
        node = child
    node[keys[-1]] = yaml_scalar(value) if isinstance(value, str) else value


def with_overrides(raw: Any, overrides: tuple[Override, ...] | list[Override], file: str) -> Any:
    """The mapping read from `file` with `overrides` applied (a copy; `raw` unchanged).

    Raises:
        ConfigError: the file is not a mapping, or an override crosses a value (naming the override).
    """
    if not overrides:
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(file, "<root>", f"expected a mapping, got {type(raw).__name__}")
    data = copy.deepcopy(raw)
    for dotted, value, origin in overrides:
        set_path(data, dotted.split("."), value, f"{origin} (for {file})")
    return data


def config_error(file: str, exc: ValidationError, prefix: str = "") -> ConfigError:
    """The first of a model's validation errors as a `ConfigError` at `prefix` + its location in `file`."""
    errors = exc.errors()
    err = errors[0]
    key = ".".join(str(p) for p in (prefix, *err["loc"]) if p not in ("", "[key]")) or "<root>"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(file, key, err["msg"].removeprefix("Value error, ") + more)


def validate(model: type[M], data: Any, file: str, prefix: str = "") -> M:
    """`model` validated from `data` read from `file` (at `prefix`).

    Raises:
        ConfigError: the data does not validate (`config_error`).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(file, exc, prefix) from None
