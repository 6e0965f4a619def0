"""Chunking cost: time and embedder-tokenizer calls for a document and for 4x that document.

    .venv/bin/python bench/chunking.py [--size 200] [--overlap 30]

Two documents: docs/architecture.md repeated (Markdown with headings), and French
paragraphs with few sentence ends (the case where paragraphs are cut between words). Each
is chunked as the ingest worker chunks it, with the real embedder's tokenizer as the
window check. Linear cost means the 4x column is about 4 times the 1x one. If LlamaIndex is
installed, its SentenceSplitter (tiktoken only, no window check) runs on the same text.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/, whose ingest.py would shadow ingest/

from ingest.chunking import Chunker
from ingest.loaders import Page
from rag.config import load_settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.hardware import processor_line

ROOT = Path(__file__).resolve().parents[1]
FRENCH = (
    "L'éléphant d'Afrique, qui vit principalement dans les savanes et les forêts tropicales, "
    "est le plus grand animal terrestre aujourd'hui ; ses défenses d'ivoire, très recherchées "
    "par les braconniers, ont entraîné une diminution spectaculaire de sa population au cours "
    "du vingtième siècle, malgré les interdictions internationales successives. "
)


def documents(copies: int) -> dict[str, str]:
    """The two documents, `copies` times as long; every paragraph is distinct, so no count
    can be reused from an earlier copy."""
    rng = random.Random(1)
    words = FRENCH.split()
    paragraphs = []
    for _ in range(100 * copies):
        rng.shuffle(words)
        paragraphs.append(" ".join(words * rng.randint(1, 6)))
    guide = (ROOT / "docs" / "architecture.md").read_text().split("\n\n")
    marked = [
        f"{p} ({n})" if not p.startswith(("#", "|", "```")) else p for n in range(8 * copies) for p in guide
    ]
    return {"architecture.md x8": "\n\n".join(marked), "French paragraphs": "\n\n".join(paragraphs)}


def run(embedder: SentenceTransformerEmbedder, text: str, size: int, overlap: int) -> tuple[float, int, int]:
    calls = 0
    count, batch = embedder.count_tokens, embedder.count_tokens_batch

    def limit(t: str) -> int:
        nonlocal calls
        calls += 1
        return count(t)

    def limit_many(texts: list[str]) -> list[int]:
        nonlocal calls
        calls += 1
        return batch(texts)

    chunker = Chunker(size, overlap, limit=limit, max_limit=embedder.max_tokens, limit_many=limit_many)
    best = float("inf")
    for _ in range(3):
        calls = 0
        start = time.perf_counter()
        chunks = list(chunker.chunks([Page(text, markdown=True)], "doc.md"))
        best = min(best, time.perf_counter() - start)
    return best, calls, len(chunks)


def llama_index(text: str, size: int, overlap: int) -> str:
    try:
        from llama_index.core.node_parser import SentenceSplitter
    except ImportError:
        return "not installed"
    splitter = SentenceSplitter(chunk_size=size, chunk_overlap=overlap)
    start = time.perf_counter()
    n = len(splitter.split_text(text))
    return f"{time.perf_counter() - start:.3f} s, {n} chunks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200, help="Chunk size in tokens.")
    parser.add_argument("--overlap", type=int, default=30, help="Chunk overlap in tokens.")
    args = parser.parse_args()
    print(processor_line())
    embedder = SentenceTransformerEmbedder(load_settings().embedder)
    print(
        f"{'document':<20} {'chars':>8} | {'1x s':>6} {'calls':>6} {'chunks':>6} | "
        f"{'4x s':>6} {'calls':>6} {'chunks':>6} | {'time 4x/1x':>10} | LlamaIndex 1x"
    )
    longer = documents(4)
    for name, text in documents(1).items():
        one = run(embedder, text, args.size, args.overlap)
        four = run(embedder, longer[name], args.size, args.overlap)
        print(
            f"{name:<20} {len(text):>8} | {one[0]:>6.3f} {one[1]:>6} {one[2]:>6} | "
            f"{four[0]:>6.3f} {four[1]:>6} {four[2]:>6} | {four[0] / one[0]:>10.2f} | "
            f"{llama_index(text, args.size, args.overlap)}"
        )


if __name__ == "__main__":
    main()
