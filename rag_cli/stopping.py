"""Ctrl-C and SIGTERM end a command within seconds, whatever it is doing.

    with stop_on_signals():
        worker.run(path)

The first signal raises KeyboardInterrupt in the main thread, as Ctrl-C does by default,
so that the command unwinds: an ingest commits what it has written and kills its reading
child, an answer stops at its next token. What unwinding cannot cut short (a batch on the
embedder, a native call) has until `DEADLINE` seconds after the signal; then the process
exits with status 130 without waiting for it. That is safe for the indexes: an index is
written crash-safely, so it is left as its last commit made it. A second signal exits at
once.

`rag serve` leaves signals to uvicorn, which stops taking requests and gives those running
`server.shutdown_timeout` seconds; `arm_deadline` bounds what follows (model threads, an
ingest job's file).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

logger = logging.getLogger(__name__)

DEADLINE = 4.0  # seconds from the signal to the exit, at the latest
#: The status of a command ended by a signal, as Typer gives it to an interrupted command.
EXIT_INTERRUPTED = 130

_armed = threading.Lock()


def arm_deadline(seconds: float = DEADLINE) -> None:
    """Exit the process `seconds` from now unless it has ended by then (once; later calls
    do nothing)."""
    if not _armed.acquire(blocking=False):
        return
    timer = threading.Timer(seconds, _exit_now, args=(seconds,))
    timer.daemon = True
    timer.start()


def _exit_now(seconds: float) -> None:
    logger.warning("still busy %.1f s after the stop signal: exiting now", seconds)
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _armed.locked():  # the second signal: no more waiting
        _exit_now(0.0)
    arm_deadline()
    raise KeyboardInterrupt


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM interrupt the main thread, with the exit guaranteed within
    `DEADLINE` seconds; the handlers before are restored on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are delivered to the main thread only
        return
    before = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


__all__ = ["DEADLINE", "EXIT_INTERRUPTED", "arm_deadline", "stop_on_signals"]
