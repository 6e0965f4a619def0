"""Score grounding settings on a saved `rag eval` run without running the model again.

    python bench/regrounding.py RUN.json DATASET [--set answer.support_lexical=0.8 ...]

Each question of the run is asked again over the run's index, with the settings the run
used plus the `--set` overrides; the model's answer is the one the run recorded (its
draft), replayed token for token, so retrieval, attribution, abstention and extraction
are what change. It prints the grounding metrics as `rag eval` computes them. Retrieval
settings may change too, but a draft was written for the passages the run retrieved.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.config import load_settings, parse_assignment
from rag.embedders import make_embedder
from rag.generators import make_generator
from rag.generators.base import Delta, GenerationParams, Generator, Message
from rag.hardware import processor_line
from rag.pipeline import Pipeline
from rag_eval.datasets import load_dataset
from rag_eval.metrics import answer_scores, mean
from rag_eval.runner import support_metrics

SETTINGS = ("retrieval.", "answer.", "chunking.", "embedder.", "indexes_dir", "llm.n_ctx", "llm.max_tokens")


class Replay(Generator):
    """Says again what the model said to each question; counts tokens with the model."""

    kind = "replay"

    def __init__(self, model: Generator, drafts: dict[str, str]) -> None:
        self.model, self.drafts = model, drafts
        self.name, self.n_ctx, self.executor = model.name, model.n_ctx, model.executor

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.model.count_tokens(messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        asked = messages[-1]["content"]
        question = max((q for q in self.drafts if q in asked), key=len, default=None)
        yield Delta(self.drafts.get(question, "") if question else "", "stop", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    print(processor_line())
    record = json.loads(args.run.read_text())
    used = {k: v for k, v in record["settings"].items() if k.startswith(SETTINGS)}
    used.pop("answer.extract_min_score", None)  # older forms of answer.min_fit
    if not isinstance(used.get("answer.min_fit", {}), dict):
        used.pop("answer.min_fit")
    used.update(dict(parse_assignment(s) for s in args.sets))
    settings = load_settings(overrides=used)
    queries = {q["question"]: q for q in record["queries"]}
    dataset = load_dataset(args.dataset)
    embedder = make_embedder(settings.embedder, threads=1)
    replay = Replay(make_generator(settings.llm), {t: q.get("draft") or "" for t, q in queries.items()})
    pipeline = Pipeline(settings, embedder, replay)
    rows: list[dict[str, Any]] = []
    for query in dataset.queries:
        if query.text not in queries:
            continue
        answer = pipeline.ask(query.text, index=record["index"])
        row: dict[str, Any] = {}
        if not query.answerable:
            row["abstention"] = float(answer.abstained)
        else:
            row["wrongly_refused"] = float(answer.abstained)
            if query.answers:
                row["contains"] = answer_scores(answer.text, query.answers)["contains"]
                best, _ = pipeline.attributor.extract(query.text, answer.sources, limit=1)
                row["extractive_contains"] = answer_scores(best.text, query.answers)["contains"]
            row.update(support_metrics(answer))
        rows.append(row)
    names = (
        "contains",
        "extractive_contains",
        "supported_rate",
        "citation_precision",
        "abstention",
        "wrongly_refused",
    )
    print(f"{args.run.name}: {len(rows)} questions, overrides {args.sets or 'none'}")
    for name in names:
        value = mean(r.get(name) for r in rows)
        print(f"{name:>20} {'-' if value is None else f'{value:.3f}'}")


if __name__ == "__main__":
    main()
