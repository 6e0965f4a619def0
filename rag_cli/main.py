"""Entry point of the `rag` command."""

from __future__ import annotations

import sys

from rag.errors import RagError
from rag.util import console_text
from rag_cli import ask, chunks, evaluate, ingest, keys, models, search, serve  # noqa: F401  (each registers its commands)
from rag_cli.app import EXIT_ERROR, app, err
from rag_cli.stopping import EXIT_INTERRUPTED, stop_on_signals

__all__ = ["app", "main"]


def main() -> None:
    """Run the CLI: expected errors are one line on stderr, not a traceback."""
    try:
        with stop_on_signals():  # Ctrl-C and SIGTERM end any command within seconds
            app()
    except RagError as exc:
        err.print(f"[red]error:[/red] {console_text(exc)}", highlight=False)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
