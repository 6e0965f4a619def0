"""Retrieval metrics at document level, and answer metrics against reference answers.

Retrieval metrics follow trec_eval (as BEIR reports them): nDCG with linear gain over
graded relevance, Recall@k as the share of relevant documents found in the first k,
MRR@k as the reciprocal rank of the first relevant document.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

RETRIEVAL_METRICS = ("ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr@10")
ANSWER_METRICS = ("exact_match", "contains", "f1")
# Of the grounded answer: sentences backed by a passage, cited passages that hold the
# reference answer (or are relevant), the extractive baseline (the passage sentence that
# best answers holds the reference), abstention on unanswerable questions and refusals
# of answerable ones.
GROUNDING_METRICS = (
    "supported_rate",
    "citation_precision",
    "extractive_contains",
    "abstention",
    "wrongly_refused",
)


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {doc for doc, g in relevant.items() if g > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def retrieval_scores(ranked: Sequence[str], relevant: Mapping[str, int]) -> dict[str, float]:
    """Every retrieval metric of one query."""
    return {
        "ndcg@10": ndcg_at(ranked, relevant, 10),
        "recall@1": recall_at(ranked, relevant, 1),
        "recall@5": recall_at(ranked, relevant, 5),
        "recall@10": recall_at(ranked, relevant, 10),
        "recall@100": recall_at(ranked, relevant, 100),
        "mrr@10": mrr_at(ranked, relevant, 10),
    }


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (as SQuAD scores answers)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, references: Iterable[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


def contains(prediction: str, references: Iterable[str]) -> float:
    """1 when a (normalized) reference answer appears in the (normalized) response."""
    pred = f" {normalize_answer(prediction)} "
    return float(any(f" {normalize_answer(r)} " in pred for r in references if normalize_answer(r)))


def token_f1(prediction: str, references: Iterable[str]) -> float:
    """Best token-overlap F1 against any reference."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for reference in references:
        ref = normalize_answer(reference).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref or not common:
            continue
        precision, recall = common / len(pred), common / len(ref)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    return {
        "exact_match": exact_match(prediction, references),
        "contains": contains(prediction, references),
        "f1": token_f1(prediction, references),
    }


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
