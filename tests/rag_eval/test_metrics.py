from __future__ import annotations

import math

import pytest

from rag_eval.metrics import (
    answer_scores,
    mean,
    mrr_at,
    ndcg_at,
    normalize_answer,
    recall_at,
    retrieval_scores,
)


def test_ndcg_matches_the_formula() -> None:
    relevant = {"a": 1, "b": 1}
    assert ndcg_at(["a", "b", "c"], relevant, 10) == pytest.approx(1.0)
    # one relevant document at rank 2 of 2 wanted: (1/log2 3) / (1 + 1/log2 3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at(["x", "a", "y"], relevant, 10) == pytest.approx(expected)
    assert ndcg_at(["x", "y"], relevant, 10) == 0.0
    assert ndcg_at(["a"], {"a": 2, "b": 1}, 10) == pytest.approx(2 / (2 + 1 / math.log2(3)))


def test_recall_and_mrr() -> None:
    relevant = {"a": 1, "b": 1, "n": 0}
    ranked = ["x", "b", "y", "a"]
    assert recall_at(ranked, relevant, 1) == 0.0
    assert recall_at(ranked, relevant, 2) == 0.5
    assert recall_at(ranked, relevant, 4) == 1.0
    assert mrr_at(ranked, relevant, 10) == 0.5
    assert mrr_at(ranked, relevant, 1) == 0.0
    assert set(retrieval_scores(ranked, relevant)) == {
        "ndcg@10",
        "recall@1",
        "recall@5",
        "recall@10",
        "recall@100",
        "mrr@10",
    }


def test_answer_metrics() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    scores = answer_scores("It is the Eiffel Tower, in Paris.", ["Eiffel Tower"])
    assert scores["exact_match"] == 0.0
    assert scores["contains"] == 1.0
    assert 0 < scores["f1"] < 1
    assert answer_scores("eiffel tower", ["The Eiffel Tower", "x"])["exact_match"] == 1.0
    assert answer_scores("towering", ["tower"])["contains"] == 0.0  # whole words only
    assert answer_scores("nothing", ["tower"]) == {"exact_match": 0.0, "contains": 0.0, "f1": 0.0}


def test_mean_skips_missing() -> None:
    assert mean([1.0, None, 0.0]) == 0.5
    assert mean([None]) is None
