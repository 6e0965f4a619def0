"""Evaluation datasets: the BEIR layout, or a JSONL of questions over a folder of documents.

BEIR: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`) and
`qrels/<split>.tsv` (query-id, corpus-id, score, with a header line). Only the queries
judged in the split are run, and those marked `"answerable": false` (no document holds
their answer): in every split, or in the one their `"split"` names.

JSONL: one question per line, `{"question": ..., "answer": ... or "answers": [...],
"relevant": [document ids] or {id: grade}, "id": ...}`; everything but the question is
optional. Its documents are a folder given apart (`--corpus`); a document's id is its
path relative to that folder, such as `guides/setup.md`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rag.errors import RagError


class DatasetError(RagError):
    """A dataset that cannot be read; the message says where and why."""


@dataclass
class Query:
    id: str
    text: str
    relevant: dict[str, int] = field(default_factory=dict)  # document id -> grade
    answers: list[str] = field(default_factory=list)
    answerable: bool = True  # False: the documents do not hold the answer; it should abstain


@dataclass
class Dataset:
    name: str
    path: Path
    format: str  # "beir" or "jsonl"
    queries: list[Query]
    corpus_dir: Path | None = None  # a folder of documents (jsonl)
    corpus_file: Path | None = None  # corpus.jsonl (beir)
    split: str | None = None  # the qrels split (beir)

    def documents(self) -> Iterator[tuple[str, str]]:
        """(document id, text) of a BEIR corpus: the title as a heading, then the text."""
        if self.corpus_file is None:
            return
        for n, record in _jsonl(self.corpus_file):
            if "_id" not in record:
                raise DatasetError(f"{self.corpus_file}:{n}: a document without `_id`")
            title, text = str(record.get("title") or "").strip(), str(record.get("text") or "")
            yield str(record["_id"]), (f"# {title}\n\n{text}" if title else text).strip() + "\n"


def load_dataset(path: Path, split: str = "test", corpus: Path | None = None) -> Dataset:
    """A BEIR folder or a JSONL file of questions (with `corpus`, its documents)."""
    if path.is_dir():
        return _beir(path, split)
    if not path.is_file():
        raise DatasetError(f"no dataset at {path}: give a BEIR folder or a JSONL file")
    if corpus is None or not corpus.is_dir():
        raise DatasetError(f"{path} is a question file: give its documents with --corpus DIR")
    queries = [_question(record, n, path) for n, record in _jsonl(path)]
    if not queries:
        raise DatasetError(f"{path} holds no questions")
    return Dataset(path.stem, path, "jsonl", queries, corpus_dir=corpus)


def document_file_name(doc_id: str) -> str:
    """A file name for a BEIR document id, reversible and safe on any file system."""
    name = quote(doc_id, safe="-_")
    return "%2E" + name[1:] if name.startswith(".") else name


def _beir(folder: Path, split: str) -> Dataset:
    corpus, queries_file, qrels = folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels"
    for needed in (corpus, queries_file):
        if not needed.is_file():
            raise DatasetError(f"{folder} is not a BEIR dataset: {needed.name} is missing")
    qrels_file = qrels / f"{split}.tsv"
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in qrels.glob("*.tsv")) if qrels.is_dir() else []
        raise DatasetError(f"no split {split!r} in {folder} (splits: {', '.join(splits) or 'none'})")
    judged = _qrels(qrels_file)
    records = {str(r["_id"]): r for _, r in _jsonl(queries_file) if "_id" in r}
    missing = [q for q in judged if q not in records]
    if missing:
        raise DatasetError(f"{qrels_file}: query ids not in queries.jsonl: {', '.join(missing[:5])}")
    # Judged queries, and those marked unanswerable (no document holds their answer): in
    # every split, or only in the one their `split` names.
    unanswerable = [
        q
        for q, r in records.items()
        if r.get("answerable") is False and q not in judged and r.get("split", split) == split
    ]
    queries = [_beir_query(q, records[q], judged.get(q, {})) for q in [*judged, *unanswerable]]
    return Dataset(folder.name, folder, "beir", queries, corpus_file=corpus, split=split)


def _beir_query(qid: str, record: dict[str, Any], relevant: dict[str, int]) -> Query:
    answers = record.get("answers", [])
    answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
    return Query(
        qid,
        str(record.get("text", "")),
        relevant,
        answers,
        answerable=record.get("answerable", True) is not False,
    )


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    judged: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if n == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # the header line
            if len(row) < 3:
                raise DatasetError(f"{path}:{n}: expected query-id, corpus-id, score")
            judged.setdefault(row[0], {})[row[1]] = int(row[2])
    return judged


def _question(record: dict[str, Any], n: int, path: Path) -> Query:
    text = record.get("question") or record.get("query") or record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{path}:{n}: no `question`")
    answers = record.get("answers", record.get("answer", []))
    answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
    relevant = record.get("relevant", record.get("relevant_docs", []))
    grades = (
        {str(k): int(v) for k, v in relevant.items()}
        if isinstance(relevant, dict)
        else {str(doc): 1 for doc in relevant}
    )
    return Query(
        str(record.get("id", record.get("_id", n))),
        text.strip(),
        grades,
        answers,
        answerable=record.get("answerable", True) is not False,
    )


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{n}: expected a JSON object")
            yield n, record
