"""A terminal progress bar for an ingest run: files, chunks, elapsed time and ETA.

While it shows, what the embedder's one-time preparation says (the int8 ONNX export, a
few seconds on first use) is printed above it, whatever the log level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ingest.worker import FileOutcome
from rag.util import console_text


class ProgressObserver:
    """Reports each file to a rich progress bar; failures are printed above it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("ingesting", total=None, chunks=0)
        self.chunks = 0

    def started(self, files: int) -> None:
        self.progress.update(self.task, total=files)

    def file_done(self, outcome: FileOutcome) -> None:
        self.chunks += outcome.chunks if outcome.status in ("added", "updated") else 0
        self.progress.update(self.task, advance=1, chunks=self.chunks)
        if outcome.status == "failed":
            self.progress.console.print(
                f"[yellow]failed[/yellow] {console_text(outcome.path)}: {console_text(outcome.reason)}",
                highlight=False,
            )


#: The loggers whose INFO lines the bar shows: the embedder's one-time preparation.
SHOWN_LOGGERS = ("rag.embedders.onnx_export", "rag.embedders.openvino")


class _ConsoleLines(logging.Handler):
    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.console.print(f"[dim]{record.getMessage()}[/dim]", highlight=False)


@contextmanager
def progress_bar(console: Console) -> Iterator[ProgressObserver]:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        # Shown by the bar only when the log would not show them (at INFO it does).
        handler = _ConsoleLines(progress)
        quiet = [log for log in map(logging.getLogger, SHOWN_LOGGERS) if not log.isEnabledFor(logging.INFO)]
        saved = [(log.level, log.propagate) for log in quiet]
        for log in quiet:
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
        try:
            yield ProgressObserver(progress)
        finally:
            for log, (level, propagate) in zip(quiet, saved, strict=True):
                log.removeHandler(handler)
                log.setLevel(level)
                log.propagate = propagate
