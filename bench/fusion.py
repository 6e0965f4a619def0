"""Fusion study: how hybrid's two halves and ways of fusing them rank, query by query.

    python bench/fusion.py [--workdir /tmp/rag-bench-languages] [--split dev] [--only faq-fr]

Reads the indexes bench/languages.py made (one per set and embedder; run it first), takes
each query's dense and lexical rankings once (at hybrid's fusion depth), and ranks the
set's documents by each half and by several fusions of the two, without ingesting or
embedding anything again. Prints nDCG@10 per set, embedder and method, and per set
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

from bench.languages import EMBEDDERS, SETS  # noqa: E402
from rag.analysis import detect_language  # noqa: E402
from rag.config import RetrievalSettings, load_settings  # noqa: E402
from rag.embedders import Embedder, make_embedder  # noqa: E402
from rag.hybrid import fuse, reliability  # noqa: E402
from rag.store import make_catalog  # noqa: E402
from rag.types import Hit  # noqa: E402
from rag_eval.corpus import document_id, index_name, materialize  # noqa: E402
from rag_eval.datasets import load_dataset  # noqa: E402
from rag_eval.metrics import ndcg_at  # noqa: E402

DEV_SPLITS = {"scifact": "train", "handbook-fr": "dev"}
Fusion = Callable[[list[Hit], list[Hit], str], dict[int, float]]


def rrf(dense_weight: float, lexical_weight: float, k: int = 60) -> Fusion:
    def fused(dense: list[Hit], lexical: list[Hit], language: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for weight, ranking in ((dense_weight, dense), (lexical_weight, lexical)):
            for rank, hit in enumerate(ranking, start=1):
                out[hit.id] = out.get(hit.id, 0.0) + weight / (k + rank)
        return out

    return fused


def _reads(embedder: Embedder, language: str) -> bool:
    return embedder.languages is None or language in embedder.languages


def lang_only(embedder: Embedder) -> Fusion:
    def fused(dense: list[Hit], lexical: list[Hit], language: str) -> dict[int, float]:
        return fuse(dense, lexical, 1.0 if _reads(embedder, language) else 0.0, 1.0, 60)

    return fused


def lang_cov(embedder: Embedder, power: float) -> Fusion:
    """Lexical weight: the best lexical hit's coverage of the question, to a power."""

    def fused(dense: list[Hit], lexical: list[Hit], language: str) -> dict[int, float]:
        coverage = lexical[0].score if lexical else 0.0
        return fuse(dense, lexical, 1.0 if _reads(embedder, language) else 0.0, coverage**power, 60)

    return fused


def adaptive(embedder: Embedder, settings: RetrievalSettings) -> Fusion:
    """What hybrid retrieval does (`rag.hybrid`)."""

    def fused(dense: list[Hit], lexical: list[Hit], language: str) -> dict[int, float]:
        weights = reliability(embedder, language, dense, lexical, settings)
        return fuse(dense, lexical, *weights, settings.rrf_k)

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
            settings = load_settings(overrides={"indexes_dir": str(args.workdir / "indexes"),
                                                "embedder.model": model})  # fmt: skip
            corpus = materialize(dataset, args.workdir)
            index = make_catalog(settings).open(index_name(dataset, corpus, settings), readonly=True)
            embedder = make_embedder(settings.embedder)
            depth = settings.retrieval.fusion_depth
            vectors = embedder.embed_queries([q.text for q in queries])
            methods: dict[str, Fusion] = {
                "dense": lambda d, lx, lang: {h.id: -r for r, h in enumerate(d)},
                "lexical": lambda d, lx, lang: {h.id: -r for r, h in enumerate(lx)},
                "rrf 1:1": rrf(1, 1),
                "rrf 0:1": rrf(0.0, 1),
                "lang": lang_only(embedder),
                "lang+cov": lang_cov(embedder, 1.0),
                "lang+cov^2": lang_cov(embedder, 2.0),
                "lang+cov^.5": lang_cov(embedder, 0.5),
                "adaptive": adaptive(embedder, settings.retrieval),
            }  # fmt: skip
            scores: dict[str, list[float]] = {m: [] for m in methods}
            coverage, cosine, foreign = [], [], 0
            for query, vector in zip(queries, vectors, strict=True):
                dense = index.search(vector, depth)
                lexical = index.search_text(query.text, depth)
                language = detect_language(query.text)
                foreign += embedder.languages is not None and language not in embedder.languages
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
            print(f"{'':<27} coverage@1 median {statistics.median(coverage):.2f}  "
                  f"cosine@1 median {statistics.median(cosine):.3f}  foreign questions {foreign}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
