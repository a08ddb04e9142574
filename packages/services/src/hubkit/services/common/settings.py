"""Typed settings for standalone services: a pydantic model that rejects unknown keys.

Settings come from a YAML or JSON file (``--config``, or the ``<PREFIX>CONFIG`` environment variable)
and may be overridden per key by environment variables ``<PREFIX><KEY>`` (nested keys joined by
``__``; values are parsed as JSON when they are valid JSON, else taken as strings). An environment
variable with the prefix that names no setting is an error, like an unknown key in the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .exceptions import SettingsError

__all__ = ["ServiceSettings", "load_settings"]


class ServiceSettings(BaseModel):
    """Base class of every service's settings: unknown keys are rejected, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=ServiceSettings)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise SettingsError(f"cannot read settings file {path}: {e.strerror}") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise SettingsError(f"settings file {path} is not valid {kind}: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SettingsError(f"settings file {path} must hold a mapping of settings, not a {kind}")
    return data


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str], prefix: str) -> None:
    for name, raw in env.items():
        if not name.startswith(prefix) or name == f"{prefix}CONFIG":
            continue
        keys = name[len(prefix) :].lower().split("__")
        target = data
        for key in keys[:-1]:
            nested = target.setdefault(key, {})
            if not isinstance(nested, dict):
                raise SettingsError(f"environment variable {name} sets a key inside {key!r}, not a mapping")
            target = nested
        target[keys[-1]] = _env_value(raw)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def load_settings(
    model: type[S],
    path: Path | None = None,
    *,
    env_prefix: str,
    env: Mapping[str, str] | None = None,
) -> S:
    """Build ``model`` from ``path`` (or ``$<env_prefix>CONFIG``) and ``<env_prefix>*`` overrides.

    Raises :class:`SettingsError` with one line per invalid or unknown key.
    """
    environ = os.environ if env is None else env
    if path is None and environ.get(f"{env_prefix}CONFIG"):
        path = Path(environ[f"{env_prefix}CONFIG"])
    data = _read_file(path) if path is not None else {}
    _apply_env(data, environ, env_prefix)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        source = f"settings file {path}" if path is not None else "settings"
        raise SettingsError(f"invalid {source}: {_describe(e)}") from e
