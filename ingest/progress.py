"""A terminal progress bar for an ingest run: files, chunks, elapsed time and ETA."""

from __future__ import annotations

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
                f"[yellow]failed[/yellow] {outcome.path}: {outcome.reason}", highlight=False
            )


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
        yield ProgressObserver(progress)
