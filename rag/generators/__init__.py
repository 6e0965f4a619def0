"""Generators: chat messages in, a stream of text out.

`make_generator(settings)` is the one place a backend is chosen, by `llm.kind`.
"""

from __future__ import annotations

import logging

from rag.config import LlmSettings
from rag.errors import ConfigError
from rag.generators.base import Generator
from rag.generators.llama_cpp import LlamaCppGenerator

logger = logging.getLogger(__name__)


def make_generator(settings: LlmSettings) -> Generator:
    """The generator `settings.kind` names, loaded."""
    if settings.kind == "llama-cpp":
        return LlamaCppGenerator(settings)
    if settings.kind == "openai":
        from rag.generators.openai_server import OpenAIGenerator

        return OpenAIGenerator(settings)
    raise ConfigError(f"unknown generator kind {settings.kind!r}")
