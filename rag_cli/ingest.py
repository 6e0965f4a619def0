"""`rag ingest PATH`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ingest.progress import progress_bar
from ingest.worker import IngestReport, IngestWorker
from rag.embedders import SentenceTransformerEmbedder
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
    path: Annotated[Path, typer.Argument(help="Folder or file to ingest.")],
    index: IndexOpt = None,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
    chunk_size: int | None = typer.Option(None, help="Chunk size in tokens."),
    chunk_overlap: int | None = typer.Option(None, help="Token overlap between chunks."),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Ingest documents into an index: only new and changed files are read again.

    Exit status: 0 when every file was ingested, 3 when some failed (the rest is kept).
    """
    settings = settings_from(
        config, set_, **{"chunking.size": chunk_size, "chunking.overlap": chunk_overlap}
    )
    embedder = SentenceTransformerEmbedder(settings.embedder)
    worker = IngestWorker(settings, embedder)
    show_bar = not quiet and not as_json and err.is_terminal
    if show_bar:
        with progress_bar(err) as observer:
            report = worker.run(path, index, observer)
    else:
        report = worker.run(path, index)
    _print_report(report, quiet=quiet, as_json=as_json, bar_shown=show_bar)
    if not report.ok:
        raise typer.Exit(EXIT_SOME_FAILED)


def _print_report(report: IngestReport, *, quiet: bool, as_json: bool, bar_shown: bool) -> None:
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    if not bar_shown:
        for failure in report.outcomes:
            if failure.status == "failed":
                err.print(f"failed {failure.path}: {failure.reason}", highlight=False)
    if quiet:
        return
    counts = ", ".join(f"{summary[k]} {k}" for k in
                       ("added", "updated", "removed", "unchanged", "skipped", "failed"))  # fmt: skip
    out.print(
        f"index {report.index!r}: {counts}; {summary['chunks']} chunks written "
        f"in {report.seconds:.1f}s",
        highlight=False,
    )
