"""A real `rag serve` in a child process, for the benchmarks that drive it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ingest_docs(env: dict[str, str]) -> None:
    """Index docs/ with `rag ingest` in a child process, so that torch's threads never
    run in the benchmark's own process (they would slow llama.cpp there)."""
    subprocess.run(
        [sys.executable, "-m", "rag_cli", "ingest", str(ROOT / "docs"), "--quiet"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def rag_server(env: dict[str, str], log: Path, timeout: float = 300) -> Iterator[tuple[str, int]]:
    """Start `rag serve` with these RAG_* settings; yield its URL and pid once healthy."""
    port = free_port()
    cmd = [sys.executable, "-m", "rag_cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rag serve exited with {proc.returncode}; see {log}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"rag serve not ready after {timeout} s; see {log}")
            time.sleep(0.25)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
