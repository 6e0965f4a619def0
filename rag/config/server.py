"""The server settings: address, keys, limits, the sites a browser may call from."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from rag.config.groups import SettingsGroup


class ServerSettings(SettingsGroup):
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, gt=0, lt=65536, description="Port `rag serve` listens on.")
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Accepted bearer keys; empty means no authentication. Never printed or logged.",
    )
    keys_file: Path | None = Field(
        None,
        description="SQLite file of the keys `rag keys create` makes (salted hashes only); "
        "default: keys.sqlite in indexes_dir.",
    )
    auth_failures: int = Field(
        10, gt=0, description="Failed key attempts a client address may make per minute before 429."
    )
    public_docs: bool = Field(
        False, description="Serve /docs, /redoc and /openapi.json without a key even when keys are set."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of other web pages that may call the API from a "
        "browser, given CORS headers; '*' for any. Empty: the server's own page only.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Names the server answers to (the Host header) besides IP addresses, localhost "
        "and names of one label; '*' for any. Empty: any name when api_keys are set, else only "
        "those (a page on another name that resolves to this machine is refused: DNS rebinding).",
    )
    queue_size: int = Field(16, ge=0, description="Requests that may wait for the model.")
    access_log: bool = Field(True, description="Log one line per request (logger rag.access).")
    stream_interval: float = Field(
        0.1, ge=0, le=1, description="Seconds between streamed messages; tokens between go together."
    )
    ingest_roots: list[Path] = Field(
        default_factory=list,
        description="Folders whose files POST /ingest may ingest by path; empty means none.",
    )
    upload_dir: Path = Field(
        Path("uploads"), description="Where files uploaded to POST /ingest are kept, a folder per index."
    )
    max_upload_mb: int = Field(
        100, gt=0, description="Largest POST /ingest upload in megabytes, all files together."
    )
    max_body_kb: int = Field(
        4096, gt=0, description="Largest request body in kilobytes, except uploads (max_upload_mb)."
    )
    max_messages: int = Field(
        256, gt=0, description="Most messages in a chat request (history turns and question on /ask)."
    )
    max_input_chars: int = Field(
        100_000, gt=0, description="Most characters of all messages of a request together."
    )
    max_embedding_inputs: int = Field(256, gt=0, description="Most texts in one embeddings request.")
    max_embedding_chars: int = Field(
        8192, gt=0, description="Most characters in each text of an embeddings request."
    )
    max_embedding_total_chars: int = Field(
        32_000,
        gt=0,
        description="Most characters of all texts of an embeddings request together (on a "
        "CPU the embedder reads a few thousand tokens a second).",
    )
    max_stop: int = Field(4, ge=0, description="Most `stop` sequences in a request.")
    shutdown_timeout: int = Field(
        3, ge=0, description="Seconds `rag serve` lets running requests finish once told to stop."
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        """As browsers send them: lower case, no trailing slash. `null` is no origin to trust
        (sandboxed frames and local files of any site send it)."""
        return _each(
            values,
            lambda v: v.strip().rstrip("/").lower(),
            r"https?://[^/?#@\s]+",
            "is not an origin: give scheme://host[:port] (http://localhost:3000) or '*'",
        )

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        return _each(
            values,
            lambda v: v.strip().rstrip(".").lower(),
            r"[a-z0-9_-]+(\.[a-z0-9_-]+)*",
            "is not a host name: give it without scheme nor port (rag.example.com) or '*'",
        )


def _each(values: list[str], clean: Callable[[str], str], pattern: str, wrong: str) -> list[str]:
    """Each value cleaned, and '*' or matching `pattern`; else ValueError: 'VALUE' `wrong`."""
    for value in values:
        if clean(value) != "*" and not re.fullmatch(pattern, clean(value)):
            raise ValueError(f"{value!r} {wrong}")
    return [clean(v) for v in values]
