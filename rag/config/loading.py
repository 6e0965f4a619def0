"""Settings loaded from overrides, `RAG_*` environment variables, a TOML file and the
defaults, in that order of precedence; `--set KEY=VALUE` parsed."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_settings import (
    SettingsError,
)

from rag.config.settings import ENV_PREFIX, Settings
from rag.errors import ConfigError

CONFIG_ENV = "RAG_CONFIG"


def load_settings(config_file: Path | str | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings from overrides, environment, TOML file and defaults.

    `overrides` uses dotted keys (`{"llm.n_ctx": 1024}`); None values are ignored.
    Raises ConfigError with one line naming the bad setting.
    """
    path = config_path(config_file)
    nested = _nest({k: v for k, v in (overrides or {}).items() if v is not None})
    _check_env()
    # A subclass per file keeps the file path out of global state.
    cls: type[Settings] = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
    )
    try:
        return cls(**nested)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    except SettingsError as exc:  # e.g. a list setting given as non-JSON in the environment
        raise ConfigError(f"invalid settings: {exc}") from exc


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse `retrieval.top_k=8` (value read as TOML, else as a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def config_path(config_file: Path | str | None) -> Path | None:
    raw = config_file or os.environ.get(CONFIG_ENV)
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return path


def _check_env() -> None:
    known = _known_keys()
    for name in os.environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_ENV:
            continue
        key = upper[len(ENV_PREFIX) :].lower().replace("__", ".")
        if key not in known:
            raise ConfigError(f"unknown setting {name} (see `rag config`)")


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.add(name)
            keys.update(f"{name}.{sub}" for sub in annotation.model_fields)
        else:
            keys.add(name)
    return keys


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        parts.append(f"{where}: {message}")
    return "invalid settings: " + "; ".join(parts)
