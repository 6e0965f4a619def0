"""Reference answers as drafts: a right one delivered as written, a wrong one caught, with
the real embedder and no model."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.types import Answer, Usage
from rag_eval.datasets import Query, load_dataset
from rag_eval.drafts import caught, kept, wrong_drafts
from rag_eval.runner import RunOptions, run

DATA = Path(__file__).parents[1] / "data" / "grounded"


def answer(text: str, *, abstained: bool = False, unsupported: bool = False) -> Answer:
    from rag.grounding.attribution import SentenceSupport

    sentence = SentenceSupport(text, 0, len(text), supported=not unsupported)
    return Answer(text, [], Usage(), {}, abstained=abstained, sentences=[sentence])


def test_kept_is_the_draft_as_written_and_caught_is_anything_that_stops_it() -> None:
    assert kept(answer("two hours [1]"), "two hours")
    assert not kept(answer("two hours [1]\n\nLet the dough rise for two hours [1]."), "two hours")
    assert not kept(answer("two hours", unsupported=True), "two hours")
    assert not kept(answer("The documents do not say.", abstained=True), "two hours")
    assert caught(answer("The documents do not say.", abstained=True), "six hours")
    assert caught(answer("Let the dough rise for two hours [1]."), "six hours")  # replaced
    assert caught(answer("six hours", unsupported=True), "six hours")
    assert not caught(answer("six hours [1]"), "six hours")


def test_a_wrong_draft_is_another_question_s_different_answer() -> None:
    queries = [
        Query("a", "?", answers=["x"]),
        Query("b", "?", answers=["X", "y"]),
        Query("c", "?", answers=["z"]),
        Query("u", "?", answerable=False),
    ]
    assert wrong_drafts(queries) == {"a": "z", "b": "z", "c": "x", "u": "x"}


def test_rag_eval_scores_reference_drafts_without_a_model(settings: Settings, tmp_path: Path) -> None:
    dataset = load_dataset(DATA / "questions.jsonl", corpus=DATA / "docs")
    record = run(settings, dataset, tmp_path / "work", RunOptions(drafts="references"))
    metrics = record["metrics"]
    assert record["drafts"] == "references"
    by_id = {q["id"]: q for q in record["queries"]}
    assert set(by_id["en2"]["drafts"]) == {"right", "wrong"}
    assert by_id["en2"]["drafts"]["right"]["draft"] == "two hours"
    assert "right" not in by_id["en3"]["drafts"]  # unanswerable: a wrong draft only
    assert metrics["right_kept"] is not None and metrics["wrong_caught"] is not None
    assert metrics["right_kept"] == 1.0
    # One wrong draft is not caught: "two hours" for the baking temperature, in the one
    # sentence that holds both facts and the question's terms.
    assert metrics["wrong_caught"] >= 0.8
    assert by_id["en3"]["abstained"] and by_id["fr3"]["abstained"]
    assert all(q["model"] == "reference answers" for q in record["queries"])
