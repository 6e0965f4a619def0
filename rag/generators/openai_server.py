"""Generation by an OpenAI-compatible inference server (`llm.kind = "openai"`).

Any server with `/v1/chat/completions` will do: llama.cpp's llama-server, vLLM, Ollama,
llama-cpp-python's `llama_cpp.server`. The prompt builder needs exact counts, and how a
server can give them differs, so the server is probed once at start (`llm.count`):

- **template**: llama-server renders the messages with the model's chat template
  (`POST /apply-template`) and tokenizes the result (`POST /tokenize`): two small
  requests, exact, no model run.
- **usage**: the `prompt_tokens` a one-token completion reports: exact on every server,
  at the cost of one prompt evaluation (which llama.cpp keeps cached for the answer that
  follows). A prompt too long for the context is refused by the server, and its error
  says how many tokens it took.
- **estimate**: for a server that reports no usage: a third of the UTF-8 bytes (BPE
  tokenizers make 3.5 to 5 bytes a token of English or French prose) plus a frame per
  message, and `llm.context_margin` tokens of the context kept free.

The context size is the server's when it tells it (llama-server's `/props`, vLLM's
`max_model_len` in `/v1/models`), else `llm.n_ctx`. The server's failures become the
errors of `rag.errors`; the key is sent as a bearer token and never logged.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from rag.config import LlmSettings
from rag.errors import (
    ConfigError,
    ContextLengthError,
    InferenceAuthError,
    InferenceServerError,
    InferenceTimeoutError,
    InferenceUnavailableError,
    RagError,
)
from rag.generators.base import Delta, GenerationParams, Generator, Message

logger = logging.getLogger(__name__)

COUNT_CACHE = 256  # counts kept: those of a few requests' prompt building
BYTES_PER_TOKEN = 3  # estimate: fewer bytes a token than prose has, so counts run high
MESSAGE_FRAME = 8  # estimate: tokens a chat template puts around a message (ChatML: 5)
DEFAULT_N_CTX = 4096
# How servers say how long a refused prompt was: OpenAI and llama_cpp.server
# ("... you requested 3032 tokens (3031 in the messages, 1 in the completion)"),
# llama-server ("the request exceeds the available context size ... request (3031 tokens)").
_PROMPT_TOKENS = [re.compile(r"(\d+) in the messages"), re.compile(r"\((\d+) tokens\)")]
_SERVER_N_CTX = [re.compile(r"maximum context length is (\d+)"), re.compile(r"context window of (\d+)")]
_CONTEXT_WORDS = ("context length", "context size", "context window", "maximum context")


class OpenAIGenerator(Generator):
    """A chat model behind an OpenAI-compatible HTTP API; counts as the server can."""

    kind = "openai"

    def __init__(self, settings: LlmSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = settings.base_url.rstrip("/")
        self._root = self.base_url.removesuffix("/v1")
        self._timeout = settings.timeout
        headers = {}
        if settings.api_key is not None and settings.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._http = httpx.Client(headers=headers, timeout=settings.timeout, transport=transport)
        self._counts: OrderedDict[tuple[tuple[str, str], ...], int] = OrderedDict()
        self._counts_lock = threading.Lock()
        self._margin = 0  # the context kept free: context_margin, once counts are estimates
        listed = self._models()
        self.model = settings.server_model or (str(listed[0]["id"]) if listed else "default")
        self.name = self.model.rsplit("/", 1)[-1].removesuffix(".gguf")
        told = self._told_n_ctx(listed)
        self.n_ctx = told or settings.n_ctx or DEFAULT_N_CTX
        self.count_method = self._choose_count(settings.count)
        if self.count_method == "estimate":
            self._margin = settings.context_margin
            self.n_ctx -= self._margin
        logger.info(
            "inference server base_url=%s model=%s n_ctx=%d n_ctx_from=%s count=%s",
            self.base_url,
            self.model,
            self.n_ctx,
            "server" if told else "settings",
            self.count_method,
        )

    def close(self) -> None:
        self._http.close()

    # -- counting -----------------------------------------------------------------

    def count_tokens(self, messages: Sequence[Message]) -> int:
        key = tuple((m["role"], m["content"]) for m in messages)
        with self._counts_lock:
            if key in self._counts:
                self._counts.move_to_end(key)
                return self._counts[key]
        plain = [{"role": role, "content": content} for role, content in key]
        if self.count_method == "template":
            n = self._count_by_template(plain)
        elif self.count_method == "usage":
            n = self._count_by_usage(plain)
        else:
            n = estimate_tokens(plain)
        with self._counts_lock:
            self._counts[key] = n
            while len(self._counts) > COUNT_CACHE:
                self._counts.popitem(last=False)
        return n

    def _count_by_template(self, messages: list[Message]) -> int:
        prompt = self._post(self._root + "/apply-template", {"messages": messages}).get("prompt")
        if not isinstance(prompt, str):
            raise InferenceServerError("the inference server's /apply-template sent no prompt")
        tokens = self._post(
            self._root + "/tokenize", {"content": prompt, "add_special": True, "parse_special": True}
        )
        if not isinstance(tokens.get("tokens"), list):
            raise InferenceServerError("the inference server's /tokenize sent no tokens")
        return len(tokens["tokens"])

    def _count_by_usage(self, messages: list[Message]) -> int:
        body = {"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0.0}
        try:
            reply = self._post(self.base_url + "/chat/completions", body)
        except ContextLengthError as exc:
            return exc.tokens  # the server said how long it was, or at least too long
        usage = reply.get("usage") or {}
        if not isinstance(usage.get("prompt_tokens"), int):
            raise InferenceServerError("the inference server reported no usage.prompt_tokens")
        return int(usage["prompt_tokens"])

    # -- generation ---------------------------------------------------------------

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        n = self.count_tokens(messages)
        if n >= self.n_ctx:
            raise ContextLengthError(
                f"the prompt takes {n} tokens, but the context holds {self.n_ctx}",
                tokens=n,
                limit=self.n_ctx - 1,
            )
        max_tokens = min(params.max_tokens, self.n_ctx - n)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            # Not in OpenAI's API, but read by llama.cpp's servers and vLLM (others ignore them).
            "top_k": params.top_k,
            "repeat_penalty": params.repeat_penalty,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        yield from self._stream(body, n, max_tokens)

    def _stream(self, body: dict[str, Any], n_prompt: int, max_tokens: int) -> Iterator[Delta]:
        produced, finish, reported = 0, None, None
        try:
            with self._http.stream("POST", self.base_url + "/chat/completions", json=body) as r:
                if r.status_code >= 400:
                    r.read()
                    raise self._error(r.status_code, r.text, n_prompt)
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = _json(data)
                    if "error" in chunk:
                        raise self._error(500, data, n_prompt)
                    usage = chunk.get("usage")
                    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                        reported = int(usage["completion_tokens"])
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        if text:
                            produced += 1  # a piece per token on llama.cpp; some send more
                            yield Delta(text, None, min(produced, max_tokens))
                        finish = choice.get("finish_reason") or finish
        except GeneratorExit:  # the caller stopped: the closed connection stops the server
            logger.debug("answer stream closed early completion_tokens=%d", produced)
            raise
        except httpx.TimeoutException as exc:
            raise self._timed_out() from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if finish is None:  # llama_cpp.server ends a stream so when it fails once streaming
            raise InferenceServerError(
                "the inference server ended the answer without a finish reason (its log says "
                "why: a context smaller than llm.n_ctx, or a newer request that interrupted it)"
            )
        tokens = reported if reported is not None else produced
        yield Delta("", "length" if finish == "length" else "stop", min(tokens, max_tokens))

    # -- the server ---------------------------------------------------------------

    def _models(self) -> list[dict[str, Any]]:
        listed = self._post(self.base_url + "/models", None).get("data")
        return [m for m in listed if isinstance(m, dict) and "id" in m] if isinstance(listed, list) else []

    def _told_n_ctx(self, listed: list[dict[str, Any]]) -> int | None:
        props = self._probe("GET", self._root + "/props", None)  # llama-server
        if props:
            settings = props.get("default_generation_settings") or {}
            for value in (settings.get("n_ctx"), props.get("n_ctx")):
                if isinstance(value, int) and value > 0:
                    return value
        for entry in listed:  # vLLM
            if entry.get("id") == self.model and isinstance(entry.get("max_model_len"), int):
                return int(entry["max_model_len"])
        return None

    def _choose_count(self, wanted: str) -> str:
        if wanted in ("auto", "template"):
            rendered = self._probe(
                "POST", self._root + "/apply-template", {"messages": [{"role": "user", "content": "hi"}]}
            )
            tokens = self._probe("POST", self._root + "/tokenize", {"content": "hi"})
            if rendered and isinstance(rendered.get("prompt"), str) and tokens and "tokens" in tokens:
                return "template"
            if wanted == "template":
                raise ConfigError(
                    f"llm.count = 'template', but the inference server at "
                    f"{self.base_url} has no /apply-template and /tokenize"
                )
        if wanted in ("auto", "usage"):
            usage = self._count_probe()
            if usage:
                return "usage"
            if wanted == "usage":
                raise ConfigError(
                    f"llm.count = 'usage', but the inference server at "
                    f"{self.base_url} reports no usage.prompt_tokens"
                )
        return "estimate"

    def _count_probe(self) -> bool:
        body = {
            "model": self.model,
            "max_tokens": 1,
            "temperature": 0.0,
            "messages": [{"role": "user", "content": "hi"}],
        }
        reply = self._post(self.base_url + "/chat/completions", body)
        return isinstance((reply.get("usage") or {}).get("prompt_tokens"), int)

    def _probe(self, method: str, url: str, body: Any) -> dict[str, Any] | None:
        """A JSON reply, or None where the server has no such route."""
        try:
            return self._call(method, url, body)
        except (ContextLengthError, InferenceAuthError, InferenceUnavailableError):
            raise
        except RagError:
            return None

    def _post(self, url: str, body: Any) -> dict[str, Any]:
        return self._call("GET" if body is None else "POST", url, body)

    def _call(self, method: str, url: str, body: Any) -> dict[str, Any]:
        try:
            r = self._http.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            raise self._timed_out() from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if r.status_code >= 400:
            raise self._error(r.status_code, r.text, None)
        return _json(r.text)

    def _learn_n_ctx(self, told: int | None) -> None:
        """A context size the server's error tells, smaller than ours, is the one to keep."""
        current = getattr(self, "n_ctx", None)
        if told and current and told - self._margin < current:
            logger.warning(
                "inference server context is smaller than llm.n_ctx n_ctx=%d server=%d", current, told
            )
            self.n_ctx = told - self._margin

    def _timed_out(self) -> InferenceTimeoutError:
        return InferenceTimeoutError(
            f"the inference server at {self.base_url} did not answer within {self._timeout:g} s"
        )

    def _unreachable(self, exc: Exception) -> InferenceUnavailableError:
        return InferenceUnavailableError(
            f"cannot reach the inference server at {self.base_url}: {exc or type(exc).__name__}"
        )

    def _error(self, status: int, text: str, n_prompt: int | None) -> RagError:
        message, code, fields = _error_message(text)
        lowered = message.lower()
        if status in (401, 403):
            return InferenceAuthError(
                f"the inference server at {self.base_url} refused the key ({status}: {message}); "
                "check llm.api_key"
            )
        if code == "context_length_exceeded" or any(w in lowered for w in _CONTEXT_WORDS):
            said = fields.get("n_prompt_tokens") or _first_number(_PROMPT_TOKENS, message)
            self._learn_n_ctx(fields.get("n_ctx") or _first_number(_SERVER_N_CTX, message))
            tokens = said or n_prompt or getattr(self, "n_ctx", 0) + 1
            limit = getattr(self, "n_ctx", tokens) - 1
            return ContextLengthError(
                f"the inference server refused the prompt: {message}", tokens=tokens, limit=limit
            )
        kind = "failed" if status >= 500 else "refused the request"
        return InferenceServerError(f"the inference server {kind} ({status}): {message}")


def _first_number(patterns: list[re.Pattern[str]], text: str) -> int | None:
    return next((int(m.group(1)) for p in patterns if (m := p.search(text))), None)


def estimate_tokens(messages: Sequence[Message]) -> int:
    """At least the tokens most chat templates and tokenizers make of these messages."""
    content = sum(math.ceil(len(m["content"].encode("utf-8")) / BYTES_PER_TOKEN) for m in messages)
    return content + MESSAGE_FRAME * (len(messages) + 1)  # +1: the answer's own opening


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InferenceServerError(f"the inference server sent what is not JSON: {text[:120]!r}") from exc
    if not isinstance(value, dict):
        raise InferenceServerError(f"the inference server sent an unexpected reply: {text[:120]!r}")
    return value


def _error_message(text: str) -> tuple[str, str | None, dict[str, int]]:
    """The message, code and numbers of an error reply, whatever its shape (OpenAI's,
    FastAPI's; llama-server adds `n_prompt_tokens` and `n_ctx` to a context error)."""
    try:
        body = json.loads(text)
    except ValueError:
        return (" ".join(text.split())[:300] or "no message"), None, {}
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or json.dumps(error)[:300]
        code = error.get("code")
        numbers = {k: v for k, v in error.items() if k in ("n_prompt_tokens", "n_ctx") and isinstance(v, int)}
        return str(message), str(code) if code is not None else None, numbers
    return str(error)[:300], None, {}
