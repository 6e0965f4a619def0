"""Scale benchmark of the local store's vectors: a 1,000,000-chunk IVF index, and ingest memory.

    python bench/scale.py --real-from indexes/default            # real vectors of an index
    python bench/scale.py --real 1000                            # or: embed SciFact abstracts
    python bench/scale.py --chunks 200000 --nprobe 8,16 --skip-ingest

Search part. The vectors are synthetic but clustered like real ones: real all-MiniLM-L6-v2
vectors of a sample of chunks (read from an index's store.sqlite, or the first N SciFact
abstracts embedded here) give `--topics` cluster centres (each a real vector plus noise,
as close to it as a real chunk is to its nearest other chunk); each synthetic vector is a
centre plus Gaussian noise, normalized, the noise scaled so that a synthetic vector's
nearest neighbour is as close (median cosine) as a real chunk's nearest other chunk.
Queries are more vectors drawn the same way, not in the index (or, with --real-queries,
SciFact questions embedded). The
index is built as the store builds it at commit (`FaissVectors.trained` on a sample of
`TRAINING_PER_LIST` vectors per list, `ivf_lists(n)` lists, every vector added), written
to a file, then a fresh process loads it as a reader does and is measured: memory taken by
the loaded index (RSS before and after) per chunk, and the latency of a search as the
store runs it (2k+10 candidates from the IVF lists, re-scored with their float vectors,
read here from a memory-mapped file standing in for SQLite). Recall@10 is against exact
search (IndexFlatIP over the same vectors).

Ingest part. Peak RSS of a fresh process that writes N synthetic chunks (100 per
document, random unit vectors, short texts) through the store API (`replace_file`, then
`commit`) with the default settings, for each N; no embedder, so the figure is the
store's own memory.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()

from rag.hardware import processor_line
from rag.store.local.ivf_files import TRAINING_PER_LIST
from rag.store.local.vectors import FaissVectors, ivf_lists

SCIFACT = Path(__file__).parents[1].parent / "shared" / "eval" / "scifact" / "corpus.jsonl"
BLOCK = 50_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def real_vectors(args: argparse.Namespace) -> np.ndarray:
    if args.real_from:
        db = sqlite3.connect(f"file:{Path(args.real_from) / 'store.sqlite'}?mode=ro", uri=True)
        rows = db.execute("SELECT vector FROM chunks WHERE removed IS NULL").fetchall()
        return np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    from rag.config import load_settings
    from rag.embedders import make_embedder

    texts = []
    with open(SCIFACT) as fh:
        for line in fh:
            if len(texts) >= args.real:
                break
            doc = json.loads(line)
            texts.append(f"{doc['title']}\n\n{doc['text']}")
    return make_embedder(load_settings().embedder).embed(texts)


def real_queries(n: int) -> np.ndarray:
    from rag.config import load_settings
    from rag.embedders import make_embedder

    with open(SCIFACT.parent / "queries.jsonl") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(n), fh, strict=False)]
    return make_embedder(load_settings().embedder).embed(texts)


def noise_scale(
    real: np.ndarray, chunks: int, topics: int, rng: np.random.Generator
) -> tuple[np.ndarray, float, float]:
    """(centres, sigma, target). The centres are `topics` points around the real vectors,
    each as close to its real vector as a real chunk is to its nearest other chunk (median
    cosine `target`), so that neighbourhoods are a continuum rather than a few blobs; sigma
    is the noise with which a vector's nearest neighbour in the synthetic index is that close
    too. Each centre has about chunks/topics siblings; the nearest of them is simulated for
    each sigma tried (bisection)."""
    others = real @ real.T
    np.fill_diagonal(others, -1)
    target = float(np.median(others.max(axis=1)))
    centres = noisy(real[rng.integers(0, len(real), topics)], float(np.sqrt(1 / target**2 - 1)), rng)
    siblings = max(1, chunks // topics)
    low, high = 0.0, 4.0
    for _ in range(20):
        sigma = (low + high) / 2
        picked = centres[rng.integers(0, len(centres), 100)]
        queries = noisy(picked, sigma, rng)
        nearest = [
            float(np.max(noisy(np.repeat(c[None], siblings, axis=0), sigma, rng) @ q))
            for c, q in zip(picked, queries, strict=True)
        ]
        low, high = (sigma, high) if np.median(nearest) > target else (low, sigma)
    return centres, (low + high) / 2, target


def noisy(picked: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Each row plus Gaussian noise of norm about sigma, normalized."""
    noise = rng.standard_normal(picked.shape, dtype=np.float32) * (sigma / np.sqrt(picked.shape[1]))
    vectors = picked + noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def synthetic(centres: np.ndarray, n: int, sigma: float, seed: int) -> np.ndarray:
    """n vectors, each around a centre picked at random."""
    rng = np.random.default_rng(seed)
    return noisy(centres[rng.integers(0, len(centres), n)], sigma, rng)


def search_part(args: argparse.Namespace, work: Path) -> None:
    import faiss

    rng = np.random.default_rng(0)
    real = real_vectors(args)
    centres, sigma, target = noise_scale(real, args.chunks, args.topics, rng)
    dim = real.shape[1]
    print(
        f"real vectors          {len(real)}; median cosine of a chunk to its nearest other chunk "
        f"{target:.3f}; {len(centres)} centres around them, each that close to one"
    )
    print(
        f"noise                 sigma {sigma:.3f} (Gaussian, per vector), so that a synthetic "
        "vector's nearest neighbour is as close"
    )

    raw = np.lib.format.open_memmap(
        work / "vectors.npy", mode="w+", dtype=np.float32, shape=(args.chunks, dim)
    )
    exact = faiss.IndexFlatIP(dim)
    for start in range(0, args.chunks, BLOCK):
        block = synthetic(centres, min(BLOCK, args.chunks - start), sigma, seed=1 + start // BLOCK)
        raw[start : start + len(block)] = block
        exact.add(block)
    raw.flush()
    queries = synthetic(centres, args.queries, sigma, seed=10**6)
    if args.real_queries:  # questions, embedded: not drawn like the chunks
        queries = real_queries(args.queries)
    np.save(work / "queries.npy", queries)
    _, truth = exact.search(queries, 10)
    sims = exact.search(queries, 10)[0]
    tenth = np.sort(real @ real.T, axis=1)[:, -11]
    print(
        f"synthetic index       {args.chunks} vectors; queries' nearest-neighbour cosine median "
        f"{np.median(sims[:, 0]):.3f}, 10th {np.median(sims[:, 9]):.3f} (real chunks: 10th "
        f"{np.median(tenth):.3f})"
    )
    del exact

    start = time.perf_counter()
    lists = ivf_lists(args.chunks)
    sample = min(args.chunks, TRAINING_PER_LIST * lists)
    sample_ids = np.sort(rng.choice(args.chunks, size=sample, replace=False))
    ivf = FaissVectors.trained(dim, np.asarray(raw[sample_ids]), lists)
    trained = time.perf_counter() - start
    for begin in range(0, args.chunks, BLOCK):
        ivf.add(np.arange(begin, min(begin + BLOCK, args.chunks)), np.asarray(raw[begin : begin + BLOCK]))
    built = time.perf_counter() - start
    ivf.save(work / "ivf.faiss")
    print(
        f"IVF build             {lists} lists, trained on {len(sample_ids)} in {trained:.1f} s; "
        f"all added in {built:.1f} s; written in {time.perf_counter() - start - built:.1f} s; "
        f"file {(work / 'ivf.faiss').stat().st_size / args.chunks:.0f} bytes/chunk"
    )
    del ivf

    print(f"{'nprobe':>6} {'recall@10':>10} {'p50 ms':>8} {'p95 ms':>8} {'RAM B/chunk':>12}")
    for nprobe in args.nprobe:
        runs = []
        for _ in range(args.repeats):
            command = [sys.executable, __file__, "--reader", str(work), "--nprobe", str(nprobe)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        found = np.asarray(runs[0]["ids"])
        recall = np.mean([len(set(found[q]) & set(truth[q])) / 10 for q in range(len(truth))])
        p50 = statistics.median(r["p50"] for r in runs)
        p95 = statistics.median(r["p95"] for r in runs)
        ram = statistics.median(r["ram"] for r in runs) * 2**20 / args.chunks
        print(
            f"{nprobe:>6} {recall:>10.3f} {p50:>8.2f} {p95:>8.2f} {ram:>12.0f}   "
            f"(median of {len(runs)} runs; p50s {[round(r['p50'], 2) for r in runs]})"
        )


def reader(work: Path, k: int, nprobe: int) -> None:
    """A fresh process: load the IVF file as a store reader does, search as the store does."""
    raw = np.load(work / "vectors.npy", mmap_mode="r")
    queries = np.load(work / "queries.npy")
    dim = raw.shape[1]
    warm = FaissVectors.trained(dim, queries[:64], 4, nprobe)  # the libraries' own memory first
    warm.add(np.arange(64), queries[:64])
    warm.search(queries[0], 10)
    del warm
    before = rss_mb()
    ivf = FaissVectors.load(work / "ivf.faiss", dim, nprobe)
    ram = rss_mb() - before
    found, times = [], []
    for query in [*queries[:20], *queries]:  # the first 20 warm up, measured again after
        t0 = time.perf_counter()
        candidates = [i for i, _ in ivf.search(query, 2 * k + 10)]
        exact = np.asarray(raw[np.sort(candidates)]) @ query
        ranked = np.sort(candidates)[np.argsort(-exact, kind="stable")][:k]
        times.append((time.perf_counter() - t0) * 1000)
        found.append([int(i) for i in ranked])
    times, found = times[20:], found[20:]
    print(
        json.dumps(
            {
                "p50": float(np.percentile(times, 50)),
                "p95": float(np.percentile(times, 95)),
                "ram": ram,
                "ids": found,
            }
        )
    )


def ingest_child(folder: Path, chunks: int, embedder: str | None) -> None:
    """A fresh process: write `chunks` synthetic chunks through the store API, commit.

    FAISS is imported first, as an ingest that searches or loads its embedder has its
    libraries loaded anyway: the figures are then what the store's own work adds. With
    `embedder` (a kind), that embedder is loaded and embeds a few texts first, as in the
    process of a real ingest (its vectors are not used)."""
    import faiss  # noqa: F401

    from rag.config import load_settings
    from rag.store import FileRecord, Manifest, make_catalog
    from rag.types import Chunk

    settings = load_settings(overrides={"indexes_dir": str(folder), "embedder.kind": embedder})
    if embedder:
        from rag.embedders import make_embedder

        make_embedder(settings.embedder).embed([f"passage {n} " * 60 for n in range(64)])
    catalog = make_catalog(settings)
    manifest = Manifest(
        embedder="synthetic", dimension=384, chunk_size=200, chunk_overlap=30, encoding="synthetic"
    )
    loaded = status_mb("VmRSS")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    with catalog.lock("ix"):
        store = catalog.create("ix", manifest)
        for doc in range(chunks // 100):
            path = f"/corpus/doc{doc:06d}.txt"
            texts = [
                Chunk(f"Document {doc} passage {j} about topic {doc % 97} and item {j * 7 % 13}.", path, j)
                for j in range(100)
            ]
            vectors = rng.standard_normal((100, 384), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            record = FileRecord(path, f"h{doc}", 1, 1.0, 1.0, f"doc{doc:06d}.txt")
            store.replace_file(record, [(texts, vectors)])
        written = time.perf_counter() - start
        writing = status_mb("VmHWM")
        store.commit()
        store.close()
    peak = status_mb("VmHWM")
    committed = time.perf_counter() - start - written
    print(
        json.dumps(
            {
                "loaded_mb": loaded,
                "writing_mb": writing,
                "peak_mb": peak,
                "write_s": written,
                "commit_s": committed,
                "ivf": any(folder.rglob("vectors-*.faiss")),
            }
        )
    )


def status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def ingest_part(args: argparse.Namespace, work: Path) -> None:
    print(
        f"{'chunks':>8} {'libs MB':>8} {'writes MB':>10} {'peak RSS MB':>12} {'write s':>8} "
        f"{'commit s':>9} {'IVF':>4}"
    )
    for n in args.ingest:
        runs = []
        for r in range(args.repeats):
            folder = work / f"ingest-{n}-{r}"
            command = [sys.executable, __file__, "--ingest-child", str(folder), "--chunks", str(n)]
            command += ["--with-embedder", args.with_embedder] if args.with_embedder else []
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(x[key] for x in runs)

        print(
            f"{n:>8} {median('loaded_mb'):>8.1f} {median('writing_mb'):>10.1f} {median('peak_mb'):>12.1f} "
            f"{median('write_s'):>8.1f} {median('commit_s'):>9.1f} {'yes' if runs[0]['ivf'] else 'no':>4}"
            f"   (median of {len(runs)}: {[round(x['peak_mb'], 1) for x in runs]})"
        )


PER_DOC = 100  # chunks per synthetic document of the store part


def store_part(args: argparse.Namespace, work: Path) -> None:
    """A real LocalStore of `--chunks` synthetic chunks, built through its write API and
    searched the way `rag search` searches (dense: `LocalStore.search`, rows fetched).
    With --index-dir, the index and its vectors' description are kept there: `--phase
    build` then `--phase search` (the timed part, alone) run apart."""
    work = args.index_dir or work
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "indexes"
    if args.phase in ("all", "build"):
        rng = np.random.default_rng(0)
        real = real_vectors(args)
        centres, sigma, _ = noise_scale(real, args.chunks, args.topics, rng)
        np.save(work / "centres.npy", centres)
        queries = synthetic(centres, args.queries, sigma, seed=10**6)
        if args.real_queries:
            queries = real_queries(args.queries)
        np.save(work / "queries.npy", queries)
        (work / "sigma.json").write_text(json.dumps({"sigma": sigma, "chunks": args.chunks}))
        start = time.perf_counter()
        built = run_child(
            [
                sys.executable,
                __file__,
                "--store-child",
                str(folder),
                "--chunks",
                str(args.chunks),
                "--sigma",
                str(sigma),
                "--work",
                str(work),
            ]
        )
        print(
            f"store build           {args.chunks} chunks ({args.chunks // PER_DOC} documents) "
            f"in {time.perf_counter() - start:.0f} s: writes {built['write_s']:.0f} s, commit (IVF "
            f"trained and written) {built['commit_s']:.0f} s; peak RSS {built['peak_mb']:.0f} MB; "
            f"{built['disk_mb']:.0f} MB on disk"
        )
    if args.phase == "build":
        return
    described = json.loads((work / "sigma.json").read_text())
    centres, queries = np.load(work / "centres.npy"), np.load(work / "queries.npy")
    truth = exact_truth(centres, described["sigma"], described["chunks"], queries, 10)
    print(
        f"{'nprobe':>6} {'recall@10':>10} {'p50 ms':>8} {'p95 ms':>8} {'RAM B/chunk':>12} "
        f"{'retriever p50':>14}"
    )
    for nprobe in args.nprobe:
        runs = [
            run_child(
                [
                    sys.executable,
                    __file__,
                    "--store-reader",
                    str(folder),
                    "--nprobe",
                    str(nprobe),
                    "--work",
                    str(work),
                ]
            )
            for _ in range(args.repeats)
        ]
        found = runs[0]["ids"]
        recall = np.mean([len(set(found[q]) & set(truth[q])) / 10 for q in range(len(truth))])
        ram = statistics.median(r["ram"] for r in runs) * 2**20 / described["chunks"]
        print(
            f"{nprobe:>6} {recall:>10.3f} {statistics.median(r['p50'] for r in runs):>8.2f} "
            f"{statistics.median(r['p95'] for r in runs):>8.2f} {ram:>12.0f} "
            f"{statistics.median(r['retriever_p50'] for r in runs):>14.2f}   "
            f"(median of {len(runs)}; p50s {[round(r['p50'], 2) for r in runs]})"
        )
    if args.phase == "all":
        removed = run_child([sys.executable, __file__, "--store-remove", str(folder)])
        print(
            f"remove a document     {removed['removed']} chunks removed and committed in "
            f"{removed['seconds']:.1f} s; its chunks' own vectors, searched again: "
            f"{removed['found_before']} of them found first before, {removed['found_after']} of "
            "its chunks in any top 10 after"
        )


def run_child(command: list[str]) -> dict[str, Any]:
    """The JSON a child process of this script prints last; its error output on failure."""
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(command[2:4])} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def block_vectors(centres: np.ndarray, sigma: float, start: int, n: int) -> np.ndarray:
    """Vectors start..start+n of the store part, the same each time they are drawn."""
    return synthetic(centres, n, sigma, seed=1 + start // BLOCK)


def exact_truth(
    centres: np.ndarray, sigma: float, chunks: int, queries: np.ndarray, k: int
) -> list[list[int]]:
    """The exact top-k chunk ids of each query, the vectors drawn again block by block."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, chunks, BLOCK):
        block = block_vectors(centres, sigma, start, min(BLOCK, chunks - start))
        scores = queries @ block.T
        scores_all = np.concatenate([best_scores, scores], axis=1)
        ids_all = np.concatenate(
            [best_ids, np.broadcast_to(np.arange(start, start + len(block)) + 1, scores.shape)], axis=1
        )
        top = np.argsort(-scores_all, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores_all, top, axis=1)
        best_ids = np.take_along_axis(ids_all, top, axis=1)
    return best_ids.tolist()


def store_child(folder: Path, chunks: int, sigma: float, work: Path) -> None:
    """A fresh process: write the chunks document by document (`replace_file`), commit.
    Chunk ids are given in order from 1 (SQLite's), so vector i is chunk i + 1."""
    from rag.config import load_settings
    from rag.store import FileRecord, Manifest, make_catalog
    from rag.types import Chunk

    centres = np.load(work / "centres.npy")
    catalog = make_catalog(load_settings(overrides={"indexes_dir": str(folder)}))
    manifest = Manifest(
        embedder="synthetic",
        dimension=centres.shape[1],
        chunk_size=200,
        chunk_overlap=30,
        encoding="synthetic",
    )
    words = ["index", "vector", "search", "query", "chunk", "store", "commit", "reader", "list", "code"]
    start = time.perf_counter()
    with catalog.lock("scale"):
        store = catalog.create("scale", manifest)
        for block_start in range(0, chunks, BLOCK):
            block = block_vectors(centres, sigma, block_start, min(BLOCK, chunks - block_start))
            for at in range(0, len(block), PER_DOC):
                doc = (block_start + at) // PER_DOC
                path = f"/corpus/doc{doc:07d}.txt"
                texts = [
                    Chunk(
                        f"Document {doc} passage {j}: {words[doc % 10]} {words[j % 10]} {doc % 997}", path, j
                    )
                    for j in range(PER_DOC)
                ]
                record = FileRecord(path, f"h{doc}", 1, 1.0, 1.0, f"doc{doc:07d}.txt")
                store.replace_file(record, [(texts, block[at : at + PER_DOC])])
        written = time.perf_counter() - start
        store.commit()
        store.close()
    peak = status_mb("VmHWM")  # ru_maxrss would be the parent's, it survives exec
    disk = sum(p.stat().st_size for p in (folder / "scale").iterdir()) / 2**20
    print(
        json.dumps(
            {
                "write_s": written,
                "commit_s": time.perf_counter() - start - written,
                "peak_mb": peak,
                "disk_mb": disk,
            }
        )
    )


def store_reader(folder: Path, nprobe: int, work: Path, k: int) -> None:
    """A fresh process: open the index read-only, search each query through the store."""
    from rag.config import load_settings
    from rag.embedders.base import Embedder
    from rag.retrievers import make_retriever
    from rag.store import make_catalog

    settings = load_settings(
        overrides={"indexes_dir": str(folder), "store.ivf_nprobe": nprobe, "retrieval.mode": "dense"}
    )
    queries = np.load(work / "queries.npy")
    few = queries[:64]
    warm = FaissVectors.trained(queries.shape[1], few, 4, nprobe)  # the libraries' memory first
    warm.add(np.arange(len(few)), few)
    warm.search(queries[0], 10)
    del warm
    store = make_catalog(settings).open("scale", readonly=True)
    before = rss_mb()
    store.refresh()  # the IVF file loaded, the rows committed after it added
    ram = rss_mb() - before
    found, times = [], []
    for query in [*queries[:20], *queries]:  # the first 20 warm up, measured again after
        t0 = time.perf_counter()
        hits = store.search(query, k)
        times.append((time.perf_counter() - t0) * 1000)
        found.append([h.id for h in hits])
    retriever = make_retriever(settings.retrieval, cast("Embedder", None))
    retrieved = []
    for query in queries:
        t0 = time.perf_counter()
        retriever.search(store, query, k)
        retrieved.append((time.perf_counter() - t0) * 1000)
    times, found = times[20:], found[20:]
    print(
        json.dumps(
            {
                "p50": float(np.percentile(times, 50)),
                "p95": float(np.percentile(times, 95)),
                "retriever_p50": float(np.percentile(retrieved, 50)),
                "ram": ram,
                "ids": found,
            }
        )
    )


def store_remove(folder: Path) -> None:
    """Remove one document through a writer, commit; a reader no longer finds its chunks."""
    from rag.config import load_settings
    from rag.store import make_catalog

    catalog = make_catalog(load_settings(overrides={"indexes_dir": str(folder)}))
    reader = catalog.open("scale", readonly=True)
    doc = reader.chunk_count() // PER_DOC // 2  # one in the middle
    path = f"/corpus/doc{doc:07d}.txt"
    ids = list(range(doc * PER_DOC + 1, (doc + 1) * PER_DOC + 1))
    own = [reader.vector(i) for i in ids]
    before = sum(reader.search(v, 10)[0].id == i for v, i in zip(own, ids, strict=True))
    start = time.perf_counter()
    with catalog.lock("scale"):
        writer = catalog.open("scale")
        removed = writer.remove_file(path)
        writer.commit()
        writer.close()
    seconds = time.perf_counter() - start
    after = sum(h.id in set(ids) for v in own for h in reader.search(v, 10))
    print(
        json.dumps(
            {"removed": removed, "seconds": seconds, "found_before": int(before), "found_after": int(after)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000, help="Vectors in the index.")
    parser.add_argument("--queries", type=int, default=200, help="Queries to measure.")
    parser.add_argument(
        "--nprobe",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 32, 64],
        help="IVF lists searched, comma-separated values to compare.",
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each measure (median kept).")
    parser.add_argument("--topics", type=int, help="Cluster centres of the vectors (default: chunks / 5).")
    parser.add_argument("--real", type=int, default=1000, help="SciFact abstracts to embed as real vectors.")
    parser.add_argument(
        "--real-queries",
        action="store_true",
        help="Query with the first SciFact questions, embedded, instead.",
    )
    parser.add_argument("--real-from", help="An index folder whose stored vectors are the real ones.")
    parser.add_argument(
        "--ingest",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10_000, 100_000],
        help="Chunk counts whose ingest peak RSS is measured.",
    )
    parser.add_argument("--with-embedder", help="Ingest part: load this embedder kind first (onnx...).")
    parser.add_argument("--skip-search", action="store_true", help="Only the ingest memory part.")
    parser.add_argument("--skip-ingest", action="store_true", help="Only the search part.")
    parser.add_argument("--dir", type=Path, help="Work folder (default: a temporary one, removed).")
    parser.add_argument("--reader", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ingest-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--store", action="store_true", help="Build a LocalStore of --chunks chunks, search through it."
    )
    parser.add_argument("--index-dir", type=Path, help="Where --store builds its index (kept).")
    parser.add_argument(
        "--phase",
        choices=["all", "build", "search", "remove"],
        default="all",
        help="--store: build, search (timed), remove a document, or all.",
    )
    parser.add_argument("--k", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--store-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store-reader", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store-remove", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sigma", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.topics = args.topics or max(1, args.chunks // 5)
    if args.reader:
        return reader(args.reader, args.k, args.nprobe[0])
    if args.ingest_child:
        return ingest_child(args.ingest_child, args.chunks, args.with_embedder)
    if args.store_child:
        return store_child(args.store_child, args.chunks, args.sigma, args.work)
    if args.store_reader:
        return store_reader(args.store_reader, args.nprobe[0], args.work, args.k)
    if args.store_remove:
        return store_remove(args.store_remove)
    print(processor_line())
    if args.store and args.phase == "remove":
        return print(
            json.dumps(
                run_child([sys.executable, __file__, "--store-remove", str(args.index_dir / "indexes")])
            )
        )
    if args.store:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            return store_part(args, Path(tmp))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if not args.skip_search:
            search_part(args, Path(tmp))
        if not args.skip_ingest:
            ingest_part(args, Path(tmp))


if __name__ == "__main__":
    main()
