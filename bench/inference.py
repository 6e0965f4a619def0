"""Inference benchmark: answers by the model in process vs behind an OpenAI-compatible server.

Ingests docs/, then asks the same questions through the whole pipeline (retrieval, prompt
within the budget, generation, attribution) with three generators: `llama-cpp` (the
packaged GGUF in this process), `openai` against llama-cpp-python's `llama_cpp.server`
serving the same GGUF on 127.0.0.1 (counts by a one-token completion's usage, the exact
way that server offers), and the same with `llm.count = estimate`. Both runtimes get the
same threads, and the server's cached prompt is replaced before each answer, so none
starts from another's prompt evaluation. Prints, per generator, the medians of: the
prompt build (its token counts), time to first token, total answer time; completion
tokens/s; the prompt's tokens as counted.

    python bench/inference.py [--questions 4] [--max-tokens 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from ingest.worker import IngestWorker
from rag.config import load_settings
from rag.embedders import make_embedder
from rag.generators.base import GenerationParams, Generator
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.generators.openai_server import OpenAIGenerator
from rag.hardware import processor_line
from rag.pipeline import DoneEvent, Pipeline, TokenEvent
from tests.llmserver import LlmServer

QUESTIONS = [
    "How do I ingest a folder of documents?",
    "Which file types can be ingested?",
    "How do I change the chunk size?",
    "Which environment variable sets the context size?",
    "How do I start the HTTP server?",
    "How can an OpenAI client talk to the service?",
    "How are API keys configured?",
    "Where are indexes stored?",
    "How are sources cited in answers?",
    "What happens when the question is too long?",
    "How do I delete an index?",
    "What does rag config print?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="for each runtime")
    args = parser.parse_args()
    print(processor_line())
    questions = QUESTIONS[: args.questions]
    server = LlmServer(threads=args.threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = {
                "indexes_dir": tmp,
                "llm.temperature": 0.0,
                "llm.seed": 1,
                "llm.n_ctx": 2048,
                "llm.n_threads": args.threads,
            }
            settings = load_settings(overrides=base)
            embedder = make_embedder(settings.embedder, threads=1)  # as `rag serve`
            IngestWorker(settings, embedder).run(ROOT / "docs")
            remote = load_settings(overrides={**base, **server.overrides()}).llm
            estimating = remote.model_copy(update={"count": "estimate"})
            generators: dict[str, Generator] = {
                "llama-cpp (in process)": LlamaCppGenerator(settings.llm),
                "openai, count=usage": OpenAIGenerator(remote),
                "openai, count=estimate": OpenAIGenerator(estimating),
            }
            pipelines = {name: Pipeline(settings, embedder, g) for name, g in generators.items()}
            params = GenerationParams.from_settings(settings.llm).with_overrides(max_tokens=args.max_tokens)
            rows: dict[str, list[dict[str, float]]] = {name: [] for name in pipelines}
            for pipeline in pipelines.values():
                run_one(pipeline, "warm-up: what is this service?", params)
            for question in questions:  # each question on every generator in turn: the same load
                for name, pipeline in pipelines.items():
                    forget(server)  # no server row starts from the prompt another left cached
                    rows[name].append(run_one(pipeline, question, params))
    finally:
        server.stop()
    print(
        f"questions {len(questions)}, max_tokens {args.max_tokens}, threads {args.threads} "
        f"per runtime, n_ctx 2048, model {generators['llama-cpp (in process)'].name}"
    )
    print(
        f"{'generator':<24} {'prompt ms':>10} {'first token ms':>15} {'total ms':>10} "
        f"{'tokens/s':>9} {'prompt tok':>11}   (medians; totals in s)"
    )
    for name, runs in rows.items():

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        tps = sum(r["tokens"] for r in runs) / sum(r["decode"] for r in runs)
        print(
            f"{name:<24} {med('prompt') * 1000:>10.0f} {med('first') * 1000:>15.0f} "
            f"{med('total') * 1000:>10.0f} {tps:>9.1f} {med('prompt_tokens'):>11.0f}   "
            f"(total {sum(r['total'] for r in runs):.1f} s)"
        )


def forget(server: LlmServer) -> None:
    """The server's cached prompt replaced by another (llama.cpp keeps the last one only)."""
    httpx.post(
        server.base_url + "/chat/completions",
        timeout=120,
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={"messages": [{"role": "user", "content": "Hello."}], "max_tokens": 1},
    )


def run_one(pipeline: Pipeline, question: str, params: GenerationParams) -> dict[str, float]:
    start = time.perf_counter()
    first = None
    answer = None
    for event in pipeline.stream(question, params=params):
        if isinstance(event, TokenEvent) and first is None:
            first = time.perf_counter() - start
        if isinstance(event, DoneEvent):
            answer = event.answer
    total = time.perf_counter() - start
    assert answer is not None
    first = total if first is None else first
    return {
        "prompt": answer.timings.get("prompt", 0.0),
        "first": first,
        "total": total,
        "decode": max(answer.timings["generate"] - answer.timings.get("first_token", 0.0), 1e-9),
        "tokens": answer.usage.completion_tokens,
        "prompt_tokens": answer.usage.prompt_tokens,
    }


if __name__ == "__main__":
    main()
