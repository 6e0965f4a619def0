"""Big-file benchmark: wall time and peak RSS of ingesting one generated text file.

    python bench/bigfile.py [--mb 50]          # fake embedder: chunking, store and index only
    python bench/bigfile.py --real [--mb 2]    # the real embedder, on a smaller file

The file holds numbered sentences in paragraphs, next to a small note; both go into a
fresh index in a temporary folder. Peak RSS is the process's high-water mark (ru_maxrss);
growth is that minus the RSS just before the ingest started.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

import psutil

from rag.offline import ensure_offline

ensure_offline()

from ingest.loaders import loader_for
from ingest.worker import IngestWorker
from rag.config import load_settings
from rag.embedders import make_embedder
from rag.embedders.base import Embedder
from rag.hardware import processor_line
from tests.fakes import HashEmbedder, write_numbered_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="Embed with the real embedder.")
    parser.add_argument("--mb", type=float, help="File size in MB (default 50, or 2 with --real).")
    args = parser.parse_args()
    print(processor_line())
    size = int((args.mb or (2 if args.real else 50)) * 2**20)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        sentences = write_numbered_text(corpus / "long.txt", size)
        (corpus / "note.md").write_text("# Note\n\nA short note about tea.\n")
        settings = load_settings(overrides={"indexes_dir": str(Path(tmp) / "indexes")})
        embedder: Embedder = make_embedder(settings.embedder) if args.real else HashEmbedder()
        embedder.embed(["warm-up"])
        worker = IngestWorker(settings, embedder)

        before = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        report = worker.run(corpus)
        ingest_s = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

        loader = loader_for(corpus / "long.txt")
        assert loader is not None
        t0 = time.perf_counter()
        chunks = sum(1 for _ in worker.chunker.chunks(loader.pages(corpus / "long.txt"), "long.txt"))
        chunk_s = time.perf_counter() - t0

    mb = size / 2**20
    print(f"embedder              {embedder.name} ({embedder.dimension} dimensions)")
    print(f"file                  {mb:.1f} MB, {sentences} sentences, {chunks} chunks")
    print(f"files                 {report.count('added')} added, {report.count('failed')} failed")
    print(f"ingest wall time      {ingest_s:.2f} s  ({mb / ingest_s:.2f} MB/s)")
    print(f"chunking alone        {chunk_s:.2f} s")
    print(f"RSS before ingest     {before / 2**20:.0f} MB")
    print(f"peak RSS              {peak / 2**20:.0f} MB  (growth {(peak - before) / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
