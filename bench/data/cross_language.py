"""Derive the cross-language sets faq-fr-en/ and faq-en-fr/ from faq-fr/ and faq-en/.

    python bench/data/cross_language.py

faq-fr-en asks the French questions of faq-fr over the English corpus of faq-en; faq-en-fr
asks the English questions of faq-en over the French corpus of faq-fr. This works because
the two FAQ packages number their sections alike and the two question sets share their ids
and their judgements: the script checks both (same section ids, in the same order; same
question ids; same unanswerable questions; same qrels in every split) before writing.

Each derived folder gets the corpus of the other language as it is, the questions of its
own language as they are (unanswerable ones keep `"answerable": false`), with the other
language's reference answers added after their own where they differ (an answer may come
in the language of the question or of the documents), the qrels of the question set, and
a README.md whose licence section is the one of faq-fr/README.md.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
NAMES = {"fr": "French", "en": "English"}
PACKAGES = {"fr": "debian-faq-fr", "en": "debian-faq"}
LICENCE_HEADING = "## Licence of the corpus"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def check_aligned(fr: Path, en: Path) -> None:
    """Exit with a message unless the two sets number their sections and questions alike."""
    problems = []
    fr_docs, en_docs = read_jsonl(fr / "corpus.jsonl"), read_jsonl(en / "corpus.jsonl")
    if [d["_id"] for d in fr_docs] != [d["_id"] for d in en_docs]:
        problems.append("the two corpora do not have the same section ids in the same order")
    fr_queries, en_queries = read_jsonl(fr / "queries.jsonl"), read_jsonl(en / "queries.jsonl")
    if [q["_id"] for q in fr_queries] != [q["_id"] for q in en_queries]:
        problems.append("the two question sets do not have the same ids")
    for a, b in zip(fr_queries, en_queries, strict=False):
        if (a.get("answerable") is False) != (b.get("answerable") is False):
            problems.append(f"{a['_id']} is unanswerable in one language only")
    splits = sorted(p.name for p in (fr / "qrels").glob("*.tsv"))
    if splits != sorted(p.name for p in (en / "qrels").glob("*.tsv")):
        problems.append("the two sets do not have the same qrels splits")
    for split in splits:
        if (fr / "qrels" / split).read_text(encoding="utf-8") != (en / "qrels" / split).read_text(
            encoding="utf-8"
        ):
            problems.append(f"qrels/{split} differs between the two sets")
    if problems:
        sys.exit("cannot derive the cross-language sets: " + "; ".join(problems))


def licence_section(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    start = text.index(LICENCE_HEADING)
    end = text.find("\n## ", start + len(LICENCE_HEADING))
    return text[start : end if end != -1 else None].strip() + "\n"


def derive(questions: str, documents: str) -> Path:
    """Write faq-QUESTIONS-DOCUMENTS/ from faq-QUESTIONS/ (questions, qrels) and faq-DOCUMENTS/ (corpus)."""
    source, corpus = HERE / f"faq-{questions}", HERE / f"faq-{documents}"
    target = HERE / f"faq-{questions}-{documents}"
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / "corpus.jsonl", target / "corpus.jsonl")
    others = {q["_id"]: q for q in read_jsonl(corpus / "queries.jsonl")}
    with (target / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query in read_jsonl(source / "queries.jsonl"):
            extra = [a for a in others[query["_id"]].get("answers", []) if a not in query.get("answers", [])]
            if extra:
                query["answers"] = [*query["answers"], *extra]
            out.write(json.dumps(query, ensure_ascii=False) + "\n")
    splits = sorted((source / "qrels").glob("*.tsv"))
    for split in splits:
        shutil.copyfile(split, target / "qrels" / split.name)
    (target / "README.md").write_text(
        readme(questions, documents, [s.stem for s in splits])
        + "\n"
        + licence_section(HERE / "faq-fr" / "README.md"),
        encoding="utf-8",
    )
    return target


def readme(questions: str, documents: str, splits: list[str]) -> str:
    name, asked, over = f"faq-{questions}-{documents}", NAMES[questions], NAMES[documents]
    n_docs = len(read_jsonl(HERE / f"faq-{documents}" / "corpus.jsonl"))
    records = read_jsonl(HERE / f"faq-{questions}" / "queries.jsonl")
    unanswerable = sum(q.get("answerable") is False for q in records)
    qrels = ", ".join(f"`qrels/{s}.tsv`" for s in splits)
    paragraphs = [
        f"# {name}: {asked} questions over the {over} Debian FAQ",
        (
            f"A cross-language set derived from [faq-{questions}](../faq-{questions}/README.md) and "
            f"[faq-{documents}](../faq-{documents}/README.md) by `python bench/data/cross_language.py`, "
            "which writes this folder and its twin (do not edit them by hand)."
        ),
        (
            f"- **Corpus** (`corpus.jsonl`, {n_docs} documents): the corpus of faq-{documents} as it is, "
            f"the sections of the Debian FAQ in {over} (package `{PACKAGES[documents]}` 11.1)."
        ),
        (
            f"- **Queries** (`queries.jsonl`, {len(records)}): the questions of faq-{questions} as they are, "
            f"in {asked}: {len(records) - unanswerable} answerable and {unanswerable} unanswerable "
            f'(`"answerable": false`). The {over} reference answers of faq-{documents} follow the {asked} '
            "ones where they differ, since an answer may come in either language."
        ),
        (
            f"- **Qrels** ({qrels}): the judgements of faq-{questions} as they are. Both FAQ packages "
            "number their sections alike and both question sets share their ids and judgements; the "
            "script checks this before writing."
        ),
        (
            f"- Run it: `rag eval bench/data/{name} --split test --set retrieval.mode=hybrid` (BEIR "
            "layout; answers are generated and graded unless `--no-generate`)."
        ),
    ]
    wrapped = [
        textwrap.fill(
            p,
            90,
            break_on_hyphens=False,
            break_long_words=False,
            subsequent_indent="  " if p.startswith("- ") else "",
        )
        for p in paragraphs
    ]
    return "\n\n".join(wrapped[:3]) + "\n" + "\n".join(wrapped[3:]) + "\n"


def main() -> None:
    check_aligned(HERE / "faq-fr", HERE / "faq-en")
    for questions, documents in (("fr", "en"), ("en", "fr")):
        print(f"wrote {derive(questions, documents)}")


if __name__ == "__main__":
    main()
