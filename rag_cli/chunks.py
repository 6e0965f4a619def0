"""`rag index chunks NAME`: a document's chunks as stored, to see what extraction made of it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rag.util import console_text
from rag_cli.app import ConfigOpt, index_app, out, settings_from


@index_app.command("chunks")
def index_chunks(
    name: Annotated[str, typer.Argument(help="Index name.")],
    path: str | None = typer.Option(
        None,
        "--path",
        "-p",
        help="Only documents whose path matches this glob, e.g. '*.pdf' or 'docs/guide/*'.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines, one chunk a line."),
    config: ConfigOpt = None,
) -> None:
    """Print the chunks of an index as they are stored: path, pages, heading and text."""
    from rag.store import make_catalog
    from rag.store.globs import glob_matcher

    settings = settings_from(config, None)
    matcher = None if path is None else glob_matcher(path)  # as a search's path filter reads it
    store = make_catalog(settings).open(name, readonly=True)
    try:
        shown = 0
        for chunk_id, chunk in store.all_chunks():
            if matcher is not None and not matcher.match(chunk.path):
                continue
            shown += 1
            if as_json:
                typer.echo(
                    json.dumps(
                        {
                            "id": chunk_id,
                            "path": chunk.path,
                            "ordinal": chunk.ordinal,
                            "pages": chunk.pages,
                            "heading": chunk.heading,
                            "text": chunk.text,
                        },
                        ensure_ascii=False,
                    )
                )
                continue
            where = console_text(chunk.path) + (f", page {chunk.pages}" if chunk.pages else "")
            where += f" — {console_text(chunk.heading)}" if chunk.heading else ""
            out.rule(f"{where} (chunk {chunk.ordinal + 1})", align="left", style="dim")
            out.print(chunk.text, highlight=False, markup=False)
        if not shown and not as_json:
            out.print(f"no chunks in {name!r}" + (f" for documents matching {path!r}" if path else ""))
    finally:
        store.close()
