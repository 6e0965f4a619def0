"""`llm.kind = openai` against a real llama_cpp.server (tests/llmserver.py): exact counts,
the key, the context size, the server's failures as our errors, and their HTTP mapping.

The generator contract itself (streaming, stops, seeds, threads) runs in
test_generation.py. Servers that fail on purpose (refusing, silent, 5xx) and one that
speaks llama-server's /props, /apply-template and /tokenize are small local HTTP servers.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import describe
from rag.config import load_settings
from rag.errors import (
    ContextLengthError,
    InferenceAuthError,
    InferenceServerError,
    InferenceTimeoutError,
    InferenceUnavailableError,
)
from rag.generators import make_generator
from rag.generators.base import GenerationParams
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.generators.openai_server import OpenAIGenerator, estimate_tokens
from rag.pipeline import Pipeline
from tests.llmserver import N_CTX, LlmServer, free_port, llm_server, openai_generator  # noqa: F401

PARAMS = GenerationParams(max_tokens=16, temperature=0.0, seed=1)
CONVERSATIONS = [
    [{"role": "user", "content": "How long do cats sleep?"}],
    [
        {"role": "system", "content": "Answer from the numbered sources and cite them like [1]."},
        {
            "role": "user",
            "content": "Sources:\n\n[1] (cats.md)\nCats sleep about sixteen hours a "
            "day.\n\nQuestion: How long do cats sleep?",
        },
    ],
    [
        {"role": "system", "content": "Réponds en français."},
        {"role": "user", "content": "Où est l'Etna ?"},
        {"role": "assistant", "content": "En Sicile [1]."},
        {"role": "user", "content": "Et le pain, à quelle température cuit-il ?"},
    ],
]


def settings_for(server: LlmServer, **more: Any) -> Any:
    return load_settings(overrides=server.overrides(**more)).llm


def test_counts_are_the_models_own(
    openai_generator: OpenAIGenerator,  # noqa: F811
    generator: LlamaCppGenerator,
) -> None:
    """The same GGUF in process and behind the server: the same counts, even past n_ctx."""
    assert openai_generator.count_method == "usage"
    for messages in [*CONVERSATIONS, [{"role": "user", "content": "word " * 3000}]]:
        assert openai_generator.count_tokens(messages) == generator.count_tokens(messages)
    assert openai_generator.count_tokens([{"role": "user", "content": "word " * 3000}]) > N_CTX


def test_answers_as_the_model_in_process(
    openai_generator: OpenAIGenerator,  # noqa: F811
    generator: LlamaCppGenerator,
) -> None:
    short = PARAMS.with_overrides(max_tokens=8)
    for messages in CONVERSATIONS[1:2]:
        served = "".join(d.text for d in openai_generator.stream(messages, short))
        local = "".join(d.text for d in generator.stream(messages, short))
        assert served == local and served.strip()


def test_context_size_and_name(openai_generator: OpenAIGenerator) -> None:  # noqa: F811
    # llama_cpp.server does not tell its context size: the setting holds.
    assert openai_generator.n_ctx == N_CTX
    assert openai_generator.name == "SmolLM2-135M-Instruct.Q4_1"


def test_the_servers_context_error_is_ours(llm_server: LlmServer) -> None:  # noqa: F811
    """Told a bigger context than the server's, the generator learns the server's from its
    refusal, and refuses the prompt with the server's count."""
    wrong = OpenAIGenerator(settings_for(llm_server, **{"llm.n_ctx": 8192}))
    try:
        assert wrong.n_ctx == 8192
        huge = [{"role": "user", "content": "word " * 3000}]
        with pytest.raises(ContextLengthError, match="3031 tokens, but the context holds 2048") as caught:
            list(wrong.stream(huge, PARAMS))
        assert caught.value.tokens == 3031 and wrong.n_ctx == N_CTX
    finally:
        wrong.close()


def test_estimate_counts_high_and_keeps_a_margin(
    llm_server: LlmServer,  # noqa: F811
    generator: LlamaCppGenerator,
) -> None:
    estimating = OpenAIGenerator(
        settings_for(llm_server, **{"llm.count": "estimate", "llm.context_margin": 100})
    )
    try:
        assert estimating.count_method == "estimate" and estimating.n_ctx == N_CTX - 100
        # With a system message: SmolLM2's template adds one of its own to a conversation
        # without (30 tokens no estimate sees; what llm.context_margin is for).
        for messages in CONVERSATIONS[1:]:
            exact = generator.count_tokens(messages)
            assert exact <= estimating.count_tokens(messages) <= 2 * exact
        assert "".join(d.text for d in estimating.stream(CONVERSATIONS[0], PARAMS)).strip()
    finally:
        estimating.close()


def test_a_server_without_templates_refuses_count_template(llm_server: LlmServer) -> None:  # noqa: F811
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="apply-template"):
        OpenAIGenerator(settings_for(llm_server, **{"llm.count": "template"}))


def test_the_key_is_sent_and_never_logged(
    llm_server: LlmServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    made = make_generator(settings_for(llm_server))
    assert isinstance(made, OpenAIGenerator)
    made.close()
    assert llm_server.api_key not in caplog.text and "inference server" in caplog.text
    for key in (None, "wrong-key"):
        with pytest.raises(InferenceAuthError, match="401") as caught:
            OpenAIGenerator(settings_for(llm_server, **{"llm.api_key": key}))
        assert llm_server.api_key not in str(caught.value)


# -- servers that fail ------------------------------------------------------------------


@contextmanager
def http_server(handle: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def openai_settings(base_url: str, **more: Any) -> Any:
    return load_settings(overrides={"llm.kind": "openai", "llm.base_url": base_url, **more}).llm


def test_connection_refused_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(InferenceUnavailableError, match="cannot reach the inference server at " + url):
        OpenAIGenerator(openai_settings(url))


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listening:  # accepts connections (the backlog) and never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        url = f"http://127.0.0.1:{listening.getsockname()[1]}/v1"
        with pytest.raises(InferenceTimeoutError, match="did not answer within 0.5 s"):
            OpenAIGenerator(openai_settings(url, **{"llm.timeout": 0.5}))


def test_5xx_and_replies_not_understood_are_server_errors() -> None:
    def failing(h: BaseHTTPRequestHandler) -> None:
        reply(h, 500, {"error": {"message": "CUDA out of memory", "type": "server_error"}})

    with http_server(failing) as url, pytest.raises(InferenceServerError, match=r"failed \(500\): CUDA"):
        OpenAIGenerator(openai_settings(url))

    def garbled(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()
        h.wfile.write(b"<html>proxy login</html>")

    with http_server(garbled) as url, pytest.raises(InferenceServerError, match="not JSON"):
        OpenAIGenerator(openai_settings(url))


def test_the_api_maps_inference_errors_in_its_one_place() -> None:
    cases = [
        (InferenceTimeoutError("t"), 504, "inference_timeout"),
        (InferenceUnavailableError("u"), 503, "inference_unavailable"),
        (InferenceAuthError("a"), 502, "inference_auth"),
        (InferenceServerError("s"), 502, "inference_error"),
    ]
    for exc, status, code in cases:
        got, body = describe(exc)
        assert (got, body["error"]["code"]) == (status, code)


def test_a_server_gone_is_503_on_ask(pipeline: Pipeline, llm_server: LlmServer) -> None:  # noqa: F811
    gone = OpenAIGenerator(settings_for(llm_server))
    gone.base_url = f"http://127.0.0.1:{free_port()}/v1"  # as if the server went down after start
    served = Pipeline(pipeline.settings, pipeline.embedder, gone)
    with TestClient(create_app(pipeline.settings, served)) as client:
        r = client.post("/ask", json={"question": "What does a cat eat?", "max_tokens": 8})
    gone.close()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "inference_unavailable"
    assert "cannot reach the inference server" in r.json()["error"]["message"]


# -- llama-server's own routes ----------------------------------------------------------


def llama_server_like(h: BaseHTTPRequestHandler) -> None:
    """What llama-server answers on the routes the generator reads (a fast stand-in)."""
    length = int(h.headers.get("content-length") or 0)
    body = json.loads(h.rfile.read(length)) if length else {}
    if h.path == "/v1/models":
        reply(h, 200, {"object": "list", "data": [{"id": "served.gguf", "meta": {"n_ctx_train": 8192}}]})
    elif h.path == "/props":
        reply(h, 200, {"default_generation_settings": {"n_ctx": 3072}, "total_slots": 1})
    elif h.path == "/apply-template":
        prompt = "".join(f"<|{m['role']}|>{m['content']}\n" for m in body["messages"]) + "<|assistant|>"
        reply(h, 200, {"prompt": prompt})
    elif h.path == "/tokenize":
        reply(h, 200, {"tokens": list(range(len(body["content"].split()) + bool(body.get("add_special"))))})
    else:
        reply(h, 404, {"error": {"message": "not found", "code": 404}})


def test_template_counting_and_the_servers_context() -> None:
    with http_server(llama_server_like) as url:
        made = OpenAIGenerator(openai_settings(url, **{"llm.n_ctx": 1024}))
        assert made.count_method == "template" and made.n_ctx == 3072  # /props wins over the setting
        assert made.name == "served"
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a b c"}]
        # "<|system|>Be brief.\n<|user|>a b c\n<|assistant|>" is 6 words; 1 more for the BOS
        assert made.count_tokens(messages) == 7
        made.close()


def test_estimate_is_a_bound_from_bytes() -> None:
    assert estimate_tokens([{"role": "user", "content": "abc" * 10}]) == 10 + 2 * 8
    assert estimate_tokens([{"role": "user", "content": "é" * 3}]) == 2 + 2 * 8  # 6 bytes
