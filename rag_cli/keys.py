"""`rag keys create|list|revoke`: the API's keys, each with a role and the indexes it sees.

Secrets are printed once, at creation; the store keeps their salted hashes only. A running
server reads the store on every request: a revoked key stops working at once.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from rag_cli.app import ConfigOpt, SetOpt, app, fail, out, settings_from

keys_app = typer.Typer(
    help="Create, list and revoke API keys (scoped to indexes, with a role).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name for the key, shown in logs and `rag keys list`.")],
    indexes: Annotated[
        str, typer.Option("--indexes", help="Indexes the key may see, comma-separated, or '*' for all.")
    ],
    role: Annotated[
        str, typer.Option("--role", help="read (ask, search), ingest (also add documents) or admin.")
    ] = "read",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Date the key stops working (YYYY-MM-DD, UTC).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Create a key and print its secret, once: it cannot be shown again."""
    from api.keys import ROLES, KeyStore, keys_path, parse_expiry, parse_indexes

    settings = settings_from(config, set_)
    if role not in ROLES:
        raise fail(f"--role {role!r}: one of {', '.join(ROLES)}")
    scope = parse_indexes(indexes)
    until = parse_expiry(expires) if expires else None
    secret = KeyStore(keys_path(settings)).create(name, role, scope, until)
    out.print(secret, highlight=False, soft_wrap=True)
    typer.echo(f"key {name!r} created; the secret above is shown only this once", err=True)


@keys_app.command("list")
def keys_list(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the keys: name, role, indexes, created, last used, expiry (never secrets)."""
    from api.keys import ALL, KeyStore, keys_path

    settings = settings_from(config, set_)
    keys = KeyStore(keys_path(settings)).list()
    rows = [
        {
            "name": k.name,
            "role": k.role,
            "indexes": ALL if k.indexes is None else ",".join(k.indexes),
            "created": _when(k.created),
            "last_used": _when(k.last_used),
            "expires": _when(k.expires),
        }
        for k in keys
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("no keys; create one with `rag keys create NAME --indexes INDEX --role read`")
        return
    table = Table(*rows[0])
    for row in rows:
        table.add_row(*(v or "-" for v in row.values()))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Revoke a key: a running server refuses it from its next request."""
    from api.keys import KeyStore, keys_path

    settings = settings_from(config, set_)
    if not KeyStore(keys_path(settings)).revoke(name):
        raise fail(f"no key named {name!r}")
    out.print(f"key {name!r} revoked")


def _when(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
