"""Load and soak benchmark: concurrent clients mixing every answering route.

    python bench/load.py [--clients 16] [--duration 60] [--max-tokens 16]
    python bench/load.py --duration 600          # the 10-minute soak

A real `rag serve` in its own process with an index of docs/; the clients run in this
process. Each client loops over /ask, /v1/chat/completions (plain and streamed) and
/v1/embeddings. Printed: requests/s, p50/p95/p99 latency per route and overall,
errors (anything but 200 and the documented 429), and the server's RSS at start and
end, sampled along the way.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/

import httpx
import psutil

from bench.serving import ingest_docs, percentile, rag_server
from rag.hardware import processor_line

QUESTIONS = [
    "How do I ingest a folder of documents?",
    "Which port does the server use?",
    "What does rag eval measure?",
    "How are API keys checked?",
    "What happens when the queue is full?",
    "Which file types can be ingested?",
]


def requests(max_tokens: int) -> itertools.cycle[tuple[str, str, dict[str, Any], bool]]:
    """(label, path, body, streamed), in a fixed rotation."""
    mix: list[tuple[str, str, dict[str, Any], bool]] = []
    for n, question in enumerate(QUESTIONS):
        chat = {
            "model": "default",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": question}],
        }
        mix += [
            ("/ask", "/ask", {"question": question, "max_tokens": max_tokens}, False),
            ("chat", "/v1/chat/completions", chat, False),
            ("chat stream", "/v1/chat/completions", {**chat, "stream": True}, True),
            ("embeddings", "/v1/embeddings", {"model": "default", "input": [question] * (n + 1)}, False),
        ]
    return itertools.cycle(mix)


async def client(
    url: str, until: float, offset: int, max_tokens: int, results: list[tuple[str, int, float]]
) -> None:
    rotation = requests(max_tokens)
    for _ in range(offset):
        next(rotation)
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        while time.monotonic() < until:
            label, path, body, streamed = next(rotation)
            t0 = time.perf_counter()
            try:
                if streamed:
                    async with http.stream("POST", path, json=body) as r:
                        async for _ in r.aiter_lines():
                            pass
                else:
                    r = await http.post(path, json=body)
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            results.append((label, status, time.perf_counter() - t0))


async def sample_rss(pid: int, until: float, every: float, samples: list[tuple[float, int]]) -> None:
    process = psutil.Process(pid)
    start = time.monotonic()
    while time.monotonic() < until:
        samples.append((time.monotonic() - start, process.memory_info().rss))
        await asyncio.sleep(every)


async def drive(url: str, pid: int, clients: int, duration: float, max_tokens: int) -> dict[str, Any]:
    results: list[tuple[str, int, float]] = []
    samples: list[tuple[float, int]] = []
    until = time.monotonic() + duration
    start = time.perf_counter()
    await asyncio.gather(
        sample_rss(pid, until, max(1.0, duration / 20), samples),
        *(client(url, until, i * 3, max_tokens, results) for i in range(clients)),
    )
    elapsed = time.perf_counter() - start
    samples.append((elapsed, psutil.Process(pid).memory_info().rss))
    return {"results": results, "elapsed": elapsed, "rss": samples}


def report(run: dict[str, Any], clients: int) -> None:
    results, elapsed, rss = run["results"], run["elapsed"], run["rss"]
    statuses = Counter(status for _, status, _ in results)
    errors = sum(n for status, n in statuses.items() if status not in (200, 429))
    print(
        f"{len(results)} requests from {clients} clients in {elapsed:.1f} s: "
        f"{len(results) / elapsed:.2f} requests/s"
    )
    print(f"statuses {dict(sorted(statuses.items()))}; errors (not 200/429): {errors}")
    by_route: dict[str, list[float]] = defaultdict(list)
    for label, status, seconds in results:
        if status == 200:
            by_route[label].append(seconds)
            by_route["all"].append(seconds)
    print(f"{'route':<12} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8}")
    for label, values in sorted(by_route.items()):
        print(
            f"{label:<12} {len(values):>5} "
            + " ".join(f"{percentile(values, p):7.2f}s" for p in (50, 95, 99))
        )
    first, last = rss[0][1], rss[-1][1]
    print(
        f"server RSS start {first / 2**20:.0f} MB, end {last / 2**20:.0f} MB "
        f"({(last - first) / first * 100:+.1f}%), peak {max(r for _, r in rss) / 2**20:.0f} MB"
    )
    print("RSS samples (s: MB): " + ", ".join(f"{t:.0f}: {r / 2**20:.0f}" for t, r in rss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60, help="Seconds of load (600: the soak).")
    parser.add_argument("--max-tokens", type=int, default=16, help="Answer length.")
    parser.add_argument("--warm-up", type=float, default=20, help="Seconds of load before measuring.")
    args = parser.parse_args()
    print(processor_line())
    with tempfile.TemporaryDirectory() as tmp:
        env = {"RAG_INDEXES_DIR": tmp, "RAG_SERVER__ACCESS_LOG": "false"}
        ingest_docs(env)
        with rag_server(env, Path(tmp) / "serve.log") as (url, pid):
            # Warm-up: every route once under load, so that start-up allocations are not growth.
            asyncio.run(drive(url, pid, args.clients, args.warm_up, args.max_tokens))
            run = asyncio.run(drive(url, pid, args.clients, args.duration, args.max_tokens))
    report(run, args.clients)


if __name__ == "__main__":
    main()
