"""`rag serve`: the HTTP API."""

from __future__ import annotations

import logging

import typer

from rag_cli.app import ConfigOpt, SetOpt, app, err, settings_from


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
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # rag.access logs each request, with its answer's figures
        # On SIGTERM, requests still running after this long are cancelled; a cancelled
        # answer stops generating at its next token.
        timeout_graceful_shutdown=settings.server.shutdown_timeout,
    )
