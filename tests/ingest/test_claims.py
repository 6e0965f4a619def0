"""How ingest workers share an index, run against every store kind: a store that declares
no shared ingest (local) gets one worker at a time, under the exclusive lock, going through
every file it found in one round; one that does (pgvector) shares the lock and hands each
worker its files a round at a time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ingest.claims import ROUND_FILES, rounds, write_lock
from rag.config import StoreSettings
from rag.errors import IndexLockedError
from rag.store import Catalog, FileRecord, Store
from tests import pgserver
from tests.rag import test_store_contract as contract
from tests.rag.test_store_contract import SHARED, record

pg_server, pg_url = pgserver.pg_server, pgserver.pg_url  # the fixtures
catalog, writer = contract.catalog, contract.writer  # every store kind, an index "ix" of 20 documents


@dataclass(frozen=True)
class Found:
    key: str
    size: int
    mtime: float


def shared(request: pytest.FixtureRequest) -> bool:
    return SHARED[request.node.callspec.params["catalog"]]


def test_rounds_hand_out_every_file_found_once_in_order(
    catalog: Catalog, writer: Store, request: pytest.FixtureRequest
) -> None:
    found = [Found(f"/docs/new{n:03d}.txt", 1, 1.0) for n in range(ROUND_FILES + 4)]
    known: dict[str, FileRecord] = {}
    got = list(rounds(writer, found, known, StoreSettings.model_validate({})))
    assert [f for r in got for f in r] == found and known == {}
    assert [len(r) for r in got] == ([ROUND_FILES, 4] if shared(request) else [len(found)])


def test_a_store_without_shared_ingest_goes_through_every_file_in_one_round(
    catalog: Catalog, writer: Store, request: pytest.FixtureRequest
) -> None:
    """Files already written as they are found (doc 3) come in the round too: only a store
    that shares the work tells which files are done (and puts their records in `known`)."""
    found = [Found(record(doc).path, 1, 1.0) for doc in (7, 3)] + [Found("/docs/new.txt", 1, 1.0)]
    known: dict[str, FileRecord] = {}
    got = list(rounds(writer, found, known, StoreSettings.model_validate({})))
    if shared(request):
        assert got == [found] and set(known) == {record(7).path, record(3).path}
    else:
        assert got == [found] and known == {}


def test_the_write_lock_is_shared_only_where_the_catalog_declares_it(
    catalog: Catalog, writer: Store, request: pytest.FixtureRequest
) -> None:
    with write_lock(catalog, "ix"):
        with pytest.raises(IndexLockedError), catalog.lock("ix"):
            pass  # a deletion waits for no ingest: it is refused
        if shared(request):
            with write_lock(catalog, "ix"):
                pass  # another worker writes beside this one
        else:
            with pytest.raises(IndexLockedError), write_lock(catalog, "ix"):
                pass
