"""Nothing is ever fetched from a model hub: the environment that makes sure of it."""

from __future__ import annotations

import os

#: Set (unless already set) before any Hugging Face library is imported.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # The tokenizers library's own thread pool would clash with forked ingest processes.
    "TOKENIZERS_PARALLELISM": "false",
}


def ensure_offline() -> None:
    """Keep Hugging Face libraries offline; a value already in the environment wins."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
