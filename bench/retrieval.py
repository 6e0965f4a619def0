"""Query latency of dense, lexical and hybrid retrieval, and what the lexical index costs.

    python bench/retrieval.py [--dataset ../shared/eval/scifact] [--workdir /tmp/rag-bench-retrieval]

Ingests the dataset's corpus as `rag eval` does (kept in the workdir and reused), then
runs every test query through each retriever, as answering would (score floor and
near-duplicate removal on, top_k 4), after a warm-up pass. Prints p50/p95 per mode, the
ratio of hybrid to dense, and the store's size with and without its lexical index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.serving import percentile
from rag.config import load_settings
from rag.embedders import make_embedder
from rag.hardware import processor_line
from rag.retrievers import make_retriever
from rag.store import make_catalog
from rag_eval.corpus import index_name, materialize
from rag_eval.datasets import load_dataset
from rag_eval.runner import ingest_in_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "eval" / "scifact")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench-retrieval")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    print(processor_line())

    settings = load_settings(overrides={"indexes_dir": str(args.workdir / "indexes")})
    dataset = load_dataset(args.dataset, args.split)
    corpus = materialize(dataset, args.workdir)
    name = index_name(dataset, corpus, settings)
    summary = ingest_in_child(settings, corpus, name, progress=sys.stderr.isatty())
    print(f"index {name}: {summary.get('chunks', 0)} chunks written this run")

    embedder = make_embedder(settings.embedder, threads=1)  # as `rag serve` embeds questions
    store = make_catalog(settings).open(name, readonly=True)
    queries = [q.text for q in dataset.queries]
    print(f"{store.chunk_count()} chunks, {len(queries)} queries, top_k {settings.retrieval.top_k}")
    p50: dict[str, float] = {}
    for mode in ("dense", "lexical", "hybrid"):
        retriever = make_retriever(settings.retrieval.model_copy(update={"mode": mode}), embedder)
        for query in queries[:20]:  # warm-up: caches, first-call costs
            retriever.retrieve(store, query, settings.retrieval.top_k)
        seconds = []
        for query in queries:
            t0 = time.perf_counter()
            retriever.retrieve(store, query, settings.retrieval.top_k)
            seconds.append(time.perf_counter() - t0)
        p50[mode] = percentile(seconds, 50)
        print(f"{mode:>8}: p50 {p50[mode] * 1000:6.2f} ms   p95 {percentile(seconds, 95) * 1000:6.2f} ms")
    print(f"hybrid / dense p50: {p50['hybrid'] / p50['dense']:.2f}")
    folder = getattr(store, "folder", None)
    store.close()
    if folder is not None:
        _sizes(Path(folder))


def _sizes(folder: Path) -> None:
    """The store on disk, then a copy of it without the lexical index (vacuumed alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        for label, drop in (("with", False), ("without", True)):
            copy = Path(tmp) / f"{label}.sqlite"
            source = sqlite3.connect(folder / "store.sqlite")
            target = sqlite3.connect(copy)
            source.backup(target)
            source.close()
            if drop:
                target.execute("DROP TABLE IF EXISTS chunk_terms_vocab")
                target.execute("DROP TABLE IF EXISTS chunk_terms")
            target.execute("VACUUM")
            target.close()
            vectors = sum(p.stat().st_size for p in folder.glob("vectors-*.faiss"))
            total = copy.stat().st_size + vectors
            print(
                f"index on disk {label} the lexical index: {total / 1e6:.1f} MB "
                f"(SQLite {copy.stat().st_size / 1e6:.1f} MB + FAISS {vectors / 1e6:.1f} MB)"
            )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
