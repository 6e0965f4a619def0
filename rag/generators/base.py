"""Generators: chat messages in, a stream of text out.

`make_generator(settings)` is the one place a backend is chosen, by `llm.kind`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from rag.config import LlmSettings

logger = logging.getLogger(__name__)

Message = dict[str, str]
RENDER_CACHE = 64  # renderings kept: those of a few requests' prompt building


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings of one answer."""

    max_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @classmethod
    def from_settings(cls, llm: LlmSettings) -> GenerationParams:
        return cls(
            max_tokens=llm.max_tokens,
            temperature=llm.temperature,
            top_p=llm.top_p,
            top_k=llm.top_k,
            repeat_penalty=llm.repeat_penalty,
            stop=tuple(llm.stop),
            seed=llm.seed,
        )

    def with_overrides(self, **overrides: Any) -> GenerationParams:
        given = {k: v for k, v in overrides.items() if v is not None}
        if "stop" in given:
            stop = given["stop"]
            given["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
        return replace(self, **given)


@dataclass
class Delta:
    """A piece of generated text; the last one carries the finish reason."""

    text: str
    finish_reason: str | None = None
    completion_tokens: int = 0


class Generator(ABC):
    """A chat model: chat messages in, a stream of text out.

    The prompt builder budgets with `count_tokens` and `n_ctx` alone, so a backend reached
    only through an HTTP API can be budgeted as well as one whose tokenizer is at hand.
    """

    #: The backend, as `llm.kind` names it.
    kind: ClassVar[str]
    name: str
    #: The context size in tokens: the prompt and the answer together.
    n_ctx: int
    #: The thread generation should be driven from, if the backend has one; callers that
    #: stream in a worker thread should use it rather than a thread of their own.
    executor: Executor | None = None

    @abstractmethod
    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        """Answer the messages, piece by piece; the last delta has the finish reason."""

    @abstractmethod
    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The exact tokens the model reads for these messages, chat template included."""

    def close(self) -> None:  # noqa: B027  (most backends hold nothing to free)
        """Free what the model holds (its weights, its thread); it is not used after."""
