"""Ctrl-C and SIGTERM end `rag ingest --watch`, `rag ask` and `rag serve` within 5 s,
whatever they are doing when the signal comes: idle, debouncing changes, embedding,
waiting for the parsing child, generating an answer, serving."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.conftest import free_port

ROOT = Path(__file__).parents[1]
LIMIT = 5.0  # seconds from the signal to the exit


class Running:
    """A `rag` command in a child process, its output lines gathered as they come."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rag_cli", *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self._err_seen = threading.Condition()
        threading.Thread(target=self._gather_out, daemon=True).start()
        threading.Thread(target=self._gather_err, daemon=True).start()

    def _gather_out(self) -> None:
        for line in self.proc.stdout or ():
            self.out.put(line)

    def _gather_err(self) -> None:
        for line in self.proc.stderr or ():
            with self._err_seen:
                self.err.append(line)
                self._err_seen.notify_all()

    def wait_err(self, text: str, timeout: float = 180) -> None:
        """Until `text` is in a line on stderr."""
        deadline = time.monotonic() + timeout
        with self._err_seen:
            while not any(text in line for line in self.err):
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, f"no {text!r} in:\n{''.join(self.err)}"
                self._err_seen.wait(min(left, 1.0))

    def stop(self, sig: signal.Signals) -> tuple[int, float]:
        """Send `sig`; the exit status and the seconds it took."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(LIMIT + 25)  # a hung process is reported with its time
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def running() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Running:
        started.append(Running(*args, cwd=cwd, env=env))
        return started[-1]

    yield start
    for r in started:
        r.kill()


DEBUG = {"RAG_LOG_LEVEL": "DEBUG"}


def _within(code_took: tuple[int, float], r: Running, codes: tuple[int, ...]) -> None:
    code, took = code_took
    assert took < LIMIT, f"took {took:.1f} s to stop; stderr:\n{''.join(r.err[-30:])}"
    # Unwound, not cut short by the deadline of rag_cli.stopping (its warning is logged).
    assert not any("exiting now" in line for line in r.err), "".join(r.err[-30:])
    assert code in codes, f"exit status {code}; stderr:\n{''.join(r.err[-30:])}"


def _children_gone(pid: int, children: list[psutil.Process]) -> None:
    """The parsing child ends with its parent, not later."""
    _, alive = psutil.wait_procs(children, timeout=2)
    assert not alive, f"left running after {pid}: {[p.cmdline() for p in alive]}"


def _many_files(root: Path, n: int = 80) -> Path:
    root.mkdir()
    for i in range(n):
        words = " ".join(f"topic{i} word{j} about subject {j % 7} and its detail {i * j}" for j in range(40))
        (root / f"note{i:04d}.txt").write_text(f"Note {i}.\n\n{words}\n\n{words[::-1]}\n")
    return root


def _slow_to_parse(root: Path) -> Path:
    """One HTML file whose parsing takes many seconds, and nothing else to read."""
    root.mkdir()
    cells = "".join(f"<tr><td>row {i}</td><td><b>cell</b> {i} of the table</td></tr>" for i in range(400_000))
    (root / "huge.html").write_text(f"<html><body><h1>Huge</h1><table>{cells}</table></body></html>")
    return root


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_watch_stops_while_idle(
    running: Callable[..., Running], corpus: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    r = running("ingest", str(corpus), "--watch", "--json", "--debounce-ms", "200", cwd=tmp_path)
    assert json.loads(r.out.get(timeout=180))["added"] == 3
    _within(r.stop(sig), r, (0,))


def test_watch_stops_while_debouncing(running: Callable[..., Running], corpus: Path, tmp_path: Path) -> None:
    r = running("ingest", str(corpus), "--watch", "--json", "--debounce-ms", "3000", cwd=tmp_path, env=DEBUG)
    assert json.loads(r.out.get(timeout=180))["added"] == 3
    (corpus / "owls.md").write_text("# Owls\n\nOwls hunt mice at night.\n")
    time.sleep(1.0)  # the change is seen, and waits for the quiet that ends the batch
    assert r.out.empty()
    _within(r.stop(signal.SIGINT), r, (0,))


def test_watch_stops_while_embedding(running: Callable[..., Running], tmp_path: Path) -> None:
    docs = _many_files(tmp_path / "many")
    r = running("ingest", str(docs), "--watch", "--json", cwd=tmp_path, env=DEBUG)
    r.wait_err("embedder loaded")
    time.sleep(1.0)  # well into the run's embedding
    assert r.out.empty(), "the run ended before the signal: make the corpus larger"
    _within(r.stop(signal.SIGTERM), r, (0,))
    # What was committed before the signal is a sound index: a new run completes it.
    done = subprocess.run(
        [sys.executable, "-m", "rag_cli", "ingest", str(docs), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["added"] + summary["unchanged"] == 80 and summary["failed"] == 0


def test_ingest_stops_while_the_parsing_child_works(running: Callable[..., Running], tmp_path: Path) -> None:
    docs = _slow_to_parse(tmp_path / "slow")
    for args in (["--watch", "--json"], ["--json"]):
        r = running("ingest", str(docs), *args, cwd=tmp_path, env=DEBUG)
        parent = psutil.Process(r.proc.pid)
        deadline = time.monotonic() + 120
        busy: list[psutil.Process] = []
        while not busy:  # the child, parsing (on the CPU)
            assert time.monotonic() < deadline and r.proc.poll() is None, "".join(r.err)
            busy = [
                c
                for c in parent.children()
                if "ingest.sandbox" in " ".join(c.cmdline()) and c.cpu_times().user > 1.0
            ]
            time.sleep(0.2)
        children = parent.children(recursive=True)
        code_took = r.stop(signal.SIGINT)
        # The watch ends as asked (0); a single run was interrupted (130).
        _within(code_took, r, (0,) if "--watch" in args else (130,))
        _children_gone(r.proc.pid, children)


def test_interactive_ask_stops_at_its_prompt_and_while_answering(
    running: Callable[..., Running], corpus: Path, tmp_path: Path
) -> None:
    env = {"RAG_INDEXES_DIR": str(tmp_path / "indexes")}
    ingest = subprocess.run(
        [sys.executable, "-m", "rag_cli", "ingest", str(corpus), "--quiet"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=300,
    )
    assert ingest.returncode == 0
    at_prompt = running("ask", cwd=tmp_path, env={**env, **DEBUG})
    at_prompt.wait_err("model loaded")
    time.sleep(0.5)
    _within(at_prompt.stop(signal.SIGINT), at_prompt, (130,))

    answering = running(
        "ask",
        "--max-tokens",
        "2000",
        "--set",
        "retrieval.refuse_without_context=false",
        cwd=tmp_path,
        env={**env, **DEBUG},
    )
    answering.wait_err("model loaded")
    assert answering.proc.stdin is not None
    answering.proc.stdin.write("Write a very long story about a dragon who learns to sing.\n")
    answering.proc.stdin.flush()
    time.sleep(2.0)  # retrieved, and well into a 2,000-token answer
    assert answering.out.empty()
    _within(answering.stop(signal.SIGTERM), answering, (130,))


def test_serve_stops_while_idle_and_while_an_ingest_job_parses(
    running: Callable[..., Running], tmp_path: Path
) -> None:
    docs = _slow_to_parse(tmp_path / "slow")
    env = {"RAG_INDEXES_DIR": str(tmp_path / "indexes"), "RAG_SERVER__INGEST_ROOTS": f'["{tmp_path}"]'}
    for during_job in (False, True):
        port = free_port()
        r = running("serve", "--port", str(port), cwd=tmp_path, env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and r.proc.poll() is None, "".join(r.err)
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        if during_job:
            job = httpx.post(url + "/ingest", json={"path": str(docs), "index": "slow"}, timeout=30)
            assert job.status_code == 202, job.text
            parent = psutil.Process(r.proc.pid)
            while not [
                c
                for c in parent.children()
                if "ingest.sandbox" in " ".join(c.cmdline()) and c.cpu_times().user > 1.0
            ]:
                assert time.monotonic() < deadline, "".join(r.err)
                time.sleep(0.2)
        _within(r.stop(signal.SIGTERM), r, (0, -signal.SIGTERM))


def test_what_does_not_unwind_is_cut_short_at_the_deadline(tmp_path: Path) -> None:
    """A thread that never ends (a native call that ignores the interrupt) does not keep
    the process: it exits with 130 once `DEADLINE` has passed, and says so."""
    script = (
        "import threading, time\n"
        "from rag_cli.stopping import stop_on_signals\n"
        "threading.Thread(target=lambda: time.sleep(600)).start()\n"
        "with stop_on_signals():\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    took = time.monotonic() - start
    assert code == 130 and 3.5 < took < LIMIT, (code, took)
    assert "exiting now" in (proc.stderr.read() if proc.stderr else "")
