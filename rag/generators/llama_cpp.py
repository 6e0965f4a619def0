"""Generators: chat messages in, a stream of text out.

`make_generator(settings)` is the one place a backend is chosen, by `llm.kind`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import LlmSettings
from rag.errors import ConfigError, ContextLengthError
from rag.generators.base import Delta, GenerationParams, Generator, Message
from rag.generators.gguf import read_gguf
from rag.generators.gguf_catalog import ModelCatalog, default_model_path
from rag.threads import relay

logger = logging.getLogger(__name__)

RENDER_CACHE = 64  # renderings kept: those of a few requests' prompt building


@dataclass(frozen=True)
class RenderedPrompt:
    """Messages as llama.cpp reads them: through the GGUF's chat template, tokenized."""

    tokens: list[int]
    stop: list[str] = field(default_factory=list)


class LlamaCppGenerator(Generator):
    """A GGUF model through llama-cpp-python, loaded once; one generation at a time.

    Tokens are counted with the GGUF's own chat template and tokenizer. The latest
    renderings are kept, so the prompt the builder counted last is not rendered again to
    generate from it.
    """

    kind = "llama-cpp"

    def __init__(self, settings: LlmSettings) -> None:
        if settings.model and (settings.model_path is None or settings.model_path.stem != settings.model):
            settings = ModelCatalog(settings).settings_for(settings.model)  # a model named: its file
        path = settings.model_path or default_model_path()
        threads = settings.n_threads or os.cpu_count() or 1
        # llama.cpp's OpenMP threads are fast only when one and the same thread drives
        # them: called from a second thread, generation runs several times slower (for
        # every caller). Loading and generating all happen on this one thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")
        self.executor = self._thread
        self._thread_id = self._thread.submit(threading.get_ident).result()
        n_ctx = settings.n_ctx or _fitting_context(settings, Path(path))
        self.llm = self._thread.submit(self._load, settings, path, threads, n_ctx).result()
        self.name = settings.model or Path(path).stem
        self.n_ctx = self.llm.n_ctx()
        self._formatter = _chat_formatter(self.llm, settings.chat_format)
        self.lock = threading.Lock()  # llama.cpp's context serves one request at a time
        self._renders: OrderedDict[tuple[tuple[str, str], ...], RenderedPrompt] = OrderedDict()
        self._renders_lock = threading.Lock()
        logger.info("model loaded path=%s n_ctx=%d threads=%d", path, self.n_ctx, threads)

    @staticmethod
    def _load(settings: LlmSettings, path: Path, threads: int, n_ctx: int) -> Any:
        from rag.generators.lookup import LookupLlama

        try:
            # Greedy answers are decoded with prompt lookup (rag.generators.lookup) when
            # `llm.prompt_lookup` is set. With flash attention, and one thread for a single
            # token (on several, llama.cpp splits its attention otherwise than a batch's),
            # a position's logits are the same read alone or in a batch, so the guesses
            # never change a greedy answer.
            lookup = settings.prompt_lookup
            return LookupLlama(
                model_path=str(path),
                n_ctx=n_ctx,
                lookup=lookup,
                flash_attn=lookup > 0,
                n_threads=1 if lookup else threads,
                n_threads_batch=threads,
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed if settings.seed is not None else -1,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load model {path}: {exc}") from exc

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.render(messages).tokens)

    def close(self) -> None:
        with self.lock:  # a generation under way ends first
            llm, self.llm = self.llm, None
            if llm is not None:
                self._thread.submit(llm.close).result()
        self._thread.shutdown(wait=True)
        logger.info("model unloaded name=%s", self.name)

    def render(self, messages: Sequence[Message]) -> RenderedPrompt:
        """The exact tokens the model reads for these messages, and the template's stops."""
        key = tuple((m["role"], m["content"]) for m in messages)
        with self._renders_lock:
            rendered = self._renders.get(key)
            if rendered is not None:
                self._renders.move_to_end(key)
                return rendered
        rendered = self._render(messages)
        with self._renders_lock:
            self._renders[key] = rendered
            while len(self._renders) > RENDER_CACHE:
                self._renders.popitem(last=False)
        return rendered

    def _render(self, messages: Sequence[Message]) -> RenderedPrompt:
        result = self._formatter(messages=list(messages))
        # As llama-cpp-python's own chat handlers do: no second BOS when the template has one.
        add_bos = not getattr(result, "added_special", False)
        tokens = self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=add_bos, special=True)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return RenderedPrompt(list(tokens), [s for s in stop if s])

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        prompt = self.render(messages)
        if len(prompt.tokens) >= self.n_ctx:
            raise ContextLengthError(
                f"the prompt takes {len(prompt.tokens)} tokens, but the context holds {self.n_ctx}",
                tokens=len(prompt.tokens),
                limit=self.n_ctx - 1,
            )
        with self.lock:
            if threading.get_ident() == self._thread_id:
                yield from self._stream_locked(prompt, params)
            else:
                yield from relay(lambda: self._stream_locked(prompt, params), self._thread)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Call `fn` on the thread that drives llama.cpp (for direct use of `self.llm`)."""
        if threading.get_ident() == self._thread_id:
            return fn()
        return self._thread.submit(fn).result()

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
            choice: Any = chunk["choices"][0]
            if choice["text"] or not choice.get("finish_reason"):
                produced += 1  # one streamed piece per token; the closing piece has none
            yield Delta(choice["text"], choice.get("finish_reason"), min(produced, max_tokens))


def _fitting_context(settings: LlmSettings, path: Path) -> int:
    """The trained context of the model, capped by `llm.ram_budget_mb`."""
    return ModelCatalog(settings).n_ctx(read_gguf(path))


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
