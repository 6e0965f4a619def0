"""Fusion study: how hybrid's two halves and ways of fusing them rank, query by query.

    python bench/fusion.py [--workdir /tmp/rag-bench-languages] [--split dev] [--only faq-fr]

Reads the indexes bench/languages.py made (one per set and embedder; run it first), takes
each query's dense and lexical rankings once (at hybrid's fusion depth), and ranks the
set's documents by each half and by several fusions of the two, without ingesting or
embedding anything again: "rrf" (equal weights, the fusion before `retrieval.fusion`),
"dbsf", and both with the weights hybrid gives each side for each question ("gated", what
`retrieval.fusion` does). Prints nDCG@10 per set, embedder and method, and per set
statistics of the signals a fusion may follow: the best lexical hit's coverage and the
best dense hit's cosine, and the question's language against what the embedder reads.

Choose on a split you do not report on (`--split dev`: handbook-fr's dev questions,
SciFact's train questions); report with bench/languages.py on the test splits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.languages import EMBEDDERS, SETS
from rag.analysis import told_language
from rag.config import RetrievalSettings, load_settings
from rag.embedders import make_embedder
from rag.embedders.base import Embedder
from rag.retrievers.hybrid import fuse, reliability
from rag.store import make_catalog
from rag.types import Hit
from rag_eval.corpus import document_id, index_name, materialize
from rag_eval.datasets import load_dataset
from rag_eval.metrics import ndcg_at

DEV_SPLITS = {"scifact": "train", "handbook-fr": "dev"}
Fusion = Callable[[list[Hit], list[Hit], str | None], dict[int, float]]


def product(embedder: Embedder, settings: RetrievalSettings, fusion: str, gated: bool = True) -> Fusion:
    """What hybrid retrieval does (`rag.retrievers.hybrid`) with `retrieval.fusion` = `fusion`; with
    `gated` off, both sides always at their configured weights."""
    chosen = settings.model_copy(update={"fusion": fusion})

    def fused(dense: list[Hit], lexical: list[Hit], language: str | None) -> dict[int, float]:
        if gated:
            weights = reliability(embedder, language, dense, lexical, chosen)
        else:
            weights = (chosen.dense_weight, chosen.lexical_weight)
        return fuse(dense, lexical, *weights, chosen)

    return fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rag-bench-languages"))
    parser.add_argument("--split", default="test", help="'dev' for the tuning splits, else 'test'.")
    parser.add_argument("--only", help="Comma-separated set names (default: all).")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(SETS)
    for name in wanted:
        path, split = SETS[name]
        if args.split == "dev":
            if name not in DEV_SPLITS:
                continue
            split = DEV_SPLITS[name]
        if not path.exists():
            continue
        dataset = load_dataset(path, split)
        queries = [q for q in dataset.queries if q.relevant]
        for label, model in EMBEDDERS.items():
            settings = load_settings(
                overrides={"indexes_dir": str(args.workdir / "indexes"), "embedder.model": model}
            )
            corpus = materialize(dataset, args.workdir)
            index = make_catalog(settings).open(index_name(dataset, corpus, settings), readonly=True)
            embedder = make_embedder(settings.embedder)
            depth = settings.retrieval.fusion_depth
            vectors = embedder.embed_queries([q.text for q in queries])
            methods: dict[str, Fusion] = {
                "dense": lambda d, lx, lang: {h.id: -r for r, h in enumerate(d)},
                "lexical": lambda d, lx, lang: {h.id: -r for r, h in enumerate(lx)},
                "rrf": product(embedder, settings.retrieval, "rrf", gated=False),
                "dbsf": product(embedder, settings.retrieval, "dbsf", gated=False),
                "gated rrf": product(embedder, settings.retrieval, "rrf"),
                "gated dbsf": product(embedder, settings.retrieval, "dbsf"),
            }
            scores: dict[str, list[float]] = {m: [] for m in methods}
            coverage, cosine, foreign, untold = [], [], 0, 0
            for query, vector in zip(queries, vectors, strict=True):
                dense = index.search(vector, depth)
                lexical = index.search_text(query.text, depth)
                language = told_language(query.text)
                foreign += (
                    language is not None
                    and embedder.languages is not None
                    and language not in embedder.languages
                )
                untold += language is None
                coverage.append(lexical[0].score if lexical else 0.0)
                cosine.append(dense[0].score if dense else 0.0)
                chunks = {h.id: h for h in (*dense, *lexical)}
                for method, fusion in methods.items():
                    fused = fusion(dense, lexical, language)
                    docs: list[str] = []
                    for chunk_id in sorted(fused, key=lambda i: -fused[i]):
                        doc = document_id(chunks[chunk_id].chunk.path, dataset, corpus)
                        if doc not in docs:
                            docs.append(doc)
                    scores[method].append(ndcg_at(docs, query.relevant, 10))
            index.close()
            line = "  ".join(f"{m} {statistics.mean(v):.3f}" for m, v in scores.items())
            print(f"{name:<12} {split:<6} {label:<7} n={len(queries):<4} {line}")
            print(
                f"{'':<27} coverage@1 median {statistics.median(coverage):.2f}  "
                f"cosine@1 median {statistics.median(cosine):.3f}  foreign questions {foreign}  "
                f"language untold {untold}",
                flush=True,
            )


if __name__ == "__main__":
    main()
