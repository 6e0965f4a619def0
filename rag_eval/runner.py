"""One evaluation run: ingest the corpus, run every query, score, save as JSON."""

from __future__ import annotations

import itertools
import json
import logging
import math
import multiprocessing
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rag.config import Settings, flat_settings, settings_for_child
from rag.embedders import make_embedder
from rag.embedders.base import Embedder
from rag.grounding.presence import presence
from rag.hardware import processor
from rag.rerankers import Reranker, make_reranker
from rag.retrievers import Retriever, make_retriever
from rag.store import StoreReader, make_catalog
from rag.types import Hit
from rag_eval.corpus import document_id, index_name, materialize
from rag_eval.datasets import Dataset, Query
from rag_eval.drafts import DRAFT_METRICS
from rag_eval.metrics import (
    ANSWER_METRICS,
    GROUNDING_METRICS,
    RETRIEVAL_METRICS,
    answer_scores,
    mean,
    retrieval_scores,
)
from rag_eval.support import supports

logger = logging.getLogger(__name__)

DEPTH = 100  # documents ranked per query: enough for Recall@100
VERSIONED = (
    "rag-service",
    "sentence-transformers",
    "transformers",
    "torch",
    "faiss-cpu",
    "llama-cpp-python",
    "tiktoken",
)

#: Told of each query done: (queries done, queries in all).
Progress = Callable[[int, int], None]


@dataclass
class RunOptions:
    limit: int | None = None  # the first N queries only
    generate: bool | None = None  # None: when the dataset has reference answers
    progress: bool = False  # an ingest progress bar on the terminal
    ingest: bool = True  # False: the index is as the last run left it (runs in a row)
    #: "model": the model writes the drafts; "references": reference answers do, right and
    #: wrong (rag_eval.drafts), and no model runs.
    drafts: str = "model"


def run(
    settings: Settings, dataset: Dataset, workdir: Path, options: RunOptions, on_query: Progress | None = None
) -> dict[str, Any]:
    """Evaluate the dataset under these settings; the run, also saved under workdir/runs."""
    started = time.perf_counter()
    queries = dataset.queries[: options.limit] if options.limit else dataset.queries
    generate = (
        options.generate
        if options.generate is not None
        else any(q.answers or not q.answerable for q in queries) or options.drafts == "references"
    )
    corpus = materialize(dataset, workdir)
    name = index_name(dataset, corpus, settings)
    t0 = time.perf_counter()
    if options.ingest:
        ingest = ingest_in_child(settings, corpus, name, options.progress)
    else:
        ingest = {"skipped": True}
    timings = {"ingest": time.perf_counter() - t0}

    # One torch thread when the model runs in this process too (see Pipeline.from_settings).
    embedder = make_embedder(settings.embedder, threads=1 if generate else None)
    # The retriever and reranker answering uses, without the score floor and near-duplicate
    # removal: documents are ranked from every chunk, as deep as the metrics look.
    retriever = make_retriever(settings.retrieval, embedder)
    reranker = make_reranker(settings.rerank)
    index = make_catalog(settings).open(name, readonly=True)
    index.manifest.check_embedder(embedder.kind, embedder.name, embedder.dimension)
    t0 = time.perf_counter()
    depth = _chunk_depth(index)
    results = []
    texts = [q.text for q in queries]
    found = retriever.retrieve_many(index, texts, reranker.depth(depth), floor=False, dedup=False)
    for i, (query, hits) in enumerate(zip(queries, found, strict=True)):
        hits = reranker.rerank(query.text, hits, depth)
        results.append(_query_result(query, _rank_documents(hits, dataset, corpus)))
        if on_query and not generate:
            on_query(i + 1, len(queries))
    timings["retrieve"] = time.perf_counter() - t0
    if generate:
        t0 = time.perf_counter()
        _generate(
            settings,
            embedder,
            retriever,
            reranker,
            name,
            queries,
            results,
            dataset,
            corpus,
            on_query,
            options.drafts,
        )
        timings["generate"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    record = _record(settings, dataset, queries, results, name, ingest, timings, generate)
    record["drafts"] = options.drafts if generate else None
    save(record, workdir)
    return record


def ingest_in_child(settings: Settings, corpus: Path, name: str, progress: bool) -> dict[str, Any]:
    """The normal ingestion, in a child process: torch's thread team must not live in this
    process when llama.cpp generates here later (see Pipeline.from_settings)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        data = settings_for_child(settings)
        summary: dict[str, Any] = pool.submit(_ingest, data, str(corpus), name, progress).result()
    return summary


def _ingest(data: dict[str, Any], corpus: str, name: str, progress: bool) -> dict[str, Any]:
    from rich.console import Console

    from ingest.progress import progress_bar
    from ingest.worker import IngestWorker

    settings = Settings.model_validate(data)
    worker = IngestWorker(settings, make_embedder(settings.embedder))
    console = Console(stderr=True)
    if progress and console.is_terminal:
        with progress_bar(console) as observer:
            report = worker.run(Path(corpus), name, observer)
    else:
        report = worker.run(Path(corpus), name)
    return {**report.summary(), "seconds": round(report.seconds, 3)}


def _chunk_depth(index: StoreReader) -> int:
    """Chunks to fetch so that about DEPTH distinct documents come out of them."""
    files = max(1, len(index.files()))
    per_file = index.chunk_count() / files
    return min(index.chunk_count(), max(DEPTH, math.ceil(DEPTH * per_file * 3)))


def _rank_documents(hits: list[Hit], dataset: Dataset, corpus: Path) -> list[tuple[str, float]]:
    """Documents best first, each scored by its best chunk."""
    best: dict[str, float] = {}
    for hit in hits:
        doc = document_id(hit.chunk.path, dataset, corpus)
        if doc not in best:
            best[doc] = hit.score
    return list(best.items())[:DEPTH]


def _query_result(query: Query, ranked: list[tuple[str, float]]) -> dict[str, Any]:
    docs = [d for d, _ in ranked]
    return {
        "id": query.id,
        "question": query.text,
        "relevant": query.relevant,
        "retrieved": [[d, round(s, 4)] for d, s in ranked[:10]],
        "metrics": retrieval_scores(docs, query.relevant) if query.relevant else {},
    }


def _generate(
    settings: Settings,
    embedder: Embedder,
    retriever: Retriever,
    reranker: Reranker,
    name: str,
    queries: list[Query],
    results: list[dict[str, Any]],
    dataset: Dataset,
    corpus: Path,
    on_query: Progress | None,
    drafts: str = "model",
) -> None:
    from rag.generators import make_generator
    from rag.generators.base import Generator
    from rag.pipeline import Pipeline
    from rag_eval.drafts import ReferenceDrafts, caught, draft_result, found, kept, wrong_drafts

    references = ReferenceDrafts(settings.llm.n_ctx or 8192) if drafts == "references" else None
    generator: Generator = references or make_generator(settings.llm)
    pipeline = Pipeline(settings, embedder, generator, retriever, reranker)
    wrong = wrong_drafts(queries) if references else {}
    for i, (query, result) in enumerate(zip(queries, results, strict=True)):
        if references is not None:
            references.draft = wrong.get(query.id, "")
            answer = pipeline.ask(query.text, index=name)
            result["drafts"] = {"wrong": {"draft": references.draft, **draft_result(answer)}}
            if references.draft:
                result["metrics"]["wrong_caught"] = float(caught(answer, references.draft))
            if query.answerable and query.answers:
                references.draft = query.answers[0]
                answer = pipeline.ask(query.text, index=name)
                result["drafts"]["right"] = {"draft": references.draft, **draft_result(answer)}
                result["metrics"]["right_kept"] = float(kept(answer, references.draft))
                if found(answer, references.draft):
                    result["metrics"]["right_kept_found"] = result["metrics"]["right_kept"]
        else:
            answer = pipeline.ask(query.text, index=name)
        cited = [document_id(s.path, dataset, corpus) for s in answer.sources if s.cited]
        result["answer"] = answer.text
        result["draft"] = answer.draft
        result["abstained"] = answer.abstained
        result["answerable"] = query.answerable
        result["references"] = query.answers
        result["cited"] = cited
        result["model"] = pipeline.default_model
        result["usage"] = {"prompt": answer.usage.prompt_tokens, "completion": answer.usage.completion_tokens}
        result["timings"] = {k: round(v, 4) for k, v in answer.timings.items()}
        metrics = result["metrics"]
        # What the abstention thresholds are compared with, to calibrate them offline
        # (bench/calibrate.py): the best retrieval score, whether any sentence of the
        # model's answer was backed, and how well the best passage sentence fits.
        extracted, fit = pipeline.attributor.extract(query.text, answer.sources, limit=1)
        held = presence(query.text, answer.sources)
        result["grounding"] = {
            "top_score": max((s.score for s in answer.sources), default=0.0),
            "found": answer.found_context,
            "backed": any(s.supported for s in answer.sentences),
            "fit": round(fit, 4),
            "presence": round(held.score, 4),
            "kind": held.kind,
        }
        if not query.answerable:
            metrics["abstention"] = float(answer.abstained)
            if on_query:
                on_query(i + 1, len(queries))
            continue
        metrics["wrongly_refused"] = float(answer.abstained)
        if query.answers:
            metrics.update(answer_scores(answer.text, query.answers))
            metrics["extractive_contains"] = answer_scores(extracted.text, query.answers)["contains"]
        if cited and query.relevant:
            metrics["citation_accuracy"] = sum(query.relevant.get(d, 0) > 0 for d in cited) / len(cited)
        metrics.update(support_metrics(answer))
        if on_query:
            on_query(i + 1, len(queries))
    pipeline.pool.close()  # the model's memory is given back before another one loads


def support_metrics(answer: Any) -> dict[str, float]:
    """How far an answer is backed: the share of its checked sentences the attribution
    found supported, and its citation precision (each left out where it does not apply)."""
    metrics: dict[str, float] = {}
    checked = [s for s in answer.sentences if s.checked]
    if checked and not answer.abstained:
        metrics["supported_rate"] = sum(s.supported for s in checked) / len(checked)
    precision = _citation_precision(answer)
    if precision is not None:
        metrics["citation_precision"] = precision
    return metrics


def _citation_precision(answer: Any) -> float | None:
    """Share of (sentence, cited passage) pairs where the passage holds the sentence's
    claim word for word (rag_eval.support: a check stricter than the attribution's)."""
    by_number = {s.number: s for s in answer.sources}
    pairs = [
        (sentence, by_number[n]) for sentence in answer.sentences for n in sentence.sources if n in by_number
    ]
    if not pairs or answer.abstained:
        return None
    return sum(supports(source.text, sentence.text) for sentence, source in pairs) / len(pairs)


def _record(
    settings: Settings,
    dataset: Dataset,
    queries: list[Query],
    results: list[dict[str, Any]],
    index: str,
    ingest: dict[str, Any],
    timings: dict[str, float],
    generate: bool,
) -> dict[str, Any]:
    names = [
        *RETRIEVAL_METRICS,
        *(ANSWER_METRICS if generate else ()),
        *(("citation_accuracy", *GROUNDING_METRICS, *DRAFT_METRICS) if generate else ()),
    ]
    metrics = {m: mean(r["metrics"].get(m) for r in results) for m in names}
    created = datetime.now(UTC)
    return {
        "id": f"{created:%Y%m%d-%H%M%S}-{dataset.name}",
        "created": created.isoformat(timespec="seconds"),
        "dataset": {
            "name": dataset.name,
            "path": str(dataset.path),
            "format": dataset.format,
            "split": dataset.split,
            "queries": len(queries),
            "judged": sum(1 for q in queries if q.relevant),
        },
        "index": index,
        "settings": flat_settings(settings),
        "metrics": {k: (round(v, 4) if v is not None else None) for k, v in metrics.items()},
        "ingest": ingest,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "versions": versions(),
        "processor": processor().summary(),  # its timings hold on this processor only
        "queries": results,
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def save(record: dict[str, Any], workdir: Path) -> Path:
    """Save a run under workdir/runs as `<id>.json`. Runs of one dataset finished in the
    same second have the same id: each file is created exclusively, so another run's never
    is written over, and a run whose id is taken gets the next free one (`<id>-2`, ...),
    in its record too."""
    folder = workdir / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    wanted = record["id"]
    for n in itertools.count(1):
        run_id = wanted if n == 1 else f"{wanted}-{n}"
        path = folder / f"{run_id}.json"
        try:
            with open(path, "x", encoding="utf-8") as fh:
                record["id"] = run_id
                fh.write(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        except FileExistsError:
            continue
        break
    record["path"] = str(path.resolve())
    logger.info("run saved to %s", path)
    return path
