"""Ingest benchmark: wall time and peak RSS against the embedding floor.

The floor is the time the embedder alone takes to encode exactly the texts the ingest
embedded, with the same batches, in the same process. bench/embed.py compares the
embedders themselves.

    python bench/ingest.py [--files 1000] [--corpus DIR] [--kind onnx] [--rounds 3]

A first ingest, not timed, tells which texts the floor embeds. Then, with --rounds N, N
fresh ingests run between N + 1 floors (floor, ingest, floor, ingest, floor...), and each
ingest is compared with the mean of the floors just before and after it, so that a
machine shared with other jobs slows both alike; medians are kept.

Without --corpus, the first N abstracts of ../shared/eval/scifact are written as text
files to a temporary folder (evaluation data: read from there, never kept).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from ingest.worker import IngestReport, IngestWorker
from rag.config import load_settings
from rag.embedders import make_embedder
from rag.hardware import processor_line
from rag.store import make_catalog

SCIFACT = Path(__file__).parents[1].parent / "shared" / "eval" / "scifact" / "corpus.jsonl"


def scifact_files(target: Path, n: int) -> Path:
    with open(SCIFACT) as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            doc = json.loads(line)
            (target / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n")
    return target


def cpu_seconds() -> float:
    """User and system CPU time of this process and of its finished children (the reader)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="Documents to ingest.")
    parser.add_argument("--corpus", type=Path, help="A folder to ingest instead of SciFact.")
    parser.add_argument("--kind", help="embedder.kind (default: the configured one).")
    parser.add_argument("--rounds", type=int, default=1, help="Timed ingests, each between two floors.")
    args = parser.parse_args()
    print(processor_line())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "corpus").mkdir()
        corpus = args.corpus or scifact_files(Path(tmp) / "corpus", args.files)
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        settings = load_settings(
            overrides={"indexes_dir": str(Path(tmp) / "indexes"), "embedder.kind": args.kind}
        )
        embedder = make_embedder(settings.embedder)
        embedder.embed(["warm-up"])

        def ingest(r: int) -> tuple[IngestReport, float, float]:
            """A fresh ingest into its own index: its report, wall and CPU seconds."""
            settings.indexes_dir = Path(tmp) / f"indexes-{r}"
            fresh = IngestWorker(settings, embedder)
            t0, c0 = time.perf_counter(), cpu_seconds()
            done = fresh.run(corpus)
            return done, time.perf_counter() - t0, cpu_seconds() - c0

        def floor(texts: list[str]) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), cpu_seconds()
            embedder.embed(texts)
            return time.perf_counter() - t0, cpu_seconds() - c0

        # A first ingest, not timed, tells the texts (and warms the caches); then each
        # timed ingest comes between two floors, and is compared with their mean, so that
        # a machine getting slower or faster during the run moves both alike.
        first, _, _ = ingest(0)
        worker = IngestWorker(settings, embedder)  # into the first index: the re-ingest below
        index = make_catalog(settings).open("default", readonly=True)
        # What the ingest embedded: with chunking.context, each chunk under its title header.
        texts = [c.context if settings.chunking.context else c.text for _, c in index.all_chunks()]
        index.close()
        ingests, floors, ingest_cpu, floor_cpu = [], [], [], []
        f, fc = floor(texts)
        floors.append(f)
        floor_cpu.append(fc)
        for r in range(1, args.rounds + 1):
            _, i, ic = ingest(r)
            ingests.append(i)
            ingest_cpu.append(ic)
            f, fc = floor(texts)
            floors.append(f)
            floor_cpu.append(fc)
        t0 = time.perf_counter()
        again = worker.run(corpus)
        reingest_s = time.perf_counter() - t0
        ingest_s, floor_s = statistics.median(ingests), statistics.median(floors)
        ratios = [i / ((a + b) / 2) for i, a, b in zip(ingests, floors, floors[1:], strict=False)]
        pieces = sum(min(n, embedder.max_tokens) for n in embedder.count_tokens_batch(texts))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"files                 {files}  ({first.count('added')} added, {first.count('failed')} failed)")
    print(f"chunks                {len(texts)}")
    print(
        f"ingest wall time      {ingest_s:.2f} s  ({len(texts) / ingest_s:.1f} chunks/s, "
        f"{pieces / ingest_s:.0f} word pieces/s; rounds {', '.join(f'{x:.2f}' for x in ingests)})"
    )
    print(
        f"embedding floor       {floor_s:.2f} s  ({settings.embedder.kind}, batch size "
        f"{settings.embedder.batch_size}, {settings.embedder.batch_tokens} tokens; "
        f"{len(texts) / floor_s:.1f} chunks/s, {pieces / floor_s:.0f} word pieces/s; rounds "
        f"{', '.join(f'{x:.2f}' for x in floors)})"
    )
    print(
        f"ingest / floor        {statistics.median(ratios):.3f}  (median of the rounds' ratios to the "
        f"mean of the floors before and after: "
        f"{', '.join(f'{x:.3f}' for x in ratios)}; target <= 1.05)"
    )
    print(
        f"CPU ingest / floor    {statistics.median(ingest_cpu) / statistics.median(floor_cpu):.3f}  (CPU "
        f"seconds of this process and its children: ingest {', '.join(f'{x:.1f}' for x in ingest_cpu)}, "
        f"floor {', '.join(f'{x:.1f}' for x in floor_cpu)})"
    )
    print(
        f"re-ingest unchanged   {reingest_s:.3f} s  = {100 * reingest_s / ingest_s:.2f}% of "
        f"first run (target <= 5%); {again.count('unchanged')} unchanged"
    )
    print(f"peak RSS              {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
