"""Calibrate the abstention thresholds on a saved `rag eval` run with answerable and
unanswerable questions (a JSONL or BEIR set where some questions say "answerable": false).

    python bench/calibrate.py RUN.json [RUN.json ...]

A question is answered that the documents do not say when nothing passes
`retrieval.min_score` (best retrieval score below it), or when the passages answer it less
than `answer.min_fit` for its language (rag.grounding: the mean of the best retrieval
score and of how well the best passage sentence fits the question). Neither depends on
the model's answer (above the min_score the run used), so each value is scored from the
run alone, language by language: the abstention rate on unanswerable questions and the
share of answerable ones refused. The value printed last for a language is the one with
the best abstention among those refusing at most 10%.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.analysis import detect_language


def rates(queries: list[dict], min_score: float, min_fit: float) -> tuple[float, float, int, int]:
    unanswerable = [q for q in queries if q.get("answerable") is False]
    answerable = [q for q in queries if q.get("answerable", True) is not False]

    def abstains(q: dict) -> bool:
        g = q["grounding"]
        return g["top_score"] < min_score or not g["found"] or (g["fit"] + g["top_score"]) / 2 < min_fit

    abstention = sum(map(abstains, unanswerable)) / len(unanswerable) if unanswerable else 0.0
    refused = sum(map(abstains, answerable)) / len(answerable) if answerable else 0.0
    return abstention, refused, len(unanswerable), len(answerable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    queries = []
    for run in args.runs:
        record = json.loads(run.read_text())
        queries += [q for q in record["queries"] if "grounding" in q]
        used = record["settings"]
        print(
            f"{run.name}: {len(record['queries'])} questions, run with min_score "
            f"{used.get('retrieval.min_score')} min_fit {used.get('answer.min_fit')}, "
            f"processor: {record.get('processor', 'not recorded')}"
        )
    by_language: dict[str, list[dict]] = {}
    for q in queries:
        by_language.setdefault(detect_language(q["question"]), []).append(q)
    for lang, asked in sorted(by_language.items()):
        best = None
        print(f"\n{lang}: {'min_score':>9} {'min_fit':>7} {'abstention':>10} {'refused':>8}")
        for min_score in (0.2, 0.3, 0.4, 0.5):
            for step in range(30, 66):
                min_fit = step / 100
                abstention, refused, n_un, n_ans = rates(asked, min_score, min_fit)
                if step % 5 == 0:
                    print(f"{lang}: {min_score:9.2f} {min_fit:7.2f} {abstention:10.3f} {refused:8.3f}")
                if refused <= 0.1 and (best is None or abstention > best[2]):
                    best = (min_score, min_fit, abstention, refused)
        print(f"{lang}: {n_un} unanswerable, {n_ans} answerable questions")
        if best is not None:
            print(
                f"{lang}: best retrieval.min_score={best[0]} answer.min_fit.{lang}={best[1]} "
                f"abstention {best[2]:.3f}, answerable refused {best[3]:.3f}"
            )


if __name__ == "__main__":
    main()
