"""Loaders run in a child process, so that a file that makes a parser hang (or crash) is
stopped and reported, and the ingest goes on with the next file.

    with LoaderSandbox(timeout=120) as sandbox:
        for page in sandbox.pages(path): ...   # LoaderError when reading takes too long

The child (`python -m ingest.sandbox`) is started when the sandbox is entered (or on first
use) and kept for the following files; it is killed and started again after a file that
ran out of time, crashed it, or was abandoned half read. The time limit counts only the
time spent waiting for the parser, not the time the caller takes to chunk and embed what
it already received.

The protocol, length-prefixed frames both ways (`frame`, `unframe`), so that no byte of a
value can be taken for the protocol's: on the child's stdin, one frame per path, its bytes
(`os.fsencode`: any name the file system holds, newlines and undecodable bytes included);
on its stdout, for each path, a series of frames each holding a pickled `(kind, value)`
(the first, once started: ("ready", None)): ("page", Page)..., then ("end", None),
("error", reason) or ("oserror", (errno, strerror)). The child reads absolute paths only:
nothing it is sent is opened relative to its working directory.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

from ingest.loaders import Page, loader_for
from rag.config import IngestSettings
from rag.errors import LoaderError
from rag.util import log_handler

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")
_OPTIONS_ENV = "INGEST_SANDBOX_OPTIONS"  # the ingest settings, as JSON, for the child
_ROOT = Path(__file__).resolve().parent.parent  # where the `ingest` package can be imported


class LoaderSandbox:
    """One child process reading documents, one at a time."""

    def __init__(self, timeout: float, options: IngestSettings | None = None) -> None:
        self.timeout = timeout
        self.options = options
        self._child: subprocess.Popen[bytes] | None = None
        self._ready = False  # the child said it is ready
        self._stopped = False  # by `stop()`: no child is started any more

    def pages(self, path: Path) -> Iterator[Page]:
        child = self._start()
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(frame(os.fsencode(path)))
            child.stdin.flush()
        except OSError as exc:
            self._kill()
            raise LoaderError("the document reader stopped unexpectedly") from exc
        deadline = _Budget(self.timeout)
        finished = False
        try:
            while True:
                kind, value = self._receive(child.stdout, deadline)
                if kind == "page":
                    yield value
                    continue
                finished = True
                if kind == "end":
                    return
                if kind == "oserror":
                    raise OSError(*value)
                raise LoaderError(str(value))
        finally:
            if not finished:  # abandoned half read, or stopped: the child is mid-document
                self._kill()

    def close(self) -> None:
        """Stop the child. Between documents it holds nothing (a document abandoned half
        read has already stopped it), so it is killed rather than waited for."""
        self._kill()

    def stop(self) -> None:
        """From another thread: kill the child and start no other, so that a document
        being read ends at once (LoaderError) and every later one fails without waiting.
        For a run that is interrupted."""
        self._stopped = True
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()  # the reading thread sees its output end, and cleans up

    def __enter__(self) -> LoaderSandbox:
        """Start the child now: it starts while the caller lists and hashes files."""
        self._spawn()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self, stream: IO[bytes], budget: _Budget) -> tuple[str, Any]:
        body = unframe(lambda n: self._read(stream, n, budget))
        kind, value = pickle.loads(body)  # noqa: S301  (our own child's frames)
        return str(kind), value

    def _read(self, stream: IO[bytes], n: int, budget: _Budget) -> bytes:
        parts: list[bytes] = []
        fd = stream.fileno()
        while n > 0:
            with budget:
                ready, _, _ = select.select([fd], [], [], budget.left())
            if not ready:
                self._kill()
                raise LoaderError(f"reading took longer than {self.timeout:g} s: stopped")
            data = os.read(fd, min(n, 1 << 20))
            if not data:
                self._kill()
                raise LoaderError("the document's parser crashed")
            parts.append(data)
            n -= len(data)
        return b"".join(parts)

    def _start(self) -> subprocess.Popen[bytes]:
        if self._stopped:
            raise LoaderError("the ingest was stopped")
        if self._child is not None and self._ready and self._child.poll() is None:
            return self._child
        if self._child is None or self._child.poll() is not None:
            self._spawn()
        child = self._child
        assert child is not None and child.stdout is not None
        # Starting Python and importing the parsers is not the file's time: wait for it apart.
        kind, _ = self._receive(child.stdout, _Budget(max(60.0, self.timeout)))
        if kind != "ready":
            self._kill()
            raise LoaderError("the document reader did not start")
        self._ready = True
        return child

    def _spawn(self) -> None:
        """Start the child; it gets ready (imports its parsers) while the caller goes on."""
        self._kill()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
        if self.options is not None:
            env[_OPTIONS_ENV] = self.options.model_dump_json()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "ingest.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        self._ready = False

    def _kill(self) -> None:
        child, self._child, self._ready = self._child, None, False
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def frame(body: bytes) -> bytes:
    """One message: its length, then its bytes."""
    return _HEADER.pack(len(body)) + body


def unframe(read: Callable[[int], bytes]) -> bytes:
    """The bytes of one message, from `read(n)`, which returns exactly n bytes."""
    return read(_HEADER.unpack(read(_HEADER.size))[0])


class _Budget:
    """Seconds left to wait; only the time spent inside `with` counts."""

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds
        self._since = 0.0

    def left(self) -> float:
        return max(0.0, self.remaining)

    def __enter__(self) -> None:
        self._since = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.remaining -= time.monotonic() - self._since


def _serve() -> None:
    """The child: read each path from stdin, write its pages to the original stdout."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the frames

    def send(kind: str, value: object) -> None:
        out.write(frame(pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)))

    raw = os.environ.pop(_OPTIONS_ENV, "")
    options = IngestSettings.model_validate_json(raw) if raw else None
    send("ready", None)
    while True:
        try:
            path = Path(os.fsdecode(unframe(partial(_read_exactly, sys.stdin.buffer))))
        except EOFError:  # the parent closed the pipe: done
            return
        try:
            if not path.is_absolute():
                raise LoaderError("not an absolute path")
            loader = loader_for(path, options)
            if loader is None:
                raise LoaderError("unsupported type")
            for page in loader.pages(path):
                send("page", page)
            send("end", None)
        except LoaderError as exc:
            send("error", str(exc))
        except OSError as exc:
            send("oserror", (exc.errno, exc.strerror or str(exc)))
        except Exception as exc:  # a parser bug: this file's failure, not the run's
            send("error", f"{type(exc).__name__}: {exc}")


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group: the parent decides, and kills
    # this child if it has to.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, handlers=[log_handler(logging.BASIC_FORMAT)])
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    _serve()
