"""Settings: one object, built once at the entry point and passed down.

Precedence, highest first: explicit overrides (CLI flags), `RAG_*` environment
variables (`__` separates nested groups: `RAG_LLM__N_CTX=4096`), an optional TOML
file (`--config` or `RAG_CONFIG`), then the defaults.

The models are in `groups.py`, `answer.py`, `server.py` and `settings.py`; how they are
loaded in `loading.py`; where each value came from in `provenance.py`.
"""

from rag.config.answer import MULTILINGUAL_THRESHOLDS, AnswerSettings, answer_settings_for
from rag.config.groups import (
    DEFAULT_EMBEDDER,
    INDEX_NAME_PATTERN,
    MULTILINGUAL_EMBEDDER,
    ChunkingSettings,
    EmbedderSettings,
    IngestSettings,
    LlmSettings,
    RerankSettings,
    RetrievalSettings,
    StoreSettings,
    rerank_with_aliases,
)
from rag.config.loading import CONFIG_ENV, load_settings, parse_assignment
from rag.config.provenance import flat_settings, setting_sources, settings_for_child
from rag.config.server import ServerSettings
from rag.config.settings import ENV_PREFIX, Settings

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_EMBEDDER",
    "ENV_PREFIX",
    "INDEX_NAME_PATTERN",
    "MULTILINGUAL_EMBEDDER",
    "MULTILINGUAL_THRESHOLDS",
    "AnswerSettings",
    "ChunkingSettings",
    "EmbedderSettings",
    "IngestSettings",
    "LlmSettings",
    "RerankSettings",
    "RetrievalSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "answer_settings_for",
    "flat_settings",
    "load_settings",
    "parse_assignment",
    "rerank_with_aliases",
    "setting_sources",
    "settings_for_child",
]
