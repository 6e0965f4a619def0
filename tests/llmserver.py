"""A real OpenAI-compatible inference server, started by the tests themselves.

llama-cpp-python's own `llama_cpp.server` (the `server` extra, in the dev dependencies)
serves the packaged GGUF on a free port of 127.0.0.1, with an API key, for the whole
session; it is stopped at the end:

    from tests.llmserver import llm_server, openai_generator  # noqa: F401  (fixtures)

    def test_something(llm_server: LlmServer) -> None:
        settings = load_settings(overrides=llm_server.overrides())

One process serves every module that imports the fixtures (pytest makes one fixture per
importing module; they share the server below).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import load_settings
from rag.generators.gguf_catalog import default_model_path
from rag.generators.openai_server import OpenAIGenerator

N_CTX = 2048  # as the in-process test generator (tests/conftest.py), so both budget alike
API_KEY = "test-inference-key"
# One thread: beside the in-process model and the other tests on a few cores, OpenMP
# teams that wait for each other's descheduled threads are what makes a test slow.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlmServer:
    """One `python -m llama_cpp.server` process serving the packaged model."""

    def __init__(self, threads: int = 1) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.api_key = API_KEY
        self.model_path = default_model_path()
        # The server's output, read when it fails to start; open as long as it runs.
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RAG_")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(self.model_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                str(N_CTX),
                "--n_threads",
                str(threads),
                "--api_key",
                self.api_key,
                "--interrupt_requests",
                "False",
                "--verbose",
                "False",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._wait()

    def _wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.api_key}"}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}): {self.log()}")
            try:
                if httpx.get(self.base_url + "/models", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start within {timeout:g} s: {self.log()}")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-2000:]

    def overrides(self, **more: Any) -> dict[str, Any]:
        """Settings overrides (dotted keys) that point `llm` at this server."""
        return {
            "llm.kind": "openai",
            "llm.base_url": self.base_url,
            "llm.api_key": self.api_key,
            "llm.n_ctx": N_CTX,
            **more,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


_shared: LlmServer | None = None


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LlmServer]:
    """The session's inference server (started on first use)."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = LlmServer()
    server = _shared
    yield server
    if _shared is server:  # the first importing module's teardown, at the session's end
        _shared = None
        server.stop()


@pytest.fixture(scope="session")
def openai_generator(llm_server: LlmServer) -> Iterator[OpenAIGenerator]:
    """The `openai` generator, connected to the session's server."""
    generator = OpenAIGenerator(load_settings(overrides=llm_server.overrides()).llm)
    yield generator
    generator.close()
