"""`rag search QUERY`: the ranked chunks a question retrieves, without the model."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from rag.util import console_text
from rag_cli.app import (
    ConfigOpt,
    IndexOpt,
    LangFilterOpt,
    PathFilterOpt,
    SetOpt,
    SinceOpt,
    TypeFilterOpt,
    UntilOpt,
    app,
    filters_from,
    out,
    settings_from,
)


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="What to search for, as you would ask it.")],
    index: IndexOpt = None,
    top_k: int | None = typer.Option(None, "--top-k", "-k", help="Chunks to return."),
    mode: str | None = typer.Option(
        None, help="Retriever: dense, lexical or hybrid (default: setting retrieval.mode)."
    ),
    min_score: float | None = typer.Option(None, help="Leave out chunks scoring below this."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    path: PathFilterOpt = None,
    type_: TypeFilterOpt = None,
    lang: LangFilterOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Show what retrieval finds for a question: path, pages, heading, each method's score
    and the text of every chunk, best first. No answer is generated."""
    settings = settings_from(
        config, set_, **{"retrieval.mode": mode, "retrieval.top_k": top_k, "retrieval.min_score": min_score}
    )
    from rag.embedders import make_embedder, settings_for_index
    from rag.rerankers import make_reranker
    from rag.retrievers import make_retriever
    from rag.store import make_catalog

    name = index or settings.index
    filters = filters_from(path, type_, lang, since, until)  # a bad filter: an error before loading
    store = make_catalog(settings).open(name, readonly=True)
    try:
        built = store.manifest  # an index keeps the embedder runtime it was built with
        embedder = make_embedder(settings_for_index(settings.embedder, built.embedder_kind, built.embedder))
        store.manifest.check_embedder(embedder.kind, embedder.name, embedder.dimension)
        retriever = make_retriever(settings.retrieval, embedder)
        reranker = make_reranker(settings.rerank)
        k = settings.retrieval.top_k
        hits = reranker.rerank(query, retriever.retrieve(store, query, reranker.depth(k), filters=filters), k)
    finally:
        store.close()
    rows: list[dict[str, Any]] = [h.row(n) for n, h in enumerate(hits, start=1)]
    if as_json:
        typer.echo(
            json.dumps(
                {"index": name, "mode": settings.retrieval.mode, "query": query, "results": rows},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if not rows:
        out.print(f"nothing in {name!r} scores {settings.retrieval.min_score} or more for this query")
        return
    table = Table("#", "score", "by method", "where", "text", show_lines=True)
    for row in rows:
        where = console_text(row["path"]) + (f", p. {row['pages']}" if row["pages"] else "")
        where += f"\n{console_text(row['heading'])}" if row["heading"] else ""
        methods = "\n".join(f"{k} {v}" for k, v in row["scores"].items())
        text = " ".join(str(row["text"]).split())
        table.add_row(
            str(row["rank"]), str(row["score"]), methods, where, text[:400] + ("…" if len(text) > 400 else "")
        )
    out.print(table)
