"""API benchmark: /ask latency under 1, 4 and 16 concurrent clients, time to first
token, and streaming tokens/s against raw llama-cpp-python on the same prompt.

    python bench/api.py [--max-tokens 32] [--rounds 2]

A real uvicorn server on 127.0.0.1 (random port), the real models, an index of docs/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from api.app import create_app  # noqa: E402
from ingest.worker import IngestWorker  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.generation import GenerationParams  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402

QUESTION = "How do I ingest a folder of documents?"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def load(url: str, clients: int, rounds: int, max_tokens: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=600) as client:
        async def one() -> None:
            nonlocal errors
            for _ in range(rounds):
                t0 = time.perf_counter()
                r = await client.post(url + "/ask", json={"question": QUESTION,
                                                          "max_tokens": max_tokens, "seed": 1})
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        await asyncio.gather(*(one() for _ in range(clients)))
    return latencies, errors


async def stream_once(url: str, max_tokens: int) -> tuple[float, int, float]:
    async with httpx.AsyncClient(timeout=600) as client:
        t0 = time.perf_counter()
        first, tokens = None, 0
        body = {"question": QUESTION, "max_tokens": max_tokens, "stream": True, "seed": 1,
                "temperature": 0.0}
        async with client.stream("POST", url + "/ask", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: token"):
                    first = first or time.perf_counter() - t0
                elif line.startswith("data:") and '"completion_tokens"' in line:
                    tokens = json.loads(line[5:])["usage"]["completion_tokens"]
        return first or 0.0, tokens, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="Requests per client.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(overrides={"indexes_dir": tmp, "server.queue_size": 32})
        pipeline = Pipeline.from_settings(settings)
        IngestWorker(settings, pipeline.embedder).run(ROOT / "docs")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(settings, pipeline), host="127.0.0.1",
                                               port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        asyncio.run(load(url, 1, 1, args.max_tokens))  # warm-up
        for clients in (1, 4, 16):
            lat, errors = asyncio.run(load(url, clients, args.rounds, args.max_tokens))
            print(f"/ask {clients:>2} clients  n={len(lat):<3} p50 {statistics.median(lat):6.2f} s"
                  f"  p95 {percentile(lat, 95):6.2f} s  errors {errors}")
        ttft, tokens, total = asyncio.run(stream_once(url, 128))
        prepared = pipeline.prepare(QUESTION, params=GenerationParams(max_tokens=128,
                                                                      temperature=0.0, seed=1))
        server.should_exit = True
        llm = pipeline.generator.llm  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        raw_tokens = sum(1 for c in llm.create_completion(
            prompt=prepared.prompt.rendered.tokens, max_tokens=128, temperature=0.0, seed=1,
            stop=prepared.prompt.rendered.stop, stream=True) if c["choices"][0]["text"])
        raw_total = time.perf_counter() - t0
    print(f"time to first token    {ttft:.2f} s (prompt {prepared.prompt.n_tokens} tokens)")
    print(f"streaming tokens/s     {tokens / total:.1f} over HTTP ({tokens} tokens)")
    print(f"raw llama tokens/s     {raw_tokens / raw_total:.1f} ({raw_tokens} tokens)")
    print(f"ratio                  {(tokens / total) / (raw_tokens / raw_total):.3f} "
          "(target >= 0.95)")


if __name__ == "__main__":
    main()
