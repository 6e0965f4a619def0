"""Whole runs through the real ingestion, embedder, index and model, on a tiny dataset."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import pytest
from pydantic import SecretStr

from rag.config import Settings
from rag.embedders.base import Embedder
from rag.retrievers.dense import DenseRetriever
from rag.store import make_catalog
from rag_eval.compare import load_run, metric_rows, per_query, setting_changes
from rag_eval.datasets import load_dataset
from rag_eval.runner import RunOptions, run, save
from tests import pgserver
from tests.rag_eval.test_datasets import write_beir

DOCS = {
    "cat": ("Cats", "Cats are small carnivorous mammals that sleep about sixteen hours a day."),
    "etna": ("Mount Etna", "Mount Etna is an active volcano on the east coast of Sicily."),
    "bread": ("Bread", "To bake bread, mix flour, water, salt and yeast, then knead the dough."),
    "tide": ("Tides", "Tides are caused by the gravitational pull of the moon on the oceans."),
}
QUERIES = {
    "q1": "How long do cats sleep?",
    "q2": "Which volcano is in Sicily?",
    "q3": "What makes the tides?",
    "q4": "How is bread made?",
}
QRELS = {"q1": ["cat"], "q2": ["etna"], "q3": ["tide"], "q4": ["bread"]}
pg_server, pg_url = pgserver.pg_server, pgserver.pg_url  # the fixtures


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny", DOCS, QUERIES, QRELS)


def test_beir_run_scores_saves_and_reuses_its_index(settings: Settings, beir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = run(settings, load_dataset(beir, "test"), work, RunOptions())
    assert first["metrics"]["ndcg@10"] == 1.0  # each question names its document plainly
    assert first["metrics"]["recall@100"] == 1.0
    assert first["ingest"]["added"] == 4
    assert first["dataset"]["queries"] == 4 and first["dataset"]["split"] == "test"
    assert first["queries"][0]["retrieved"][0][0] == "cat"
    saved = json.loads(Path(first["path"]).read_text())
    assert saved["settings"]["chunking.size"] == settings.chunking.size
    assert {"python", "torch", "faiss-cpu"} <= set(saved["versions"])
    assert "AVX2" in saved["processor"]  # every processor of this kind has it

    settings.retrieval.top_k = 2  # no effect on document ranking, but recorded
    second = run(settings, load_dataset(beir, "test"), work, RunOptions(limit=2))
    assert second["ingest"]["unchanged"] == 4 and second["ingest"]["added"] == 0
    assert second["index"] == first["index"]
    assert second["dataset"]["queries"] == 2

    a, b = load_run(first["id"], work), load_run(second["path"], work)
    assert ("ndcg@10", 1.0, 1.0, 0.0) in metric_rows(a, b)
    assert setting_changes(a, b) == [("retrieval.top_k", 4, 2)]
    assert per_query(a, b) == {"better": 0, "worse": 0, "same": 2}


def test_changed_chunking_gets_its_own_index(settings: Settings, beir: Path, tmp_path: Path) -> None:
    first = run(settings, load_dataset(beir, "test"), tmp_path / "w", RunOptions(limit=1))
    settings.chunking.size = 64
    settings.chunking.overlap = 8
    second = run(settings, load_dataset(beir, "test"), tmp_path / "w", RunOptions(limit=1))
    assert second["index"] != first["index"] and second["ingest"]["added"] == 4


def test_questions_with_answers_are_generated_and_scored(
    settings: Settings, corpus: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps(q) + "\n"
            for q in [
                {"question": "Where is Mount Etna?", "answer": "Sicily", "relevant": ["volcano.txt"]},
                {"question": "What does a cat eat?", "answers": ["fish and meat"], "relevant": ["cats.md"]},
            ]
        )
    )
    settings.llm.max_tokens = 24
    record = run(settings, load_dataset(questions, corpus=corpus), tmp_path / "w", RunOptions())
    metrics = record["metrics"]
    assert metrics["recall@1"] == 1.0
    for name in ("exact_match", "contains", "f1"):
        assert metrics[name] is not None and 0.0 <= metrics[name] <= 1.0
    first = record["queries"][0]
    assert first["answer"] and first["references"] == ["Sicily"]
    assert first["retrieved"][0][0] == "volcano.txt"
    assert set(first["metrics"]) >= {"ndcg@10", "exact_match", "contains", "f1"}
    assert record["timings"]["generate"] > 0


def test_documents_are_ranked_by_the_answering_retriever_unfiltered(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """rag eval retrieves through the retriever answering uses, with its score floor and
    near-duplicate removal explicitly off: every document is ranked, twins included, in the
    order of a plain search of the index with the queries embedded together."""
    settings.retrieval.mode = "dense"  # compared below with a plain search of the vectors
    settings.embedder.kind = "sentence-transformers"  # the runtime of the `embedder` fixture
    docs = {**DOCS, "cat-twin": DOCS["cat"]}  # the same text twice: dedup would drop one
    beir = write_beir(tmp_path / "twins", docs, QUERIES, QRELS)
    calls: list[tuple[int, int, dict[str, object]]] = []
    real = DenseRetriever.retrieve_many

    def spy(self, index, queries, k, **flags):  # type: ignore[no-untyped-def]
        calls.append((len(queries), k, flags))
        return real(self, index, queries, k, **flags)

    monkeypatch.setattr(DenseRetriever, "retrieve_many", spy)
    record = run(settings, load_dataset(beir, "test"), tmp_path / "w", RunOptions())
    assert calls == [(4, 5, {"floor": False, "dedup": False})]
    monkeypatch.undo()

    index = make_catalog(settings).open(record["index"], readonly=True)
    vectors = embedder.embed(list(QUERIES.values()))
    for query, vector in zip(record["queries"], vectors, strict=True):
        plain = [
            [unquote(h.chunk.path.rsplit("/", 1)[-1].removesuffix(".md")), round(h.score, 4)]
            for h in index.search(vector, 5)
        ]
        assert query["retrieved"] == plain
        assert len(plain) == 5
    cat = record["queries"][0]["retrieved"]
    assert {cat[0][0], cat[1][0]} == {"cat", "cat-twin"}
    assert min(score for _, score in cat) < settings.retrieval.min_score  # below the floor, kept


def test_a_run_on_the_pgvector_store_ingests_with_the_store_url_intact(
    settings: Settings, beir: Path, tmp_path: Path, pg_url: str
) -> None:
    """The corpus is ingested in a child process: it gets the settings' secrets as they
    are (the store URL, with its password), not as they are shown; the saved run shows
    them masked."""
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:pa55-word@")
    settings.store.kind, settings.store.url = "pgvector", SecretStr(url)
    record = run(settings, load_dataset(beir, "test"), tmp_path / "work", RunOptions())
    assert record["ingest"]["added"] == 4 and record["metrics"]["ndcg@10"] == 1.0
    saved = Path(record["path"]).read_text()
    assert "pa55-word" not in saved and record["settings"]["store.url"] == "**********"


def test_runs_saved_in_the_same_second_keep_their_own_records(tmp_path: Path) -> None:
    """Runs of one dataset finished in the same second (in one process or several): each
    keeps its own file and its own id, by which `--compare` finds it."""
    records = [{"id": "20240101-000000-tiny", "metrics": {"ndcg@10": n / 10}} for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda r: save(r, tmp_path), records))
    assert len(set(paths)) == len(records) == len({r["id"] for r in records})
    for record in records:
        assert load_run(record["id"], tmp_path)["metrics"] == record["metrics"]
        assert Path(record["path"]).stem == record["id"]
