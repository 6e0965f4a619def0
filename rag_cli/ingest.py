"""`rag ingest PATH`, once or, with --watch, again whenever files under PATH change."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ingest.progress import progress_bar
from ingest.watch import change_batches
from ingest.worker import IngestReport, IngestWorker
from rag.config import Settings
from rag.errors import IndexLockedError, RagError
from rag.util import console_text
from rag_cli.app import (
    EXIT_SOME_FAILED,
    ConfigOpt,
    IndexOpt,
    SetOpt,
    app,
    err,
    out,
    settings_from,
)


@app.command("ingest")
def ingest_command(
    # Not checked here: a folder that cannot be read is the run's to report (and to keep).
    path: Annotated[Path, typer.Argument(help="Folder or file to ingest.", readable=False)],
    index: IndexOpt = None,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
    chunk_size: int | None = typer.Option(None, help="Chunk size in tokens."),
    chunk_overlap: int | None = typer.Option(None, help="Token overlap between chunks."),
    watch: bool = typer.Option(
        False, "--watch", "-w", help="Keep running: ingest again when files under PATH change."
    ),
    debounce_ms: int = typer.Option(
        1000,
        "--debounce-ms",
        min=10,
        help="With --watch, ingest once no file has changed for this many milliseconds.",
    ),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Ingest documents into an index: only new and changed files are read again.

    Exit status: 0 when every file was ingested, 3 when some failed (the rest is kept).
    With --watch: runs until Ctrl-C (or SIGTERM), then exits with 0.
    """
    settings = settings_from(config, set_, **{"chunking.size": chunk_size, "chunking.overlap": chunk_overlap})
    if watch and not path.exists():
        raise RagError(f"nothing to ingest: {path} does not exist")
    worker = IngestWorker(settings)  # the embedder loads once a file needs embedding
    show_bar = not quiet and not as_json and err.is_terminal
    if watch:
        _watch(worker, path, index, settings, debounce_ms, quiet=quiet, as_json=as_json)
        return
    report = _run(worker, path, index, show_bar)
    _print_report(report, quiet=quiet, as_json=as_json, bar_shown=show_bar)
    if not report.ok:
        raise typer.Exit(EXIT_SOME_FAILED)


def _run(
    worker: IngestWorker, path: Path, index: str | None, show_bar: bool, confine: list[Path] | None = None
) -> IngestReport:
    if show_bar:
        with progress_bar(err) as observer:
            return worker.run(path, index, observer, confine=confine)
    return worker.run(path, index, confine=confine)


def _watch(
    worker: IngestWorker,
    path: Path,
    index: str | None,
    settings: Settings,
    debounce_ms: int,
    *,
    quiet: bool,
    as_json: bool,
) -> None:
    """One run now, one per batch of changes after; an error in a later run is printed and
    the watch goes on. Ctrl-C or SIGTERM (`docker stop`) ends it."""
    show_bar = not quiet and not as_json and err.is_terminal
    first = True
    try:
        for _ in change_batches(path, settings, debounce_ms=debounce_ms):
            try:
                report = _run_when_free(worker, path, index, show_bar, quiet=quiet)
            except RagError as exc:
                if first:
                    raise
                err.print(f"[red]error:[/red] {console_text(exc)}", highlight=False)
                continue
            finally:
                first = False
            _print_report(report, quiet=quiet, as_json=as_json, bar_shown=show_bar, one_line=True)
    except KeyboardInterrupt:
        if not quiet and not as_json:
            err.print("stopped watching")


def _run_when_free(
    worker: IngestWorker, path: Path, index: str | None, show_bar: bool, *, quiet: bool
) -> IngestReport:
    """A run, once no other ingest (another watch, an API job) holds the index."""
    waiting = False
    while True:
        try:
            # A watched folder is a boundary: links inside it are not followed out of it.
            return _run(worker, path, index, show_bar, confine=[path])
        except IndexLockedError as exc:
            if not waiting and not quiet:
                err.print(f"{console_text(exc)}; waiting for it to end", highlight=False)
            waiting = True
            time.sleep(1)


def _print_report(
    report: IngestReport, *, quiet: bool, as_json: bool, bar_shown: bool, one_line: bool = False
) -> None:
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary) if one_line else json.dumps(summary, indent=2))
        return
    if not bar_shown:
        for failure in report.outcomes:
            if failure.status == "failed":
                shown = f"{console_text(failure.path)}: {console_text(failure.reason)}"
                err.print(f"failed {shown}", highlight=False)
    if quiet:
        return
    counts = ", ".join(
        f"{summary[k]} {k}" for k in ("added", "updated", "removed", "unchanged", "skipped", "failed")
    )
    out.print(
        f"index {report.index!r}: {counts}; {summary['chunks']} chunks written in {report.seconds:.1f}s",
        highlight=False,
    )
