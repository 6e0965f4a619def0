"""Rebuild squad2-en/ from the development set of SQuAD 2.0.

    python bench/data/squad2.py path/to/dev-v2.0.json
    python bench/data/squad2.py path/to/SQuAD-explorer
    python bench/data/squad2.py path/to/SQuAD-explorer/explore/v2.0/dev

The source is the SQuAD 2.0 development set (35 Wikipedia articles, 1,204 paragraphs, 11,873
questions, 5,945 of them unanswerable): either its JSON file, `dev-v2.0.json`
(https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json), or the pages of the SQuAD
explorer, which show every paragraph of the set with its questions and their answers: a clone of
the `gh-pages` branch of https://github.com/rajpurkar/SQuAD-explorer (a working copy or a bare
repository, read with `git show`), or its folder `explore/v2.0/dev/` (one HTML page per article,
`index.html` aside). Both give the same articles, paragraphs, questions and answers.

The articles are sorted by title and 16 of them drawn with `random.Random(SEED)`: the first 8
drawn for the calibration split, the other 8 for the test split, so that no article has questions
in both. Every paragraph of the 16 articles is one document: id = the article's title as a slug
and the paragraph's index in the article (from 0), as in `normans-03`; title = the article's
title, underscores as spaces; text = the paragraph, stripped.

In each split, 150 answerable and 150 unanswerable questions are drawn, spread as evenly as can
be over the split's articles and, within an article, over its paragraphs: each paragraph's
questions and the article's paragraphs are shuffled (`random.Random(SEED + 1)` for calibration,
`SEED + 2` for test), an article's questions are taken a round at a time (one question of each
paragraph per round), and the articles take turns. An answerable question keeps its id, its text
and its gold answers (deduplicated, in their order), and is judged against its paragraph (score 1)
in `qrels/<split>.tsv`. An unanswerable question was written by a crowd worker to look answerable
from its paragraph, which is in the corpus but does not hold the answer; it is marked
`"answerable": false` with the split it belongs to, and has no qrels line.

The same files come out each time.
"""

from __future__ import annotations

import html
import json
import random
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from qa_set import SPLITS, Article, Paragraph, Question, check, write

HERE = Path(__file__).parent
FOLDER = HERE / "squad2-en"
SEED = 2018  # the year of the SQuAD 2.0 paper
ARTICLES_PER_SPLIT = 8
QUESTIONS_PER_KIND = 150  # answerable, and as many unanswerable, in each split
PAGES = "explore/v2.0/dev"
BRANCHES = ("gh-pages", "origin/gh-pages")

# The explorer's pages: each paragraph in a <pre>, then its questions with their answers.
PARAGRAPH = re.compile(r'<div class="para-wrap">.*?<pre>(.*?)</pre>(.*?)(?=<div class="para-wrap">|$)', re.S)
QUESTION = re.compile(
    r'<div class="qa-wrap" data-id="([^"]+)"><p>\s*<strong class="question">(.*?)</strong></p>'
    r".*?Ground Truth Answers: </i>(.*?)</p>",
    re.S,
)
ANSWER = re.compile(r'<span class="answer">(.*?)</span>', re.S)


def unique(texts: Sequence[str]) -> list[str]:
    """The texts stripped, without repeats or empty ones, in their order."""
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def from_json(path: Path) -> list[Article]:
    """The articles of a SQuAD 2.0 JSON file."""
    articles = []
    for record in json.loads(path.read_text(encoding="utf-8"))["data"]:
        article = Article(record["title"])
        for paragraph in record["paragraphs"]:
            questions = [
                Question(
                    qa["id"],
                    qa["question"].strip(),
                    [] if qa.get("is_impossible") else unique([a["text"] for a in qa["answers"]]),
                )
                for qa in paragraph["qas"]
            ]
            article.paragraphs.append(Paragraph(paragraph["context"], questions))
        articles.append(article)
    return articles


def from_page(title: str, page: str) -> Article:
    """An article from its page of the SQuAD explorer."""
    article = Article(title)
    for context, rest in PARAGRAPH.findall(page):
        questions = []
        for qid, text, answers in QUESTION.findall(rest):
            texts = [html.unescape(a) for a in ANSWER.findall(answers)]
            if not texts and "no-answer" not in answers:
                raise ValueError(f"{title}: question {qid} has neither answers nor <No Answer>")
            questions.append(Question(qid, html.unescape(text).strip(), unique(texts)))
        article.paragraphs.append(Paragraph(html.unescape(context), questions))
    return article


def from_pages(folder: Path) -> list[Article]:
    """The articles of the explorer's folder `explore/v2.0/dev/`."""
    pages = sorted(p for p in folder.glob("*.html") if p.name != "index.html")
    return [from_page(p.stem, p.read_text(encoding="utf-8")) for p in pages]


def from_git(repo: Path) -> list[Article]:
    """The articles of the explorer's pages in a clone of its gh-pages branch, bare or not."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout

    for branch in BRANCHES:
        names = subprocess.run(
            ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", branch, f"{PAGES}/"],
            capture_output=True,
            text=True,
        ).stdout.split()
        pages = sorted(n for n in names if n.endswith(".html") and not n.endswith("/index.html"))
        if pages:
            return [from_page(Path(n).stem, git("show", f"{branch}:{n}")) for n in pages]
    raise SystemExit(f"{repo}: no branch {' or '.join(BRANCHES)} with {PAGES}/*.html")


def load(path: Path) -> list[Article]:
    if path.is_file():
        return from_json(path)
    if any(path.glob("*.html")):
        return from_pages(path)
    if (path / PAGES).is_dir():
        return from_pages(path / PAGES)
    if path.is_dir():
        return from_git(path)
    raise SystemExit(f"no SQuAD 2.0 development set at {path}")


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def doc_id(article: Article, index: int) -> str:
    return f"{slug(article.title)}-{index:02d}"


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
    drawn = random.Random(SEED).sample(sorted(by_title), 2 * ARTICLES_PER_SPLIT)
    split_titles = {"calibration": drawn[:ARTICLES_PER_SPLIT], "test": drawn[ARTICLES_PER_SPLIT:]}

    corpus: list[dict[str, str]] = []
    where: dict[str, str] = {}  # question id -> its paragraph's document id
    for title in sorted(drawn):
        article = by_title[title]
        for index, paragraph in enumerate(article.paragraphs):
            corpus.append(
                {
                    "_id": doc_id(article, index),
                    "title": title.replace("_", " "),
                    "text": paragraph.text.strip(),
                }
            )
            where.update((q.id, doc_id(article, index)) for q in paragraph.questions)

    queries: list[dict[str, object]] = []
    qrels: dict[str, list[tuple[str, str]]] = {}
    for n, split in enumerate(SPLITS, start=1):
        rng = random.Random(SEED + n)
        chosen = sorted(split_titles[split])
        answerable = spread(
            [[[q for q in p.questions if q.answers] for p in by_title[t].paragraphs] for t in chosen],
            QUESTIONS_PER_KIND,
            rng,
        )
        unanswerable = spread(
            [[[q for q in p.questions if not q.answers] for p in by_title[t].paragraphs] for t in chosen],
            QUESTIONS_PER_KIND,
            rng,
        )
        order = {
            q.id: i
            for i, q in enumerate(q for t in chosen for p in by_title[t].paragraphs for q in p.questions)
        }
        answerable.sort(key=lambda q: order[q.id])
        unanswerable.sort(key=lambda q: order[q.id])
        queries += [{"_id": q.id, "text": q.text, "answers": q.answers} for q in answerable]
        queries += [{"_id": q.id, "text": q.text, "answerable": False, "split": split} for q in unanswerable]
        qrels[split] = [(q.id, where[q.id]) for q in answerable]
        paragraphs = len({where[q.id] for q in answerable})
        print(
            f"{split}: {len(chosen)} articles ({', '.join(chosen)}), "
            f"{sum(len(by_title[t].paragraphs) for t in chosen)} paragraphs; "
            f"{len(answerable)} answerable questions over {paragraphs} paragraphs, "
            f"{len(unanswerable)} unanswerable"
        )

    check(corpus, queries, qrels, lambda answer, text: answer in text)
    write(folder, corpus, queries, qrels)
    print(f"{len(corpus)} documents, {len(queries)} questions written to {folder}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} path/to/dev-v2.0.json | path/to/SQuAD-explorer[/explore/v2.0/dev]")
    articles = load(Path(sys.argv[1]))
    questions = [q for a in articles for p in a.paragraphs for q in p.questions]
    print(
        f"SQuAD 2.0 dev: {len(articles)} articles, {sum(len(a.paragraphs) for a in articles)} paragraphs, "
        f"{len(questions)} questions, {sum(not q.answers for q in questions)} unanswerable"
    )
    build(articles, FOLDER)


if __name__ == "__main__":
    main()
