"""Ingest wall time against LlamaIndex at its defaults, on the same folder and model.

    python bench/llamaindex.py FOLDER [--rounds 3] [--kind openvino]

Each side runs in a fresh process, imports excluded, model loading included, until its
index is on disk:

- ours: `IngestWorker` with the default settings (what `rag ingest FOLDER` does), or
  another `embedder.kind` (--kind);
- LlamaIndex: `SimpleDirectoryReader(FOLDER, recursive=True)`, `VectorStoreIndex.
  from_documents` with its default `SentenceSplitter` (1024 tokens, overlap 200) and
  `HuggingFaceEmbedding` of the same local all-MiniLM-L6-v2 (sentence-transformers,
  torch), then `storage_context.persist`.

Besides the times, how much of its text each embedder reads: word pieces of every chunk
as the embedding model tokenizes what it is given, against the 256 it keeps.

llama-index-core and llama-index-embeddings-huggingface are not dependencies of this
project: install them (or give their folder with --llama-path) to run the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ours(folder: Path, work: Path, kind: str | None) -> dict[str, float]:
    sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/
    from rag.offline import ensure_offline

    ensure_offline()
    from ingest.worker import IngestWorker
    from rag.config import load_settings
    from rag.store import make_catalog

    settings = load_settings(overrides={"indexes_dir": str(work / "indexes"), "embedder.kind": kind})
    t0 = time.perf_counter()
    worker = IngestWorker(settings)
    report = worker.run(folder)
    seconds = time.perf_counter() - t0
    index = make_catalog(settings).open("default", readonly=True)
    texts = [c.context if settings.chunking.context else c.text for _, c in index.all_chunks()]
    index.close()
    counts = worker.embedder.count_tokens_batch(texts)
    limit = worker.embedder.max_tokens
    return {
        "seconds": seconds,
        "files": report.count("added"),
        "chunks": len(texts),
        "pieces": sum(counts),
        "read": sum(min(n, limit) for n in counts),
    }


def theirs(folder: Path, work: Path, kind: str | None) -> dict[str, float]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    sys.path.insert(0, str(ROOT))
    from rag.embedders.base import resolve_embedder

    model = str(resolve_embedder("all-MiniLM-L6-v2")[1])
    t0 = time.perf_counter()
    Settings.embed_model = HuggingFaceEmbedding(model_name=model)
    documents = SimpleDirectoryReader(str(folder), recursive=True).load_data()
    index = VectorStoreIndex.from_documents(documents)
    index.storage_context.persist(persist_dir=str(work / "llamaindex"))
    seconds = time.perf_counter() - t0
    nodes = list(index.docstore.docs.values())
    embedder = Settings.embed_model._model  # the sentence-transformers model
    tokenizer, limit = embedder.tokenizer, embedder.max_seq_length
    counts = [len(tokenizer(n.get_content(metadata_mode=MetadataMode.EMBED))["input_ids"]) for n in nodes]
    files = len({d.metadata.get("file_path") for d in documents})
    return {
        "seconds": seconds,
        "files": files,
        "chunks": len(nodes),
        "pieces": sum(counts),
        "read": sum(min(n, limit) for n in counts),
    }


def run_side(side: str, folder: Path, llama_path: str | None, kind: str | None) -> dict[str, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if llama_path and side == "theirs":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (llama_path, env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run(
            [sys.executable, __file__, "--side", side, str(folder), "--work", work]
            + (["--kind", kind] if kind else []),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode:
        raise SystemExit(f"{side} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each side, interleaved.")
    parser.add_argument("--llama-path", help="A folder holding llama-index (pip install --target).")
    parser.add_argument("--kind", help="Our embedder.kind (default: the configured one).")
    parser.add_argument("--side", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.folder.resolve()
    if args.side:
        print(json.dumps((ours if args.side == "ours" else theirs)(folder, args.work, args.kind)))
        return
    from rag.hardware import processor_line  # here: each side imports in its own process

    print(processor_line())
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "theirs": []}
    for _ in range(args.rounds):
        for side in runs:
            runs[side].append(run_side(side, folder, args.llama_path, args.kind))
    mine = f"ours ({args.kind or 'default settings'})"
    for side, label in (("ours", mine), ("theirs", "LlamaIndex defaults")):
        r = runs[side][-1]
        times = [x["seconds"] for x in runs[side]]
        print(
            f"{label:26} {statistics.median(times):6.2f} s (rounds {', '.join(f'{t:.2f}' for t in times)}); "
            f"{r['files']:.0f} files, {r['chunks']:.0f} chunks, {r['pieces']:.0f} word pieces, "
            f"{100 * r['read'] / r['pieces']:.1f}% of them embedded, "
            f"{r['read'] / statistics.median(times):.0f} embedded word pieces/s"
        )
    ratio = statistics.median(x["seconds"] for x in runs["theirs"]) / statistics.median(
        x["seconds"] for x in runs["ours"]
    )
    print(f"LlamaIndex / ours wall time  {ratio:.2f}  (above 1: we are faster)")


if __name__ == "__main__":
    main()
