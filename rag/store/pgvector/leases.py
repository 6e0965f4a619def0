"""Files claimed by ingest workers: how workers on several machines share one folder.

Each index has a `claims` table, one row per file a worker has seen. A worker claims a
few files at a time with `SELECT ... FOR UPDATE SKIP LOCKED` (workers claiming at the
same instant skip each other's rows instead of waiting) and holds them for a lease
(`store.claim_lease`); a file is free again when its lease runs out (its worker died) or
its worker releases its claims at the end of its run. A file already in the index as it
is now (same size and modification time) is never claimed: it is done, whoever did it.
The database is the only coordinator; nothing else runs between the workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from rag.store.abilities import FileLeases, Taken, Wanted
from rag.store.base import FileRecord

logger = logging.getLogger(__name__)


class FileClaims(FileLeases):
    """One worker's claims on the files of one pgvector index."""

    def __init__(
        self,
        sql: Callable[[str], bytes],
        txn: Callable[[], AbstractContextManager[tuple[Any, int | None]]],
        owner: str,
        lease: float,
    ) -> None:
        """`sql` puts the index's schema into a statement; `txn` opens one transaction on
        the index's database (the store's own)."""
        self._sql = sql
        self._txn = txn
        self.owner = owner
        self.lease = float(lease)

    def take(self, wanted: Sequence[Wanted], limit: int) -> Taken:
        """Claim up to `limit` of the wanted files that are neither done nor held."""
        paths = [w.path for w in wanted]
        sql = self._sql
        with self._txn() as (conn, _):
            rows = conn.execute(
                sql(
                    "SELECT f.path, f.hash, f.size, f.mtime, f.ingested_at, f.name, f.title, f.type, "
                    "f.lang FROM {s}.files f JOIN unnest(%s::text[], %s::bigint[], %s::float8[]) "
                    "AS w(path, size, mtime) ON f.path = w.path AND f.size = w.size AND f.mtime = w.mtime "
                    "WHERE f.removed IS NULL"
                ),
                (paths, [w.size for w in wanted], [w.mtime for w in wanted]),
            ).fetchall()
            done = {str(r[0]): FileRecord(*r) for r in rows}
            todo = [p for p in paths if p not in done]
            conn.execute(
                sql(
                    "INSERT INTO {s}.claims (path, owner, expires) SELECT p, '', '-infinity' "
                    "FROM unnest(%s::text[]) p ON CONFLICT (path) DO NOTHING"
                ),
                (todo,),
            )
            claimed = (
                [
                    str(r[0])
                    for r in conn.execute(
                        sql(
                            "UPDATE {s}.claims k SET owner = %s, expires = now() + make_interval(secs => %s) "
                            "WHERE k.path IN (SELECT c.path FROM {s}.claims c WHERE c.path = ANY(%s) "
                            "AND (c.expires < now() OR c.owner = %s) ORDER BY c.path LIMIT %s "
                            "FOR UPDATE SKIP LOCKED) RETURNING k.path"
                        ),
                        (self.owner, self.lease, todo, self.owner, max(0, limit)),
                    ).fetchall()
                ]
                if todo and limit > 0
                else []
            )
        mine = set(claimed)
        return Taken(claimed, done, [p for p in todo if p not in mine])

    def release(self) -> None:
        """Give back every file this worker holds (and drop rows nobody holds)."""
        with self._txn() as (conn, _):
            conn.execute(self._sql("DELETE FROM {s}.claims WHERE owner IN (%s, '')"), (self.owner,))
