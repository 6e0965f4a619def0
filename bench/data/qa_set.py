"""What the question-answering sets' builders share (`squad2.py`, `piaf.py`): articles of
paragraphs with their questions, the checks a built set passes, and writing it in the BEIR
layout `rag eval` reads (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("calibration", "test")
QRELS_HEADER = "query-id\tcorpus-id\tscore"


@dataclass
class Question:
    id: str
    text: str
    answers: list[str]  # empty: unanswerable


@dataclass
class Paragraph:
    text: str
    questions: list[Question] = field(default_factory=list)


@dataclass
class Article:
    title: str
    paragraphs: list[Paragraph] = field(default_factory=list)


def check(
    corpus: list[dict[str, str]],
    queries: list[dict[str, object]],
    qrels: dict[str, list[tuple[str, str]]],
    holds: Callable[[str, str], bool],
) -> None:
    """Unique ids; every judged question in queries.jsonl and answerable, and its document in
    the corpus holding one of its answers (`holds(answer, text)`); every answerable question
    judged; every unanswerable one in a split."""
    doc_ids = [d["_id"] for d in corpus]
    query_ids = [str(q["_id"]) for q in queries]
    if len(set(doc_ids)) != len(doc_ids) or len(set(query_ids)) != len(query_ids):
        raise SystemExit("duplicate document or question ids")
    texts = {d["_id"]: d["text"] for d in corpus}
    records = {str(q["_id"]): q for q in queries}
    judged = [qid for lines in qrels.values() for qid, _ in lines]
    if len(set(judged)) != len(judged):
        raise SystemExit("a question judged twice")
    for qid, did in (line for lines in qrels.values() for line in lines):
        if qid not in records or records[qid].get("answerable") is False:
            raise SystemExit(f"qrels: {qid} is not an answerable question of queries.jsonl")
        if did not in texts:
            raise SystemExit(f"qrels: {did} is not in the corpus")
        answers = records[qid]["answers"]
        if not isinstance(answers, list) or not any(holds(a, texts[did]) for a in answers):
            raise SystemExit(f"qrels: no answer of {qid} in {did}")
    unjudged = [qid for qid, q in records.items() if q.get("answerable") is not False and qid not in judged]
    if unjudged:
        raise SystemExit(f"answerable questions without qrels: {', '.join(unjudged[:5])}")
    unanswerable = [(qid, q) for qid, q in records.items() if q.get("answerable") is False]
    unsplit = [qid for qid, q in unanswerable if q.get("split") not in SPLITS]
    if unsplit:
        raise SystemExit(f"unanswerable questions without a split: {', '.join(unsplit[:5])}")


def write(
    folder: Path,
    corpus: list[dict[str, str]],
    queries: list[dict[str, object]],
    qrels: dict[str, list[tuple[str, str]]],
) -> None:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for name, records in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
        (folder / name).write_text("".join(lines), encoding="utf-8")
    for split, judged in qrels.items():
        rows = [QRELS_HEADER, *(f"{qid}\t{did}\t1" for qid, did in judged)]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
