"""The local store's own machinery: FAISS dead ids, compaction, rolled-back documents, one
stored copy of each vector, indexes of the previous layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.store import LocalCatalog
from rag.store.local.store import LocalStore as Index
from rag.types import Chunk
from tests.rag.test_store_contract import PER_DOC, batches, manifest, record, unit_vectors


def new_index(folder: Path, docs: range) -> Index:
    index = LocalCatalog(folder.parent).create(folder.name, manifest())
    for doc in docs:
        index.replace_file(record(doc), batches(doc))
    index.commit()
    return index


def results(index: Index, queries: np.ndarray, k: int) -> list[list[tuple[str, int, float]]]:
    return [[(h.chunk.path, h.chunk.ordinal, round(h.score, 5)) for h in index.search(q, k)] for q in queries]


def paths(index: Index, vector: np.ndarray, k: int) -> set[str]:
    return {h.chunk.path for h in index.search(vector, k)}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    index = new_index(tmp_path / "ix", range(20))
    yield index
    index.close()


def test_removed_chunks_are_never_found(index: Index) -> None:
    targets = [*unit_vectors(3, PER_DOC), *unit_vectors(4, PER_DOC)]  # each its own chunk's vector
    old_ids = {index.search(v, 1)[0].id for v in targets}
    assert len(old_ids) == 2 * PER_DOC
    assert index.remove_file(record(3).path) == PER_DOC
    index.replace_file(record(4), batches(4, seed=99))  # doc 4's old vectors die as well
    assert index.vectors.dead == old_ids  # marked, not yet dropped
    for vector in targets:
        hits = index.search(vector, 7)
        assert len(hits) == 7  # dead vectors nearest the query take no place in the k best
        assert not {h.id for h in hits} & old_ids
        assert record(3).path not in {h.chunk.path for h in hits}
    everything = index.search(targets[0], 1000)
    assert len(everything) == index.chunk_count() == 19 * PER_DOC
    ids = [h.id for h in everything]
    assert len(set(ids)) == len(ids) and not set(ids) & old_ids

    index.commit()  # few dead vectors: kept in memory; a store opened now builds without them
    assert index.vectors.total == 21 * PER_DOC
    for readonly in (False, True):
        again = LocalCatalog(index.folder.parent).open(index.folder.name, readonly=readonly)
        try:
            assert again.vectors.total == len(again.vectors) == again.chunk_count()
            assert not {h.id for h in again.search(targets[0], 1000)} & old_ids
        finally:
            again.close()


def test_compaction_keeps_results_identical(index: Index, tmp_path: Path) -> None:
    queries = unit_vectors(1000, 30)
    assert not index.vectors.dead  # built now, so that the changes below leave dead vectors
    for doc in (2, 5, 11):
        index.remove_file(record(doc).path)
    for doc in (7, 13):
        index.replace_file(record(doc), batches(doc, seed=500 + doc))
    before = results(index, queries, 10)

    fresh = new_index(tmp_path / "fresh", range(0))
    for doc in sorted(set(range(20)) - {2, 5, 11}):
        fresh.replace_file(record(doc), batches(doc, seed=500 + doc if doc in (7, 13) else None))
    assert results(fresh, queries, 10) == before
    fresh.close()

    assert index.vectors.compact() == 5 * PER_DOC
    assert not index.vectors.dead and index.vectors.total == index.chunk_count()
    assert results(index, queries, 10) == before

    index.remove_file(record(0).path)
    index.compact_dead_fraction = 0.0  # every commit compacts
    index.commit()
    assert index.vectors.total == index.chunk_count() == 16 * PER_DOC
    expected = results(index, queries, 10)
    reopened = LocalCatalog(index.folder.parent).open(index.folder.name, readonly=True)
    try:
        assert reopened.vectors.total == reopened.chunk_count() and not reopened.vectors.dead
        assert results(reopened, queries, 10) == expected
    finally:
        reopened.close()


def test_commit_compacts_once_dead_vectors_pass_the_threshold(index: Index) -> None:
    index.compact_dead_fraction = 0.2
    assert index.vectors.total == 100  # built from SQLite when first asked for
    for doc in range(4):  # 20 dead of 100: not over the threshold
        index.remove_file(record(doc).path)
    index.commit()
    assert index.vectors.total == 100 and len(index.vectors.dead) == 20
    index.remove_file(record(4).path)
    index.commit()
    assert index.vectors.total == index.chunk_count() == 75 and not index.vectors.dead


def test_failed_document_leaves_no_vectors(index: Index) -> None:
    def broken() -> Iterator[tuple[list[Chunk], np.ndarray]]:
        yield from batches(30)
        raise OSError("disk went away")

    total, chunks = index.vectors.total, index.chunk_count()
    with pytest.raises(OSError):
        index.replace_file(record(30), broken())
    assert (index.vectors.total, index.chunk_count()) == (total, chunks)
    assert record(30).path not in index.files()
    # The store hands out the rolled-back ids again: each must mean one vector only.
    index.replace_file(record(31), batches(31))
    assert paths(index, unit_vectors(31, PER_DOC)[0], 1) == {record(31).path}
    assert len(index.vectors) == index.chunk_count()


def test_each_vector_is_stored_once_and_ingest_holds_none(tmp_path: Path) -> None:
    index = new_index(tmp_path / "ix", range(0))
    for doc in range(20):
        index.replace_file(record(doc), batches(doc))
    index.commit()
    assert index._vectors is None  # writing and committing built no search structure
    assert not list(index.folder.glob("vectors-*")) and not list(index.folder.glob("*.tmp"))
    reader = LocalCatalog(index.folder.parent).open(index.folder.name, readonly=True)
    try:
        hit = reader.search(unit_vectors(7, PER_DOC)[2], 1)[0]
        assert (hit.chunk.path, hit.chunk.ordinal) == (record(7).path, 2)
        assert np.array_equal(reader.vector(hit.id), unit_vectors(7, PER_DOC)[2])
        assert reader.size_on_disk() < index.size_on_disk() + 1  # the same files: no FAISS copy
    finally:
        reader.close()
    index.close()


def test_an_index_of_the_previous_layout_keeps_working(tmp_path: Path) -> None:
    """Format 2 indexes also wrote every committed vector to vectors-<gen>.faiss; they open as
    they are (the vectors are read from SQLite) and their next commit deletes that copy."""
    import faiss

    index = new_index(tmp_path / "ix", range(10))
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(index.manifest.dimension))
    for ids, matrix in index.db.vectors(index.manifest.dimension):
        old.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
    generation = index.generation
    faiss.write_index(old, str(index.folder / f"vectors-{generation}.faiss"))
    index.db.db.execute("DROP INDEX chunks_versions")
    index.close()

    reader = LocalCatalog(tmp_path).open("ix", readonly=True)
    assert paths(reader, unit_vectors(4, PER_DOC)[0], 1) == {record(4).path}
    writer = LocalCatalog(tmp_path).open("ix")
    writer.remove_file(record(4).path)
    writer.commit()
    assert not list(writer.folder.glob("vectors-*"))
    assert record(4).path not in paths(reader, unit_vectors(4, PER_DOC)[0], 5)
    assert len(reader.vectors) == reader.chunk_count() == 9 * PER_DOC
    reader.close()
    writer.close()


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 40 directions, like embeddings of a few topics."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(0).standard_normal((40, dim)).astype(np.float32)
    vectors = means[rng.integers(0, 40, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_file_written_in_batches_is_what_faiss_writes(tmp_path: Path) -> None:
    """Trained and written batch by batch (`rag.store.local.ivf`): the file holds the bytes FAISS
    writes for the same index, its trained part is read back alone, and it searches as
    well as an index FAISS trains itself on the same sample."""
    import faiss

    from rag.store.local import ivf

    vectors, ids = clustered(6000, 32, 1), np.arange(6000, dtype=np.int64) * 3 + 7
    sample = vectors[::3]
    trained = ivf.train(32, 24, lambda: (sample[i : i + 300] for i in range(0, len(sample), 300)))
    path = tmp_path / "v.faiss"
    assert (
        ivf.write(trained, ((ids[i : i + 700], vectors[i : i + 700]) for i in range(0, 6000, 700)), path)
        == 6000
    )
    whole = faiss.clone_index(trained)
    whole.add_with_ids(vectors, ids)
    assert path.read_bytes() == faiss.serialize_index(whole).tobytes()
    again = ivf.trained_from(path)
    assert again is not None and again.ntotal == 0
    assert faiss.serialize_index(again).tobytes() == faiss.serialize_index(trained).tobytes()

    own = faiss.index_factory(32, "IVF24,SQ8", faiss.METRIC_INNER_PRODUCT)
    own.train(sample)
    own.add_with_ids(vectors, ids)
    queries = clustered(200, 32, 2)
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    truth = ids[exact.search(queries, 10)[1]]
    recalls = []
    for index in (faiss.read_index(str(path)), own):
        index.nprobe = 4
        found = index.search(queries, 10)[1]
        recalls.append(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
    assert recalls[0] >= recalls[1] - 0.03 and recalls[0] > 0.8


def test_ivf_commit_reads_the_vectors_in_bounded_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit that trains the IVF index never holds more than a batch of the stored
    vectors at once, and a reader searches the file it wrote."""
    from rag.config import StoreSettings
    from rag.store.local import ivf_files
    from rag.store.local.chunks import ChunkDB

    monkeypatch.setattr(ivf_files, "BUILD_BATCH", 50)
    read: list[int] = []
    vectors_of, stored = ChunkDB.vectors_of, ChunkDB.vectors

    def counted_of(self: ChunkDB, ids: list[int], dimension: int) -> np.ndarray:
        read.append(len(ids))
        return vectors_of(self, ids, dimension)

    def counted(self: ChunkDB, dimension: int, **kw: object) -> Iterator[tuple[list[int], np.ndarray]]:
        for ids, matrix in stored(self, dimension, **kw):  # type: ignore[arg-type]
            read.append(len(ids))
            yield ids, matrix

    monkeypatch.setattr(ChunkDB, "vectors_of", counted_of)
    monkeypatch.setattr(ChunkDB, "vectors", counted)
    catalog = LocalCatalog(tmp_path, StoreSettings(ivf_threshold=100, ivf_nprobe=16))
    writer = catalog.create("ix", manifest())
    for doc in range(30):
        writer.replace_file(record(doc), batches(doc))
    writer.commit()
    assert writer.db.base is not None and read and max(read) <= 50
    reader = catalog.open("ix", readonly=True)
    probe = unit_vectors(12, PER_DOC)[3]  # document 12's fourth chunk, as `batches` draws it
    assert reader.vectors.is_ivf and len(reader.vectors) == 30 * PER_DOC
    hit = reader.search(probe, 1)[0]
    assert (hit.chunk.path, hit.chunk.ordinal) == (record(12).path, 3)
    reader.close()
    writer.close()
