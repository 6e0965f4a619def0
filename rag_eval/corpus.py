"""A BEIR corpus as a folder of files, so that it goes through the normal ingestion."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from urllib.parse import unquote

from rag.config import Settings
from rag_eval.datasets import Dataset, document_file_name

logger = logging.getLogger(__name__)


def materialize(dataset: Dataset, workdir: Path) -> Path:
    """The dataset's documents as files under `workdir/corpora/NAME`; files whose content
    is unchanged are left alone, so that a second ingest finds nothing to do."""
    if dataset.corpus_dir is not None:
        return dataset.corpus_dir
    folder = workdir / "corpora" / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    written = 0
    for doc_id, text in dataset.documents():
        path = folder / (document_file_name(doc_id) + ".md")
        wanted.add(path.name)
        data = text.encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            written += 1
    for stale in folder.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()
    logger.info("corpus %s: %d documents, %d written", folder, len(wanted), written)
    return folder


def document_id(path: str, dataset: Dataset, corpus: Path) -> str:
    """The dataset's id of the document an indexed file path stands for."""
    if dataset.format == "beir":
        return unquote(Path(path).name.removesuffix(".md"))
    # Indexed documents are named relative to the folder above the ingested one:
    # "<corpus folder>/<path inside it>".
    head, sep, rest = path.partition("/")
    if sep and head == corpus.resolve().name:
        return rest
    return path


def index_name(dataset: Dataset, corpus: Path, settings: Settings) -> str:
    """One index per dataset, corpus folder, embedder and chunking: reused while they hold."""
    chunking = settings.chunking
    key = "|".join(
        [
            str(corpus.resolve()),
            settings.embedder.kind,
            settings.embedder.model,
            str(chunking.size),
            str(chunking.overlap),
            chunking.encoding,
            "context" if chunking.context else "plain",
        ]
    )
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.name).strip("-.") or "dataset"
    return f"eval-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
