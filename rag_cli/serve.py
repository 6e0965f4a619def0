"""`rag serve`: the HTTP API."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

import typer

from rag_cli.app import ConfigOpt, SetOpt, app, err, settings_from
from rag_cli.stopping import arm_deadline

#: Seconds the shutdown may take beyond `server.shutdown_timeout` (model threads, the
#: running ingest job's file) before the process exits without waiting further.
SHUTDOWN_MARGIN = 1.5

if TYPE_CHECKING:
    import uvicorn


@app.command("serve")
def serve_command(
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default 8000)."),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve /ask and the OpenAI-compatible /v1 API; models load once at start-up."""
    import uvicorn

    from api.app import create_app
    from api.origin import exposure_warnings

    settings = settings_from(config, set_, **{"server.host": host, "server.port": port})
    for warning in exposure_warnings(settings.server):
        err.print(f"[bold yellow]warning:[/bold yellow] {warning}", highlight=False, markup=True)
    if settings.server.access_log:
        logging.getLogger("rag.access").setLevel(logging.INFO)
    served = uvicorn.Config(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # rag.access logs each request, with its answer's figures
        # On SIGTERM, requests still running after this long are cancelled; a cancelled
        # answer stops generating at its next token.
        timeout_graceful_shutdown=settings.server.shutdown_timeout,
    )
    # uvicorn takes SIGINT and SIGTERM while it serves, and raises the one it got again
    # once it has stopped: then it ends the process as it would have without `rag`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _bounded_server(served, settings.server.shutdown_timeout + SHUTDOWN_MARGIN).run()


def _bounded_server(config: uvicorn.Config, limit: float) -> uvicorn.Server:
    """uvicorn's server, whose shutdown on SIGINT or SIGTERM ends within `limit` seconds
    (see rag_cli.stopping)."""
    import uvicorn

    class BoundedServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            arm_deadline(limit)
            super().handle_exit(sig, frame)

    return BoundedServer(config)
