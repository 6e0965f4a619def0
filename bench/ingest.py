"""Ingest benchmark: wall time and peak RSS against the embedding floor.

The floor is the time the embedder alone takes to encode exactly the texts the ingest
embedded, with the same batches, in the same process. bench/embed.py compares the
embedders themselves.

    python bench/ingest.py [--files 1000] [--corpus DIR] [--kind onnx]

Without --corpus, the first N abstracts of ../shared/eval/scifact are written as text
files to a temporary folder (evaluation data: read from there, never kept).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline  # noqa: E402

ensure_offline()
from ingest.worker import IngestWorker  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.embedders import make_embedder  # noqa: E402
from rag.store import make_catalog  # noqa: E402

SCIFACT = Path(__file__).parents[1].parent / "shared" / "eval" / "scifact" / "corpus.jsonl"


def scifact_files(target: Path, n: int) -> Path:
    with open(SCIFACT) as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            doc = json.loads(line)
            (target / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="Documents to ingest.")
    parser.add_argument("--corpus", type=Path, help="A folder to ingest instead of SciFact.")
    parser.add_argument("--kind", help="embedder.kind (default: the configured one).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "corpus").mkdir()
        corpus = args.corpus or scifact_files(Path(tmp) / "corpus", args.files)
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        settings = load_settings(
            overrides={"indexes_dir": str(Path(tmp) / "indexes"), "embedder.kind": args.kind}
        )
        embedder = make_embedder(settings.embedder)
        embedder.embed(["warm-up"])
        worker = IngestWorker(settings, embedder)

        t0 = time.perf_counter()
        first = worker.run(corpus)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = worker.run(corpus)
        reingest_s = time.perf_counter() - t0

        index = make_catalog(settings).open("default", readonly=True)
        # What the ingest embedded: with chunking.context, each chunk under its title header.
        texts = [c.context if settings.chunking.context else c.text for _, c in index.all_chunks()]
        index.close()
        t0 = time.perf_counter()
        embedder.embed(texts)
        floor_s = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"files                 {files}  ({first.count('added')} added, {first.count('failed')} failed)")
    print(f"chunks                {len(texts)}")
    print(f"ingest wall time      {ingest_s:.2f} s")
    print(
        f"embedding floor       {floor_s:.2f} s  ({settings.embedder.kind}, batch size "
        f"{settings.embedder.batch_size}, {settings.embedder.batch_tokens} tokens)"
    )
    print(f"ingest / floor        {ingest_s / floor_s:.3f}  (target <= 1.25)")
    print(
        f"re-ingest unchanged   {reingest_s:.3f} s  = {100 * reingest_s / ingest_s:.2f}% of "
        f"first run (target <= 5%); {again.count('unchanged')} unchanged"
    )
    print(f"peak RSS              {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
