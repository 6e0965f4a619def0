"""Where each setting came from (cli, env, file), and the settings as dotted keys: to show,
save, or hand to a child process."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from rag.config.loading import CONFIG_ENV, config_path
from rag.config.settings import ENV_PREFIX, Settings


def setting_sources(
    config_file: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, str]:
    """Where each explicitly given setting came from: 'cli', 'env' or 'file'."""
    found: dict[str, str] = {}
    path = config_path(config_file)
    if path is not None:
        with open(path, "rb") as fh:
            for key in _flatten(tomllib.load(fh)):
                found[key] = "file"
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != CONFIG_ENV:
            found[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = "env"
    for key, value in (overrides or {}).items():
        if value is not None:
            found[key] = "cli"
    return found


def flat_settings(settings: Settings) -> dict[str, Any]:
    """Settings as dotted keys and plain values, secrets masked: to show or save."""
    return _flatten(settings.model_dump(mode="json"))


def settings_for_child(settings: Settings) -> dict[str, Any]:
    """The settings to hand to a child process of this program, secrets intact (the store
    URL's password, the keys): JSON shows them masked, which a child cannot connect with.
    Pickled over the pipe the child's arguments travel by, never put on its command line
    or in a log; `Settings.model_validate` reads them back."""
    return settings.model_dump()


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat
