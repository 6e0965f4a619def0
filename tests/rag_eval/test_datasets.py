from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_eval.corpus import document_id, materialize
from rag_eval.datasets import DatasetError, document_file_name, load_dataset


def write_beir(
    root: Path,
    docs: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: dict[str, list[str]],
    split: str = "test",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items())
    )
    (root / "qrels").mkdir(exist_ok=True)
    rows = [f"{q}\t{d}\t1\n" for q, ds in qrels.items() for d in ds]
    (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    return root


def test_beir_reads_only_judged_queries(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "set", {"d1": ("T", "x")}, {"q1": "one?", "q2": "two?"}, {"q2": ["d1"]})
    data = load_dataset(root, "test")
    assert [q.id for q in data.queries] == ["q2"]
    assert data.queries[0].relevant == {"d1": 1}
    with pytest.raises(DatasetError, match="no split 'train'.*test"):
        load_dataset(root, "train")


def test_corpus_files_round_trip_ids_and_stay_untouched(tmp_path: Path) -> None:
    docs = {"a/b": ("Title", "Text."), ".hidden": ("", "No title."), "42": ("T", "x")}
    data = load_dataset(write_beir(tmp_path / "set", docs, {"q": "?"}, {"q": ["42"]}), "test")
    folder = materialize(data, tmp_path / "work")
    files = sorted(p.name for p in folder.iterdir())
    assert all(not f.startswith(".") and "/" not in f for f in files)
    assert {document_id(str(folder / f), data, folder) for f in files} == set(docs)
    assert (folder / (document_file_name("a/b") + ".md")).read_text() == "# Title\n\nText.\n"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    materialize(data, tmp_path / "work")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_jsonl_questions(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "Where?", "answer": "Sicily", "relevant": ["volcano.txt"]})
        + "\n"
        + json.dumps({"id": "b", "question": "How?", "answers": ["x", "y"]})
        + "\n\n"
    )
    data = load_dataset(questions, corpus=tmp_path)
    assert [(q.id, q.answers, q.relevant) for q in data.queries] == [
        ("1", ["Sicily"], {"volcano.txt": 1}),
        ("b", ["x", "y"], {}),
    ]
    with pytest.raises(DatasetError, match="--corpus"):
        load_dataset(questions)
    questions.write_text('{"question": "ok"}\n{not json\n')
    with pytest.raises(DatasetError, match=r"q.jsonl:2: invalid JSON"):
        load_dataset(questions, corpus=tmp_path)


def test_unanswerable_questions_run_in_every_split_or_in_the_one_they_name(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "set", {"d1": ("T", "x")}, {"q1": "one?"}, {"q1": ["d1"]}, split="test")
    (root / "qrels" / "calibration.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with (root / "queries.jsonl").open("a") as fh:
        for qid, split in (("u1", None), ("u2", "calibration"), ("u3", "test")):
            record = {"_id": qid, "text": f"{qid}?", "answerable": False} | (
                {"split": split} if split else {}
            )
            fh.write(json.dumps(record) + "\n")
    assert [q.id for q in load_dataset(root, "test").queries] == ["q1", "u1", "u3"]
    assert [q.id for q in load_dataset(root, "calibration").queries] == ["q1", "u1", "u2"]
