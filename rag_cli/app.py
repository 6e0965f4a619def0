"""The `rag` command: ingest documents, ask questions, serve the API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rag.config import (
    Settings,
    flat_settings,
    load_settings,
    parse_assignment,
    setting_sources,
)
from rag.offline import ensure_offline
from rag.util import console_text, log_handler

EXIT_ERROR = 1
EXIT_SOME_FAILED = 3

app = typer.Typer(
    help="Private question answering over your own documents, on a local model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="List, inspect and delete indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one error, one line, even in a narrow pipe

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: $RAG_CONFIG).", show_default=False),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a setting, e.g. --set retrieval.top_k=8 (repeatable).", show_default=False
    ),
]
IndexOpt = Annotated[str | None, typer.Option("--index", "-i", help="Index name (default: setting `index`).")]


def settings_from(config: Path | None, assignments: list[str] | None, **flags: Any) -> Settings:
    """Settings for one command: flags over --set over env over file over defaults."""
    overrides = dict(parse_assignment(a) for a in assignments or [])
    overrides.update({k: v for k, v in flags.items() if v is not None})
    settings = load_settings(config, overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        handlers=[log_handler("%(asctime)s %(levelname)s %(name)s: %(message)s")],
    )
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # loaders report bad files themselves
    ensure_offline()
    return settings


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[red]error:[/red] {console_text(message)}", highlight=False, markup=True)
    return typer.Exit(code)


@app.command("config")
def config_command(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective settings and where each one came from."""
    settings = settings_from(config, set_)
    overrides = dict(parse_assignment(a) for a in set_ or [])
    sources = setting_sources(config, overrides)
    table = Table("setting", "value", "from", "env var")
    for key, value in flat_settings(settings).items():
        env = "RAG_" + key.upper().replace(".", "__")
        table.add_row(key, json.dumps(value), sources.get(key, "default"), env)
    out.print(table)


@index_app.command("list")
def index_list(config: ConfigOpt = None, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the indexes with their file and chunk counts."""
    from rag.store import make_catalog

    settings = settings_from(config, None)
    catalog = make_catalog(settings)
    rows = [_index_info(catalog, name) for name in catalog.names()]
    if as_json:
        out.print_json(data=rows)
        return
    if not rows:
        out.print(f"no indexes in {settings.indexes_dir}; create one with `rag ingest PATH`")
        return
    table = Table("name", "files", "chunks", "embedder", "size", "last ingest")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["files"]),
            str(row["chunks"]),
            row["embedder"],
            _size(row["size_bytes"]),
            row["last_ingest"] or "-",
        )
    out.print(table)


@index_app.command("info")
def index_info(
    name: Annotated[str, typer.Argument(help="Index name.")],
    config: ConfigOpt = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one index: files, chunks, embedder, chunking, size on disk, last ingest."""
    from rag.store import make_catalog

    settings = settings_from(config, None)
    info = _index_info(make_catalog(settings), name)
    if as_json:
        out.print_json(data=info)
        return
    for key, value in info.items():
        out.print(f"{key:>14}: {_size(value) if key == 'size_bytes' else value}", highlight=False)


@index_app.command("delete")
def index_delete(
    name: Annotated[str, typer.Argument(help="Index name.")],
    config: ConfigOpt = None,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an index and everything in it (refused while an ingest writes to it)."""
    from rag.store import make_catalog

    settings = settings_from(config, None)
    catalog = make_catalog(settings)
    if not catalog.exists(name):
        raise fail(f"no index named {name!r} in {settings.indexes_dir}")
    if not yes and not typer.confirm(f"Delete index {name!r}?"):
        raise typer.Exit(1)
    catalog.delete(name)  # under the index's lock, as an ingest
    out.print(f"deleted index {name!r}")


def _index_info(catalog: Any, name: str) -> dict[str, Any]:
    import datetime as dt

    index = catalog.open(name, readonly=True)
    try:
        last = index.last_ingest()
        m = index.manifest
        return {
            "name": name,
            "files": len(index.files()),
            "chunks": index.chunk_count(),
            "embedder": m.embedder,
            "dimension": m.dimension,
            "chunking": f"size={m.chunk_size} overlap={m.chunk_overlap} encoding={m.encoding}",
            "size_bytes": index.size_on_disk(),
            "last_ingest": dt.datetime.fromtimestamp(last).isoformat(timespec="seconds") if last else None,
            "id": index.identity,
            "path": str(getattr(index, "folder", "")),
        }
    finally:
        index.close()


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# -- filters on documents, shared by `rag ask` and `rag search` ---------------------------

PathFilterOpt = Annotated[
    str | None,
    typer.Option(
        "--path",
        help="Only documents whose path matches this glob, e.g. '*.pdf' or 'guide/*'.",
        show_default=False,
    ),
]
TypeFilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--type", help="Only documents of this type (file suffix, e.g. pdf); repeatable.", show_default=False
    ),
]
LangFilterOpt = Annotated[
    list[str] | None,
    typer.Option("--lang", help="Only documents in this language (en, fr); repeatable.", show_default=False),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only documents modified on or after this date (YYYY-MM-DD).", show_default=False
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="Only documents modified before this date (YYYY-MM-DD).", show_default=False
    ),
]


def filters_from(
    path: str | None, types: list[str] | None, langs: list[str] | None, since: str | None, until: str | None
) -> Any:
    """The documents a command may read from, or None for all; a filter no store can read
    (a path that is not a glob, an unknown language) is an InvalidRequestError."""
    import datetime as dt

    from rag.errors import ConfigError
    from rag.store import Filters

    def when(raw: str | None, flag: str) -> float | None:
        if raw is None:
            return None
        try:
            return dt.datetime.fromisoformat(raw).timestamp()
        except ValueError as exc:
            raise ConfigError(f"{flag}: expected a date like 2024-05-31, got {raw!r}") from exc

    found = Filters(
        path=path,
        types=tuple(types or ()),
        languages=tuple(langs or ()),
        modified_after=when(since, "--since"),
        modified_before=when(until, "--until"),
    )
    return found or None
