"""FAISS vectors: the exact index and the IVF one (8-bit scalar quantization) that a large
index switches to: searched, filtered, removed from, written and read again; and a local
store crossing `store.ivf_threshold` with real embeddings: trained at commit, followed by
readers, written again only when it changed enough, trained again when it grew, exact
again when it shrank."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from rag.config import StoreSettings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.store import FileRecord, Filters, LocalCatalog, Manifest
from rag.store.local.store import LocalStore
from rag.store.local.vectors import FaissVectors, ivf_lists
from rag.types import Chunk

DIM = 64


def clustered(n: int, centres: int, seed: int) -> np.ndarray:
    """Unit vectors around `centres` random directions, like embeddings of a few topics."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(0).standard_normal((centres, DIM)).astype(np.float32)
    vectors = means[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    vectors = clustered(6000, 60, seed=1)
    return np.arange(6000, dtype=np.int64) * 3 + 7, vectors  # ids need not be contiguous


def ivf_of(ids: np.ndarray, vectors: np.ndarray, nprobe: int = 8) -> FaissVectors:
    ivf = FaissVectors.trained(DIM, vectors[::3], ivf_lists(len(vectors)), nprobe)
    ivf.add(ids, vectors)
    return ivf


def test_ivf_finds_what_exact_search_finds(data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = data
    exact = FaissVectors(DIM)
    exact.add(ids, vectors)
    ivf = ivf_of(ids, vectors)
    assert ivf.is_ivf and ivf.lists == ivf_lists(6000) == 77 and not exact.is_ivf
    assert np.array_equal(np.sort(ivf.ids()), ids) and len(ivf) == 6000
    queries = clustered(200, 60, seed=2)
    found = [len({i for i, _ in exact.search(q, 10)} & {i for i, _ in ivf.search(q, 10)}) for q in queries]
    assert np.mean(found) / 10 >= 0.9  # 8 of 77 lists, vectors quantized to 8 bits
    top, score = ivf.search(vectors[123], 1)[0]
    assert top == ids[123] and score == pytest.approx(1.0, abs=0.02)


def test_ivf_removal_filters_and_file(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    ids, vectors = data
    ivf = ivf_of(ids, vectors)
    query = vectors[0]
    nearest = [i for i, _ in ivf.search(query, 50)]
    ivf.remove(nearest[:40])
    hits = ivf.search(query, 20)
    assert len(hits) == 20 and not {i for i, _ in hits} & set(nearest[:40])
    assert len(ivf) == 6000 - 40 and ivf.total == 6000

    # Allowed ids far from the query, in lists the query does not probe: all found anyway.
    far = ids[np.argsort(vectors @ query)[:5]]
    assert {i for i, _ in ivf.search(query, 10, allowed=far)} == set(far.tolist())

    expected = ivf.search(query, 20)
    assert ivf.compact() == 40 and ivf.total == len(ivf) == 5960 and not ivf.dead
    assert ivf.search(query, 20) == expected
    ivf.save(tmp_path / "v.faiss")
    again = FaissVectors.load(tmp_path / "v.faiss", DIM, nprobe=8)
    assert again.is_ivf and again.total == 5960 and again.search(query, 20) == expected


# -- a local store crossing the threshold, real embeddings ---------------------------

ANIMALS = ["cat", "horse", "owl", "salmon", "bee", "wolf", "frog", "eagle", "goat", "crab"]
ACTS = ["sleeps", "hunts", "sings", "swims", "builds a nest", "runs", "eats berries", "waits"]
PLACES = [
    "in the forest",
    "near the river",
    "on the mountain",
    "in a city park",
    "at the farm",
    "under the bridge",
    "in the desert",
    "by the sea",
    "in a cave",
]
PER_DOC = 10


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """720 distinct sentences: 72 documents of 10 chunks."""
    combos = itertools.product(ANIMALS, ACTS, PLACES)
    return [f"The {a} {v} {p}, says report {n}." for n, (a, v, p) in enumerate(combos)]


@pytest.fixture(scope="module")
def embedded(texts: list[str], embedder: SentenceTransformerEmbedder) -> np.ndarray:
    return embedder.embed(texts)


def doc_record(doc: int) -> FileRecord:
    return FileRecord(f"/docs/doc{doc:03d}.txt", f"hash{doc}", 1, 1.0, 1.0, f"doc{doc:03d}.txt")


def put(store: LocalStore, docs: range, texts: list[str], vectors: np.ndarray) -> None:
    for doc in docs:
        rows = range(doc * PER_DOC, (doc + 1) * PER_DOC)
        chunks = [Chunk(texts[r], doc_record(doc).name, r - rows.start) for r in rows]
        store.replace_file(doc_record(doc), [(chunks, vectors[rows.start : rows.stop])])


def files(store: LocalStore) -> list[str]:
    return sorted(p.name for p in store.folder.glob("vectors-*"))


def finds_itself(store: LocalStore, texts: list[str], vectors: np.ndarray, rows: range) -> bool:
    """Each row's own vector finds its own chunk first, with its exact cosine (1)."""
    for row in rows:
        hit = store.search(vectors[row], 3)[0]
        if hit.chunk.text != texts[row] or abs(hit.score - 1.0) > 1e-4:
            return False
    return True


def test_store_trains_ivf_at_the_threshold_and_follows_changes(
    tmp_path: Path, texts: list[str], embedded: np.ndarray
) -> None:
    settings = StoreSettings(ivf_threshold=300, ivf_nprobe=4, ivf_rewrite_share=0.2, ivf_retrain_growth=2.0)
    catalog = LocalCatalog(tmp_path, settings)
    manifest = Manifest(
        embedder="all-MiniLM-L6-v2",
        dimension=embedded.shape[1],
        chunk_size=200,
        chunk_overlap=30,
        encoding="x",
    )
    store = catalog.create("ix", manifest)
    put(store, range(25), texts, embedded)
    store.commit()
    assert store.db.base is None and files(store) == []  # 250 < 300: exact, nothing written

    put(store, range(25, 35), texts, embedded)
    store.commit()  # 350: trained, its lists written
    generation = store.generation
    assert store.db.base == (generation, 350) and files(store) == [f"vectors-{generation}.faiss"]
    assert store._vectors is None  # the writer still holds no vectors

    reader = catalog.open("ix", readonly=True)
    assert reader.vectors.is_ivf and reader.vectors.lists == ivf_lists(350)
    assert finds_itself(reader, texts, embedded, range(0, 350, 7))
    allowed = reader.search(embedded[0], 5, Filters(path="doc031.txt"))
    assert len(allowed) == 5 and {h.chunk.path for h in allowed} == {"doc031.txt"}

    # Small changes: the file stays, readers add and drop the rows committed since.
    store.remove_file(doc_record(4).path)
    put(store, range(35, 38), texts, embedded)
    store.commit()
    assert store.db.base == (generation, 350) and files(store) == [f"vectors-{generation}.faiss"]
    assert finds_itself(reader, texts, embedded, range(350, 380, 3))
    assert all(h.chunk.path != "doc004.txt" for h in reader.search(embedded[42], 10))
    assert reader.vectors.is_ivf and len(reader.vectors) == reader.chunk_count() == 370

    # A writer killed before its commit: readers keep the committed state, the next one goes on.
    put(store, range(38, 40), texts, embedded)
    store.close()
    assert reader.search(embedded[385], 1)[0].chunk.text != texts[385]
    store = catalog.open("ix")
    store.commit()
    assert finds_itself(reader, texts, embedded, range(380, 400, 4))

    # Enough added since the file: written again (same training), the old file deleted.
    put(store, range(40, 50), texts, embedded)
    store.commit()
    assert store.db.base == (store.generation, 350) and len(files(store)) == 1
    assert finds_itself(reader, texts, embedded, range(400, 500, 9))
    # Twice the vectors it was trained on: trained again.
    put(store, range(50, 72), texts, embedded)
    store.commit()
    assert store.db.base == (store.generation, 710)
    assert finds_itself(reader, texts, embedded, range(0, 720, 31))  # the reader followed
    assert reader.vectors.lists == ivf_lists(710)

    # Shrunk below half the threshold: exact again, no file.
    for doc in range(14, 72):
        store.remove_file(doc_record(doc).path)
    store.commit()
    assert store.db.base is None and files(store) == []
    assert finds_itself(reader, texts, embedded, range(0, 140, 13)) and not reader.vectors.is_ivf
    reader.close()
    store.close()
