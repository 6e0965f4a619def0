"""Fixtures of the ingest tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unprivileged import shared_tmp, unprivileged

__all__ = ["secret_cwd", "shared_tmp", "unprivileged"]

SECRET = "api_key = 'the server secret'"


@pytest.fixture
def secret_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, as a server's: its `config.toml` holds a secret no ingest may read."""
    here = tmp_path / "server"
    here.mkdir()
    (here / "config.toml").write_text(SECRET + "\n")
    monkeypatch.chdir(here)
    return here
