"""A real `rag serve` told to stop (SIGTERM) while it streams a long answer, with another
request waiting for the model, exits within seconds; its logs, at DEBUG, never hold the
API key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.api.conftest import free_port

ROOT = Path(__file__).parents[2]
KEY = "shutdown-key-93e1"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "Write a very long story about a dragon who learns to sing, chapter by chapter."
STORY = {
    "model": "default",
    "stream": True,
    "max_tokens": 2000,
    "messages": [{"role": "user", "content": QUESTION}],
}


def test_sigterm_stops_a_streaming_server_within_seconds(corpus: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAG_INDEXES_DIR": str(tmp_path / "indexes"),
        "RAG_LOG_LEVEL": "DEBUG",
        "RAG_SERVER__API_KEYS": f'["{KEY}"]',
        "RAG_SERVER__SHUTDOWN_TIMEOUT": "2",
        "RAG_LLM__MAX_TOKENS": "2000",
        "RAG_LLM__TEMPERATURE": "0",
        "RAG_LLM__SEED": "1",
        # a long answer from the model's memory: nothing in the corpus is about this story
        "RAG_RETRIEVAL__REFUSE_WITHOUT_CONTEXT": "false",
    }
    ingest = subprocess.run(
        [sys.executable, "-m", "rag_cli", "ingest", str(corpus), "--quiet"], cwd=ROOT, env=env, timeout=300
    )
    assert ingest.returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "rag_cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert httpx.get(url + "/v1/models", headers=AUTH).status_code == 200
        waiting: list[object] = []

        def queued() -> None:  # waits for the model behind the story
            try:
                waiting.append(
                    httpx.post(
                        url + "/v1/chat/completions",
                        headers=AUTH,
                        timeout=120,
                        json={**STORY, "stream": False},
                    )
                )
            except httpx.TransportError as exc:
                waiting.append(exc)

        with httpx.stream("POST", url + "/v1/chat/completions", json=STORY, headers=AUTH, timeout=120) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            next(line for line in lines if '"content": "' in line and '"content": ""' not in line)
            other = threading.Thread(target=queued)
            other.start()
            time.sleep(0.5)
            start = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(30)
            took = time.monotonic() - start
            rest = "".join(_drain(lines))
        other.join(10)
        # uvicorn shuts down, then lets the signal end the process as it would have.
        assert code in (0, -signal.SIGTERM)
        assert took < 6, f"rag serve took {took:.1f} s to stop"
        assert "[DONE]" not in rest  # the answer was still being generated
        assert len(waiting) == 1  # the waiting request was ended too, not answered
        assert not (isinstance(waiting[0], httpx.Response) and waiting[0].status_code == 200)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    text = log.read_text(errors="replace")
    assert "Application shutdown complete" in text  # a graceful stop, not a kill
    assert " DEBUG " in text and "rag.access" in text  # the server did log, verbosely
    assert KEY not in text


def _drain(lines: object) -> list[str]:
    """What is left of the stream, however it ended."""
    out: list[str] = []
    try:
        for line in lines:  # type: ignore[attr-defined]
            out.append(line)
    except httpx.HTTPError:
        pass
    return out
