"""Ingest workers that share the work: several `rag ingest` (or `--watch`) processes, on
one machine or many, bringing one index up to date with one folder at once.

A store that can share its writing (one that declares `SharedIngest`, in a catalog that
declares `SharedLocks`: the pgvector store; see `rag.store.abilities`) gives each worker a
shared lock on the index and claims on files: a worker takes the files it found a few at
a time, skips those another worker holds or has already written, and before it ends waits
for the files others hold, so when `run` returns every file it found is in the index,
exactly once. Any other store keeps one writer at a time: its exclusive lock, and every
file in one round.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from rag.config import StoreSettings
from rag.store import Catalog, FileRecord, SharedIngest, SharedLocks, StoreWriter, Wanted

logger = logging.getLogger(__name__)

ROUND_FILES = 16  # files claimed at a time: small enough to share, large enough to batch
POLL_SECONDS = 0.5  # how often a worker looks again at files another worker holds


class _Found(Protocol):
    key: str
    size: int
    mtime: float


F = TypeVar("F", bound=_Found)


def write_lock(catalog: Catalog, name: str) -> AbstractContextManager[None]:
    """The lock an ingest run holds: shared with other workers where the store allows it."""
    return catalog.lock_shared(name) if isinstance(catalog, SharedLocks) else catalog.lock(name)


def worker_id() -> str:
    """Who holds a claim: machine, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rounds(
    store: StoreWriter,
    found: Sequence[F],
    known: dict[str, FileRecord],
    settings: StoreSettings,
) -> Iterator[list[F]]:
    """The files this worker is to go through, round by round, in their order. Files other
    workers wrote meanwhile come with their records put in `known` (so they count as
    unchanged); the caller writes each round before asking for the next."""
    if not isinstance(store, SharedIngest):
        yield list(found)
        return
    claims = store.claims(worker_id(), settings.claim_lease)
    order = {f.key: n for n, f in enumerate(found)}
    remaining = {f.key: f for f in found}
    try:
        while remaining:
            taken = claims.take([Wanted(f.key, f.size, f.mtime) for f in remaining.values()], ROUND_FILES)
            known.update(taken.done)
            ready = [remaining.pop(k) for k in [*taken.done, *taken.claimed] if k in remaining]
            if ready:
                yield sorted(ready, key=lambda f: order[f.key])
            elif taken.held:
                logger.debug("waiting for files other workers hold count=%d", len(taken.held))
                time.sleep(POLL_SECONDS)
            else:  # cannot happen: each file is done, claimed or held
                break
    finally:
        claims.release()
