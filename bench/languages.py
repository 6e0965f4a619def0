"""Retrieval quality across languages: both packaged embedders, dense, lexical and hybrid.

    python bench/languages.py [--workdir /tmp/rag-bench-languages] [--only faq-fr,scifact]
                              [--set retrieval.fusion=rrf]

One `rag eval` run per (set, embedder, mode), without generation; nDCG@10 of each in one
table, then Recall@10. The sets: SciFact (English, ../shared/eval/scifact, test split),
faq-fr and faq-en (the Debian FAQ in French and in English), the cross-language sets
faq-fr-en (French questions, English sections) and faq-en-fr (the other way), and
handbook-fr (French questions over the French Debian Administrator's Handbook, test
split). A set missing on disk is skipped with a line saying so.

"hybrid >= best half" says, per embedder, whether hybrid is at least as good as the
better of its dense and lexical halves on that set (to 0.005, a tie being a tie).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.config import DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, load_settings, parse_assignment
from rag.hardware import processor_line
from rag_eval.datasets import load_dataset
from rag_eval.runner import RunOptions, run

DATA = ROOT / "bench" / "data"
SETS = {
    "scifact": (ROOT.parent / "shared" / "eval" / "scifact", "test"),
    "faq-en": (DATA / "faq-en", "test"),
    "faq-fr": (DATA / "faq-fr", "test"),
    "faq-fr-en": (DATA / "faq-fr-en", "test"),
    "faq-en-fr": (DATA / "faq-en-fr", "test"),
    "handbook-fr": (DATA / "handbook-fr", "test"),
}
EMBEDDERS = {"MiniLM": DEFAULT_EMBEDDER, "e5": MULTILINGUAL_EMBEDDER}
MODES = ("dense", "lexical", "hybrid")
TIE = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rag-bench-languages"))
    parser.add_argument("--only", help="Comma-separated set names (default: all).")
    parser.add_argument("--set", action="append", default=[], help="A setting for every run (repeatable).")
    parser.add_argument("--json", type=Path, help="Also write the table as JSON here.")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(SETS)
    extra = dict(parse_assignment(a) for a in args.set)
    print(processor_line())
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    queries_of: dict[str, int] = {}
    for name in wanted:
        path, split = SETS[name]
        if not path.exists():
            print(f"{name}: not found at {path}, skipped")
            continue
        dataset = load_dataset(path, split)
        queries_of[name] = sum(1 for q in dataset.queries if q.relevant)
        table[name] = {}
        for label, model in EMBEDDERS.items():
            table[name][label] = {}
            for i, mode in enumerate(MODES):
                settings = load_settings(
                    overrides={
                        "indexes_dir": str(args.workdir / "indexes"),
                        "embedder.model": model,
                        "retrieval.mode": mode,
                        **extra,
                    }
                )
                record = run(settings, dataset, args.workdir, RunOptions(generate=False, ingest=i == 0))
                metrics: dict[str, Any] = record["metrics"]
                table[name][label][mode] = {
                    k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))
                }
                print(f"{name:<12} {label:<7} {mode:<8} nDCG@10 {metrics.get('ndcg@10', 0):.3f}", flush=True)
    print()
    for metric in ("ndcg@10", "recall@10"):
        print(
            f"| {metric} | queries | "
            + " | ".join(f"{e} {m}" for e in EMBEDDERS for m in MODES)
            + " | hybrid >= best half |"
        )
        print("|---" * (3 + len(EMBEDDERS) * len(MODES)) + "|")
        for name, by_embedder in table.items():
            cells, holds = [], []
            for label in EMBEDDERS:
                values = {m: by_embedder[label][m].get(metric, 0.0) for m in MODES}
                cells += [f"{values[m]:.3f}" for m in MODES]
                best_half = max(values["dense"], values["lexical"])
                holds.append(f"{label} {'yes' if values['hybrid'] >= best_half - TIE else 'NO'}")
            queries = queries_of[name]
            print(f"| {name} | {queries} | " + " | ".join(cells) + f" | {', '.join(holds)} |")
        print()
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
