"""API benchmark: /ask latency under 1, 4 and 16 concurrent clients, time to first
token, and streaming tokens/s against raw llama-cpp-python on the same prompt.

    python bench/api.py [--max-tokens 32] [--rounds 2]

A real `rag serve` in its own process on 127.0.0.1, the real models, an index of docs/;
the clients run in this process. The raw figure is llama-cpp-python alone, in this
process after the server has stopped, generating from exactly the prompt tokens the
server used, with the same sampling settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/

import httpx

from bench.serving import ingest_docs, percentile, rag_server
from rag.config import load_settings
from rag.generators.base import GenerationParams
from rag.hardware import processor_line
from rag.pipeline import Pipeline

QUESTION = "How do I ingest a folder of documents?"
STREAM_QUESTION = "Which settings change how answers are generated?"
FRESH_QUESTION = "What does the server answer while the models are loading?"
REPEATS = 5  # streamed and raw runs; the median of each is compared


async def load(url: str, clients: int, rounds: int, max_tokens: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=600) as client:

        async def one() -> None:
            nonlocal errors
            for _ in range(rounds):
                t0 = time.perf_counter()
                r = await client.post(
                    url + "/ask", json={"question": QUESTION, "max_tokens": max_tokens, "seed": 1}
                )
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        await asyncio.gather(*(one() for _ in range(clients)))
    return latencies, errors


def stream(url: str, question: str, max_tokens: int) -> dict[str, Any]:
    """One streamed /ask: time to first token, tokens and their rate after the first."""
    body = {"question": question, "max_tokens": max_tokens, "stream": True, "seed": 1, "temperature": 0.0}
    t0 = time.perf_counter()
    first = last = 0.0
    usage: dict[str, int] = {}
    with httpx.stream("POST", url + "/ask", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("event: token"):
                last = time.perf_counter() - t0
                first = first or last
            elif line.startswith("data:") and '"completion_tokens"' in line:
                usage = json.loads(line[5:])["usage"]
    return {
        "ttft": first,
        "total": time.perf_counter() - t0,
        "tokens": usage["completion_tokens"],
        "prompt_tokens": usage["prompt_tokens"],
    }


def raw_rate(pipeline: Pipeline, question: str, max_tokens: int) -> tuple[int, float, int]:
    """llama-cpp-python alone on the same prompt: (tokens, seconds, prompt tokens)."""
    params = GenerationParams.from_settings(pipeline.settings.llm).with_overrides(
        max_tokens=max_tokens, temperature=0.0, seed=1
    )
    generator: Any = pipeline.generator
    rendered = generator.render(pipeline.prepare(question, params=params).prompt.messages)
    llm = generator.llm

    def run() -> tuple[int, float]:
        llm.set_seed(1)
        t0 = time.perf_counter()
        n = sum(
            1
            for c in llm.create_completion(
                prompt=rendered.tokens,
                max_tokens=max_tokens,
                temperature=0.0,
                top_p=params.top_p,
                top_k=params.top_k,
                repeat_penalty=params.repeat_penalty,
                stop=rendered.stop or None,
                stream=True,
            )
            if c["choices"][0]["text"]
        )
        return n, time.perf_counter() - t0

    generator.run(run)  # the prompt read once, as the server had it cached
    runs = [generator.run(run) for _ in range(REPEATS)]
    n, seconds = sorted(runs, key=lambda r: r[0] / r[1])[len(runs) // 2]
    return n, seconds, len(rendered.tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=32, help="Answer length under load.")
    parser.add_argument("--rounds", type=int, default=2, help="Requests per client.")
    parser.add_argument("--stream-tokens", type=int, default=128, help="Answer length streamed.")
    args = parser.parse_args()
    print(processor_line())
    with tempfile.TemporaryDirectory() as tmp:
        env = {"RAG_INDEXES_DIR": tmp, "RAG_SERVER__QUEUE_SIZE": "32"}
        settings = load_settings(overrides={"indexes_dir": tmp})
        ingest_docs(env)
        with rag_server(env, Path(tmp) / "serve.log") as (url, _):
            asyncio.run(load(url, 1, 1, args.max_tokens))  # warm-up
            for clients in (1, 4, 16):
                lat, errors = asyncio.run(load(url, clients, args.rounds, args.max_tokens))
                print(
                    f"/ask {clients:>2} clients  n={len(lat):<3} p50 "
                    f"{statistics.median(lat):6.2f} s  p95 {percentile(lat, 95):6.2f} s  "
                    f"errors {errors}"
                )
            fresh = stream(url, FRESH_QUESTION, 8)
            stream(url, STREAM_QUESTION, args.stream_tokens)  # its prompt now cached
            runs = [stream(url, STREAM_QUESTION, args.stream_tokens) for _ in range(REPEATS)]
            streamed = sorted(runs, key=lambda r: r["tokens"] / r["total"])[len(runs) // 2]
        pipeline = Pipeline.from_settings(settings)
        raw_tokens, raw_seconds, prompt_tokens = raw_rate(pipeline, STREAM_QUESTION, args.stream_tokens)
    http_rate = streamed["tokens"] / streamed["total"]
    raw = raw_tokens / raw_seconds
    print(
        f"time to first token    {fresh['ttft']:.2f} s for a new question "
        f"({fresh['prompt_tokens']} prompt tokens read)"
    )
    print(f"                       {streamed['ttft']:.2f} s when the prompt was cached")
    print(
        f"streaming tokens/s     {http_rate:.1f} over HTTP, request to last byte "
        f"({streamed['tokens']} tokens, {streamed['prompt_tokens']}-token prompt, cached; "
        f"median of {REPEATS})"
    )
    print(
        f"raw llama tokens/s     {raw:.1f} ({raw_tokens} tokens, {prompt_tokens}-token prompt, "
        f"cached; median of {REPEATS})"
    )
    print(f"ratio                  {http_rate / raw:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
