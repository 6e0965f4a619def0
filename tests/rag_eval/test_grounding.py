"""`rag eval` measures grounded answers, on a small bilingual set the tests ship: support,
citation precision, the extractive baseline, abstention on unanswerable questions and
refusals of answerable ones, with the real embedder and model."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag_eval.datasets import load_dataset
from rag_eval.runner import RunOptions, run

DATA = Path(__file__).parents[1] / "data" / "grounded"


def test_grounding_metrics_on_a_bilingual_set(settings: Settings, tmp_path: Path) -> None:
    dataset = load_dataset(DATA / "questions.jsonl", corpus=DATA / "docs")
    assert [q.answerable for q in dataset.queries] == [True] * 4 + [False] * 2
    small = settings.model_copy(update={"llm": settings.llm.model_copy(update={"max_tokens": 48})})
    record = run(small, dataset, tmp_path / "work", RunOptions())
    metrics = record["metrics"]
    for name in (
        "supported_rate",
        "citation_precision",
        "extractive_contains",
        "abstention",
        "wrongly_refused",
        "contains",
    ):
        assert name in metrics, name
    assert metrics["abstention"] is not None and metrics["wrongly_refused"] is not None
    by_id = {q["id"]: q for q in record["queries"]}
    assert by_id["en3"]["abstained"] and by_id["fr3"]["abstained"]  # nothing in these documents
    assert metrics["extractive_contains"] >= 0.75  # the passages hold the answers
    assert metrics["wrongly_refused"] <= 0.25
    for query in record["queries"]:  # no span, no citation that is not in the stored text
        assert "answer" in query
