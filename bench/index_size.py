"""Index size on disk: a local index against LlamaIndex's default index of the same chunks.

    python bench/index_size.py INDEX_FOLDER

The LlamaIndex index is its default `VectorStoreIndex` (SimpleVectorStore, docstore,
index store) of the same chunk texts, each given the vector our store holds for it (no
embedding is computed again), persisted with `storage_context.persist`. llama-index-core
is not a dependency of this project: install it to run this benchmark (`pip install
llama-index-core`); without it only our own size is printed.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.hardware import processor_line


def folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="A local index folder (indexes/<name>).")
    args = parser.parse_args()
    print(processor_line())
    db = sqlite3.connect(args.index / "store.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # our size without a pending write-ahead log
    rows = db.execute(
        "SELECT c.id, c.text, f.path, c.ordinal, c.vector FROM chunks c JOIN files f ON f.id = c.file_id "
        "WHERE c.removed IS NULL ORDER BY c.id"
    ).fetchall()
    db.close()
    ours = folder_bytes(args.index)
    total = sum(ours.values())
    print(f"chunks                {len(rows)}")
    print(
        f"ours                  {total / 2**20:.2f} MB ({total / len(rows):.0f} B/chunk): "
        + ", ".join(f"{k} {v / 2**20:.2f} MB" for k, v in ours.items() if v)
    )
    try:
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.embeddings import MockEmbedding
        from llama_index.core.schema import TextNode
    except ImportError:
        print("llama-index        not installed (pip install llama-index-core): no comparison")
        return
    dimension = len(rows[0][4]) // 4
    nodes = [
        TextNode(
            text=text,
            id_=str(chunk_id),
            metadata={"path": path, "ordinal": ordinal},
            embedding=np.frombuffer(blob, dtype=np.float32).tolist(),
        )
        for chunk_id, text, path, ordinal, blob in rows
    ]
    index = VectorStoreIndex(
        nodes, storage_context=StorageContext.from_defaults(), embed_model=MockEmbedding(embed_dim=dimension)
    )
    with tempfile.TemporaryDirectory() as tmp:
        index.storage_context.persist(persist_dir=tmp)
        theirs = folder_bytes(Path(tmp))
    other = sum(theirs.values())
    print(
        f"llama-index           {other / 2**20:.2f} MB ({other / len(rows):.0f} B/chunk): "
        + ", ".join(f"{k} {v / 2**20:.2f} MB" for k, v in theirs.items() if v)
    )
    print(f"ours / llama-index    {total / other:.2f}")


if __name__ == "__main__":
    main()
