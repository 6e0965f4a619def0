"""A real `rag serve` in a child process, and Debian's Chromium driven by Playwright.

No browser can be downloaded here, so Playwright drives the system's Chromium
(`apt-get install chromium`, done by `make setup`), with no network of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from playwright.sync_api import Browser, sync_playwright

from tests.api.conftest import free_port

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
# No sandbox (root in a container), no GPU, and nothing that reaches for the network.
# Names under .example are this machine: pages of other sites, or of a name rebound to it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP *.example 127.0.0.1",
]


def rag(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    """`rag ARGS` with these settings only: none of the caller's own RAG_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("RAG_")}
    return subprocess.Popen([sys.executable, "-m", "rag_cli", *args], cwd=ROOT, env={**base, **env}, **kwargs)  # type: ignore[call-overload]


@contextmanager
def served(corpus: Path, work: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`rag ingest CORPUS`, then `rag serve` on a free port until ready; yields its URL."""
    env = {
        "RAG_INDEXES_DIR": str(work / "indexes"),
        "RAG_SERVER__UPLOAD_DIR": str(work / "uploads"),
        **(env or {}),
    }
    assert rag("ingest", str(corpus), "--quiet", env=env).wait(300) == 0
    port = free_port()
    log = (work / "serve.log").open("wb")
    server = rag("serve", "--port", str(port), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert server.poll() is None, (work / "serve.log").read_text()
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "rag serve was not ready in 120 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(30)
        log.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def page_server(html: str) -> Iterator[int]:
    """One page, `html`, served at every path on 127.0.0.1; yields the port."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
