"""Rebuild piaf-fr/ from PIAF v1.0, French questions over French Wikipedia paragraphs.

    python bench/data/piaf.py path/to/piaf-v1.0.json

The source is `piaf-v1.0.json` of https://github.com/etalab-ia/piaf-code (SQuAD format: 191
articles of French Wikipedia, 3,835 questions, each with one answer taken from its paragraph,
none unanswerable).

The articles with at least MIN_PARAGRAPHS paragraphs are sorted by title (HTML tags removed) and
40 of them drawn with `random.Random(SEED)` (articles with fewer paragraphs would only be drawn if
there were not enough): the first 20 drawn for the calibration split, the other 20 for the test
split, so that no article has questions in both. In each article about a third of the paragraphs
(`max(1, round(n / 3))` of n), drawn with `random.Random(SEED + 1)` article after article in the
order of their titles, are held out of the corpus; the others are the documents: id = the
article's title as a slug and the paragraph's index in the article (from 0), as in `chine-04`;
title = the article's title; text = the paragraph, stripped.

A question on a document is answerable: it keeps its id, its text and its answer, and is judged
against its paragraph (score 1) in `qrels/<split>.tsv`. A question on a held-out paragraph is
unanswerable, though on the topic of the article's other paragraphs, which are in the corpus; it
is marked `"answerable": false` with the split it belongs to, and has no qrels line. It is left
out, though, if its answer appears in any document of the corpus, compared without case, accents
or whitespace (a number, a date or a name that another paragraph holds too).

In each split, 150 answerable and 150 unanswerable questions are drawn (all of them if there are
fewer), spread as evenly as can be over the split's articles and, within an article, over its
paragraphs: each paragraph's questions and the article's paragraphs are shuffled
(`random.Random(SEED + 2)` for calibration, `SEED + 3` for test), an article's questions are taken
a round at a time (one question of each paragraph per round), and the articles take turns.

The same files come out each time.
"""

from __future__ import annotations

import html
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

from qa_set import SPLITS, Article, Paragraph, Question, check, write

HERE = Path(__file__).parent
FOLDER = HERE / "piaf-fr"
SEED = 2020  # the year of PIAF v1.0
ARTICLES_PER_SPLIT = 20
MIN_PARAGRAPHS = 4
QUESTIONS_PER_KIND = 150  # answerable, and at most as many unanswerable, in each split
SLUG_CHARS = 40


def load(path: Path) -> list[Article]:
    articles = []
    for record in json.loads(path.read_text(encoding="utf-8"))["data"]:
        title = " ".join(html.unescape(re.sub(r"<[^>]+>", "", record["title"])).split())
        article = Article(title)
        for paragraph in record["paragraphs"]:
            questions = [
                Question(
                    qa["id"],
                    qa["question"].strip(),
                    list(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip())),
                )
                for qa in paragraph["qas"]
            ]
            article.paragraphs.append(Paragraph(paragraph["context"], questions))
        articles.append(article)
    return articles


def fold(text: str) -> str:
    """The text without case, accents or whitespace, to compare answers with paragraphs."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and not c.isspace())


def slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_title.lower()).split()
    kept: list[str] = []
    for word in words:
        if kept and len("-".join([*kept, word])) > SLUG_CHARS:
            break
        kept.append(word)
    return "-".join(kept)


def spread(articles: list[list[list[Question]]], count: int, rng: random.Random) -> list[Question]:
    """Up to `count` questions, as evenly as can be over the articles, then over their paragraphs.

    `articles` holds, for each article, the candidate questions of each of its paragraphs.
    """
    queues = []
    for paragraphs in articles:
        shuffled = [rng.sample(questions, len(questions)) for questions in paragraphs if questions]
        rng.shuffle(shuffled)
        rounds = max(map(len, shuffled), default=0)
        queues.append([qs[r] for r in range(rounds) for qs in shuffled if r < len(qs)])
    turns = max(map(len, queues), default=0)
    return [queue[t] for t in range(turns) for queue in queues if t < len(queue)][:count]


def build(articles: list[Article], folder: Path) -> None:
    by_title = {a.title: a for a in articles}
    if len(by_title) != len(articles):
        raise SystemExit("two articles with the same title")
    long = sorted(t for t, a in by_title.items() if len(a.paragraphs) >= MIN_PARAGRAPHS)
    short = sorted(t for t, a in by_title.items() if len(a.paragraphs) < MIN_PARAGRAPHS)
    rng = random.Random(SEED)
    wanted = 2 * ARTICLES_PER_SPLIT
    drawn = rng.sample(long, min(wanted, len(long)))
    drawn += rng.sample(short, wanted - len(drawn))
    split_titles = {
        "calibration": sorted(drawn[:ARTICLES_PER_SPLIT]),
        "test": sorted(drawn[ARTICLES_PER_SPLIT:]),
    }
    ids = {t: slug(t) for t in drawn}
    if len(set(ids.values())) != len(ids):
        raise SystemExit("two drawn articles with the same slug")

    held_rng = random.Random(SEED + 1)
    held: dict[str, set[int]] = {}
    for title in sorted(drawn):
        n = len(by_title[title].paragraphs)
        held[title] = set(held_rng.sample(range(n), max(1, round(n / 3))))

    corpus: list[dict[str, str]] = []
    where: dict[str, str] = {}  # answerable question id -> its paragraph's document id
    for title in sorted(drawn):
        for index, paragraph in enumerate(by_title[title].paragraphs):
            if index not in held[title]:
                corpus.append(
                    {"_id": f"{ids[title]}-{index:02d}", "title": title, "text": paragraph.text.strip()}
                )
                where.update((q.id, f"{ids[title]}-{index:02d}") for q in paragraph.questions)
    folded_corpus = "\0".join(fold(d["text"]) for d in corpus)

    def answer_elsewhere(question: Question) -> bool:
        return not question.answers or any(fold(a) in folded_corpus for a in question.answers)

    queries: list[dict[str, object]] = []
    qrels: dict[str, list[tuple[str, str]]] = {}
    hidden: dict[str, list[str]] = {}  # unanswerable question id -> its answers, to check
    for n, split in enumerate(SPLITS, start=2):
        rng = random.Random(SEED + n)
        chosen = split_titles[split]
        answerable_pool = [
            [p.questions if i not in held[t] else [] for i, p in enumerate(by_title[t].paragraphs)]
            for t in chosen
        ]
        held_pool = [
            [p.questions if i in held[t] else [] for i, p in enumerate(by_title[t].paragraphs)]
            for t in chosen
        ]
        candidates = [q for article in held_pool for qs in article for q in qs]
        dropped = {q.id for q in candidates if answer_elsewhere(q)}
        unanswerable_pool = [
            [[q for q in qs if q.id not in dropped] for qs in article] for article in held_pool
        ]
        answerable = spread(answerable_pool, QUESTIONS_PER_KIND, rng)
        unanswerable = spread(unanswerable_pool, QUESTIONS_PER_KIND, rng)
        order = {
            q.id: i
            for i, q in enumerate(q for t in chosen for p in by_title[t].paragraphs for q in p.questions)
        }
        answerable.sort(key=lambda q: order[q.id])
        unanswerable.sort(key=lambda q: order[q.id])
        queries += [{"_id": q.id, "text": q.text, "answers": q.answers} for q in answerable]
        queries += [{"_id": q.id, "text": q.text, "answerable": False, "split": split} for q in unanswerable]
        qrels[split] = [(q.id, where[q.id]) for q in answerable]
        hidden.update((q.id, q.answers) for q in unanswerable)
        paragraphs = sum(len(by_title[t].paragraphs) for t in chosen)
        held_out = sum(len(held[t]) for t in chosen)
        available = sum(len(qs) for article in answerable_pool for qs in article)
        print(
            f"{split}: {len(chosen)} articles, {paragraphs} paragraphs, {held_out} held out; "
            f"{len(answerable)} answerable questions drawn of {available}, "
            f"{len(unanswerable)} unanswerable drawn of {len(candidates) - len(dropped)} "
            f"({len(dropped)} of {len(candidates)} on held-out paragraphs left out: answer in the corpus)"
        )

    check_piaf(corpus, queries, qrels, hidden)
    write(folder, corpus, queries, qrels)
    print(f"{len(corpus)} documents, {len(queries)} questions written to {folder}")


def check_piaf(
    corpus: list[dict[str, str]],
    queries: list[dict[str, object]],
    qrels: dict[str, list[tuple[str, str]]],
    hidden: dict[str, list[str]],
) -> None:
    """The checks of every set (`qa_set.check`, answers compared folded), and none of an
    unanswerable question's answers in the corpus."""
    check(corpus, queries, qrels, lambda answer, text: fold(answer) in fold(text))
    records = {str(q["_id"]): q for q in queries}
    folded = "\0".join(fold(d["text"]) for d in corpus)
    for qid, answers in hidden.items():
        if records.get(qid, {}).get("answerable") is not False or any(fold(a) in folded for a in answers):
            raise SystemExit(f"{qid}: not an unanswerable question, or its answer is in the corpus")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} path/to/piaf-v1.0.json")
    articles = load(Path(sys.argv[1]))
    questions = [q for a in articles for p in a.paragraphs for q in p.questions]
    print(
        f"PIAF: {len(articles)} articles, {sum(len(a.paragraphs) for a in articles)} paragraphs, "
        f"{len(questions)} questions"
    )
    build(articles, FOLDER)


if __name__ == "__main__":
    main()
