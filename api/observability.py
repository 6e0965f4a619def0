"""Observability: one structured log line per request and Prometheus metrics.

The log line (logger `rag.access`, logfmt) carries the route, status and duration, and,
for answers, the index, the token counts and the pipeline's timings. Routes add their
fields with `note(request, ...)`; the line is written when the response's last byte
has gone, so that streamed answers are logged with their final counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.types import Answer
from rag.util import printable

access_log = logging.getLogger("rag.access")

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self, queue_depth: Callable[[], int], index_chunks: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests",
            "HTTP requests by route and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds",
            "Time from request to last response byte.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "rag_answers",
            "Answers generated, by index and finish reason.",
            ["index", "finish_reason"],
            registry=self.registry,
        )
        self.completion_tokens = Counter("rag_completion_tokens", "Tokens generated.", registry=self.registry)
        self.prompt_tokens = Counter(
            "rag_prompt_tokens", "Prompt tokens read by the model.", registry=self.registry
        )
        self.first_token = Histogram(
            "rag_first_token_seconds",
            "Time from the start of generation to the first token.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        depth = Gauge(
            "rag_queue_depth", "Requests generating or waiting for the model.", registry=self.registry
        )
        depth.set_function(queue_depth)
        self.registry.register(_IndexSizes(index_chunks))

    def answered(self, index: str, answer: Answer) -> None:
        self.answers.labels(index, answer.finish_reason).inc()
        self.completion_tokens.inc(answer.usage.completion_tokens)
        self.prompt_tokens.inc(answer.usage.prompt_tokens)
        if "first_token" in answer.timings:
            self.first_token.observe(answer.timings["first_token"])


class _IndexSizes(Collector):
    def __init__(self, index_chunks: Callable[[], dict[str, int]]) -> None:
        self.index_chunks = index_chunks

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("rag_index_chunks", "Chunks in each index.", labels=["index"])
        for name, chunks in self.index_chunks().items():
            family.add_metric([name], chunks)
        yield family


def note(request: Request, **fields: Any) -> None:
    """Add fields to this request's log line."""
    request.scope.setdefault("state", {}).setdefault("rag_log", {}).update(fields)


def note_answer(request: Request, index: str, answer: Answer) -> None:
    """Log and count a finished answer."""
    note(
        request,
        index=index,
        prompt_tokens=answer.usage.prompt_tokens,
        completion_tokens=answer.usage.completion_tokens,
        finish=answer.finish_reason,
        **{k: round(v, 3) for k, v in answer.timings.items()},
    )
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.answered(index, answer)


class RequestLog:
    """ASGI middleware: a log line and the request metrics, once the response is done."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        done = False

        def finish() -> None:
            nonlocal done
            if done:
                return
            done = True
            self._record(scope, status, time.perf_counter() - start)

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()

        try:
            await self.app(scope, receive, watched)
        finally:
            finish()  # a client that went away, or an error before the last byte

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        fields = {
            "method": method,
            "route": route,
            "status": status,
            "duration": round(seconds, 4),
            **scope.get("state", {}).get("rag_log", {}),
        }
        access_log.info(" ".join(f"{k}={_value(v)}" for k, v in fields.items()))


def _value(value: Any) -> str:
    """A logfmt value, on the line's one line: quoted when it holds a space, a quote, '=',
    a backslash or a control character (a line break), with '"', '\\' and the control
    characters escaped."""
    text = str(value)
    if text and printable(text) == text and not any(c in text for c in ' "=\\'):
        return text
    return '"' + printable(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'
