"""Schemathesis against a live server's OpenAPI schema, with valid and invalid requests:
no 5xx, no status, content type or body off the schema."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from rag.pipeline import Pipeline
from tests.api.conftest import running_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
MAX_ANSWER_TOKENS = 8
EXAMPLES = 15  # per operation


def bounded(case: Any) -> Any:
    """Answers cut short so that examples stay quick; everything else as generated."""
    if isinstance(case.body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(case.body.get(key), int) and case.body[key] > MAX_ANSWER_TOKENS:
                case.body[key] = MAX_ANSWER_TOKENS
        if "question" in case.body or "messages" in case.body:
            case.body.setdefault("max_tokens", MAX_ANSWER_TOKENS)
    return case


def test_api_conforms_to_its_schema(pipeline: Pipeline, tmp_path: Path) -> None:
    served = pipeline.settings.model_copy(deep=True)
    served.server.upload_dir = tmp_path / "uploads"  # whatever the fuzzer uploads stays here
    served.server.ingest_roots = [tmp_path / "allowed"]
    with running_server(served, pipeline) as url:
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {"POST /ask", "POST /v1/chat/completions", "POST /v1/embeddings"} <= {
            op.label for op in operations}
        for operation, mode in itertools.product(operations, GenerationMode):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def check(case: Any) -> None:
                bounded(case).call_and_validate(base_url=url, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # no invalid request exists (a route without parameters)
                assert mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET"
