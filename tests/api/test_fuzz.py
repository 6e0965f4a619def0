"""Schemathesis against a live server's OpenAPI schema, with valid and invalid requests:
no 5xx, no status, content type or body off the schema; streamed answers well formed.

Run twice: without keys, and with a key (sent with every request, and checked to be
required: a request without it or with a wrong one must be refused)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from rag.pipeline import Pipeline
from tests.api.conftest import running_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_ANSWER_TOKENS = 8
EXAMPLES = 15  # per operation and mode
STREAMED = {"POST /ask", "POST /v1/chat/completions"}
KEY = "fuzz-key-4f1c"
seen_streams: set[str] = set()  # routes that answered with a well-formed event stream


def bounded(case: Any) -> Any:
    """Answers cut short so that examples stay quick; everything else as generated."""
    if isinstance(case.body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(case.body.get(key), int) and case.body[key] > MAX_ANSWER_TOKENS:
                case.body[key] = MAX_ANSWER_TOKENS
        if ("question" in case.body or "messages" in case.body) and case.body.get("max_tokens") is None:
            case.body["max_tokens"] = MAX_ANSWER_TOKENS
    return case


def streamed(case: Any) -> Any:
    """The same request, asking for server-sent events; a chat request is made answerable
    (the index that exists, a last user message), so that most streams really run."""
    if isinstance(case.body, dict):
        case.body["stream"] = True
        if isinstance(case.body.get("messages"), list):
            case.body["model"] = "default"
            case.body["messages"].append({"role": "user", "content": "Where is Etna?"})
    return case


@schemathesis.check
def well_formed_stream(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 200 event stream: every data line JSON (or [DONE]), and it ends as its route says
    (`[DONE]` on /v1, a `done` or `error` event on /ask); an error event is OpenAI-shaped
    and never a server error."""
    if response.status_code != 200 or "text/event-stream" not in "".join(
        response.headers.get("content-type", [])
    ):
        return None
    events = [e for e in response.content.decode(errors="replace").split("\n\n") if e.strip()]
    assert events, "empty event stream"
    cut = response.stream_cut_short or response.content_size > len(response.content)
    if cut:  # schemathesis kept only the head of the stream: its last event may be partial
        events = events[:-1]
    names, payloads = [], []
    for event in events:
        fields = dict(line.split(": ", 1) for line in event.splitlines())
        names.append(fields.get("event"))
        payloads.append(fields["data"])
    for data in payloads:
        if data != "[DONE]":
            parsed = json.loads(data)
            if isinstance(parsed, dict) and "error" in parsed:
                assert set(parsed["error"]) == {"message", "type", "param", "code"}, parsed
                assert parsed["error"]["type"] != "server_error", parsed
    if cut:
        return None
    if case.path.startswith("/v1/"):
        assert payloads[-1] == "[DONE]", payloads[-1]
    else:
        assert names[-1] in ("done", "error"), names[-1]
    seen_streams.add(case.path)
    return True


def fuzz(url: str, headers: dict[str, str], checks: list[Any]) -> None:
    schema = schemathesis.openapi.from_url(url + "/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /ask", "POST /v1/chat/completions", "POST /v1/embeddings"} <= labels
    runs = [(op, mode, bounded) for op, mode in itertools.product(operations, GenerationMode)]
    runs += [
        (op, GenerationMode.POSITIVE, lambda c: streamed(bounded(c)))
        for op in operations
        if op.label in STREAMED
    ]
    for operation, mode, prepare in runs:
        fuzz_operation(url, headers, checks, operation, mode, prepare)


def fuzz_operation(
    url: str,
    headers: dict[str, str],
    checks: list[Any],
    operation: Any,
    mode: GenerationMode,
    prepare: Callable[[Any], Any],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        prepare(case).call_and_validate(base_url=url, headers=headers, checks=checks)

    try:
        check()
    except Unsatisfiable:  # no invalid request exists (a route without parameters)
        assert mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET"


@pytest.mark.parametrize("key", [None, KEY], ids=["open", "with-key"])
def test_api_conforms_to_its_schema(pipeline: Pipeline, tmp_path: Path, key: str | None) -> None:
    served = pipeline.settings.model_copy(deep=True)
    served.server.upload_dir = tmp_path / "uploads"  # whatever the fuzzer uploads stays here
    served.server.ingest_roots = [tmp_path / "allowed"]
    served.server.api_keys = [key] if key else []  # type: ignore[list-item]  # validated into SecretStr
    served.server.auth_failures = 1_000_000  # the fuzzer sends wrong keys on purpose, from one address
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    checks = [*CHECKS, well_formed_stream, *([ignored_auth] if key else [])]
    seen_streams.clear()
    with running_server(served, pipeline) as url:
        if key:  # the schema itself is behind the key
            assert httpx.get(url + "/openapi.json").status_code == 401
        fuzz(url, headers, checks)
    assert seen_streams == {"/ask", "/v1/chat/completions"}
