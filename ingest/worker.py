"""The ingestion worker: a folder in, an up-to-date index out.

Incremental: a file whose size and mtime are unchanged is not read; one whose content
hash is unchanged is not re-embedded; a changed file's chunks are replaced in one
transaction; files gone from the folder are removed. One bad file is reported and
skipped, never the end of the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from ingest.chunking import Chunker
from ingest.loaders import loader_for
from rag.config import Settings
from rag.errors import ConfigError, IndexLockedError, IndexMismatchError, LoaderError, RagError
from rag.index import FileRecord, Index, IndexCatalog, Manifest
from rag.types import Chunk

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rag.embedders import Embedder

logger = logging.getLogger(__name__)

Status = Literal["added", "updated", "unchanged", "removed", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("added", "updated", "unchanged", "removed", "skipped", "failed")
LARGE_FILE_CHUNKS = 1024  # a document with more chunks is embedded and written as it streams


@dataclass
class FileOutcome:
    path: str
    status: Status
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    """What a run did, file by file."""

    index: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def chunks_written(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def summary(self) -> dict[str, object]:
        return {
            "index": self.index,
            **{s: self.count(s) for s in STATUSES},
            "chunks": self.chunks_written,
            "seconds": round(self.seconds, 3),
            "failures": [{"path": o.path, "reason": o.reason} for o in self.outcomes
                         if o.status == "failed"],
        }  # fmt: skip


class IngestObserver(Protocol):
    """Told of the run's progress (a progress bar, a job record)."""

    def started(self, files: int) -> None: ...

    def file_done(self, outcome: FileOutcome) -> None: ...


@dataclass
class _Candidate:
    path: Path
    key: str
    size: int
    mtime: float


@dataclass
class _Pending:
    record: FileRecord
    chunks: list[Chunk]
    status: Status


class IngestWorker:
    """Ingests folders and files into named indexes."""

    large_file_chunks = LARGE_FILE_CHUNKS

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalog = IndexCatalog(settings.indexes_dir)
        self.chunker = Chunker(
            settings.chunking.size,
            settings.chunking.overlap,
            encoding=settings.chunking.encoding,
            limit=embedder.count_tokens,
            max_limit=embedder.max_tokens,
        )

    def run(
        self, root: Path, index_name: str | None = None, observer: IngestObserver | None = None
    ) -> IngestReport:
        name = index_name or self.settings.index
        report = IngestReport(name)
        start = time.perf_counter()
        if not root.exists():
            raise RagError(f"nothing to ingest: {root} does not exist")
        root = root.resolve()
        with self._locked_index(name) as index:
            candidates = self._discover(root, report)
            if observer:
                observer.started(len(candidates) + len(report.outcomes))
                for outcome in report.outcomes:
                    observer.file_done(outcome)
            try:
                self._ingest(index, candidates, report, observer)
                self._remove_missing(index, root, candidates, report, observer)
            finally:
                index.commit()
        report.seconds = time.perf_counter() - start
        logger.info("ingest done index=%s %s", name, report.summary())
        return report

    # -- discovery -----------------------------------------------------------------

    def _discover(self, root: Path, report: IngestReport) -> list[_Candidate]:
        found: list[_Candidate] = []
        skip = self.settings.indexes_dir.resolve()
        for path in _walk(root, report):
            if path.is_relative_to(skip):  # never ingest our own indexes
                continue
            if loader_for(path) is None:
                report.outcomes.append(FileOutcome(str(path), "skipped", reason="unsupported type"))
                continue
            try:
                st = path.stat()
            except OSError as exc:
                report.outcomes.append(FileOutcome(str(path), "failed", reason=_os_reason(exc)))
                continue
            found.append(_Candidate(path, str(path), st.st_size, st.st_mtime))
        return found

    # -- ingestion -----------------------------------------------------------------

    def _ingest(
        self,
        index: Index,
        candidates: list[_Candidate],
        report: IngestReport,
        observer: IngestObserver | None,
    ) -> None:
        known = index.files()
        pending: list[_Pending] = []

        def done(outcome: FileOutcome) -> None:
            report.outcomes.append(outcome)
            if observer:
                observer.file_done(outcome)

        def flush() -> None:
            for outcome in self._write_pending(index, pending):
                done(outcome)
            pending.clear()

        for cand in candidates:
            old = known.get(cand.key)
            if old and old.size == cand.size and old.mtime == cand.mtime:
                done(FileOutcome(cand.key, "unchanged"))
                continue
            try:
                digest = _hash(cand.path)
            except OSError as exc:
                done(FileOutcome(cand.key, "failed", reason=_os_reason(exc)))
                continue
            record = FileRecord(cand.key, digest, cand.size, cand.mtime, time.time())
            if old and old.hash == digest:
                index.touch_file(record)
                done(FileOutcome(cand.key, "unchanged"))
                continue
            status: Status = "updated" if old else "added"
            try:
                chunks = self._chunks(cand.path, cand.key)
                head = _take(chunks, self.large_file_chunks)
                if len(head) < self.large_file_chunks:
                    if not head:
                        raise LoaderError("no text found")
                    pending.append(_Pending(record, head, status))
                    if sum(len(p.chunks) for p in pending) >= self.settings.embedder.batch_size * 4:
                        flush()
                    continue
                flush()
                n = index.replace_file(record, self._embed_stream(head, chunks))
                done(FileOutcome(cand.key, status, n))
            except LoaderError as exc:
                done(FileOutcome(cand.key, "failed", reason=str(exc)))
            except OSError as exc:
                done(FileOutcome(cand.key, "failed", reason=_os_reason(exc)))
            except Exception as exc:  # a third-party parser bug must not end the run
                logger.exception("unexpected error path=%s", cand.key)
                done(FileOutcome(cand.key, "failed", reason=f"{type(exc).__name__}: {exc}"))
        flush()

    def _chunks(self, path: Path, key: str) -> Iterator[Chunk]:
        loader = loader_for(path)
        assert loader is not None
        return self.chunker.chunks(loader.pages(path), key)

    def _write_pending(self, index: Index, pending: list[_Pending]) -> list[FileOutcome]:
        if not pending:
            return []
        texts = [c.text for p in pending for c in p.chunks]
        vectors = self.embedder.embed(texts)
        outcomes = []
        offset = 0
        for item in pending:
            n = len(item.chunks)
            index.replace_file(item.record, [(item.chunks, vectors[offset : offset + n])])
            offset += n
            outcomes.append(FileOutcome(item.record.path, item.status, n))
        return outcomes

    def _embed_stream(
        self, head: list[Chunk], rest: Iterator[Chunk]
    ) -> Iterator[tuple[Sequence[Chunk], NDArray[np.float32]]]:
        batch = head
        while batch:
            yield batch, self.embedder.embed([c.text for c in batch])
            batch = _take(rest, self.large_file_chunks)

    def _remove_missing(
        self,
        index: Index,
        root: Path,
        candidates: list[_Candidate],
        report: IngestReport,
        observer: IngestObserver | None,
    ) -> None:
        seen = {c.key for c in candidates} | {o.path for o in report.outcomes}
        prefix = str(root) if root.is_file() else str(root).rstrip("/") + "/"
        for path in index.files():
            if (path == str(root) or path.startswith(prefix)) and path not in seen:
                outcome = FileOutcome(path, "removed", index.remove_file(path))
                report.outcomes.append(outcome)
                if observer:
                    observer.file_done(outcome)

    # -- the index -----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked_index(self, name: str) -> Iterator[Index]:
        folder = self.catalog.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IndexLockedError(f"index {name!r} is being ingested by another process") from exc
            index = self._open_or_create(name)
            try:
                yield index
            finally:
                index.close()

    def _open_or_create(self, name: str) -> Index:
        manifest = self.manifest()
        if not self.catalog.exists(name):
            return Index.create(self.catalog.folder(name), manifest)
        index = self.catalog.open(name, embedder=manifest.embedder, dimension=manifest.dimension)
        built = (index.manifest.chunk_size, index.manifest.chunk_overlap, index.manifest.encoding)
        if built != (manifest.chunk_size, manifest.chunk_overlap, manifest.encoding):
            index.close()
            raise IndexMismatchError(
                f"index {name!r} was chunked with size={built[0]} overlap={built[1]} "
                f"encoding={built[2]}; ingest into a new index to use other chunking settings"
            )
        return index

    def manifest(self) -> Manifest:
        chunking = self.settings.chunking
        return Manifest(
            embedder=self.embedder.name,
            dimension=self.embedder.dimension,
            chunk_size=chunking.size,
            chunk_overlap=chunking.overlap,
            encoding=chunking.encoding,
            created_at=time.time(),
        )


def _walk(root: Path, report: IngestReport) -> Iterator[Path]:
    """Files under root, sorted, hidden ones skipped, symlinks followed without looping."""
    if root.is_file():
        yield root
        return
    visited: set[tuple[int, int]] = set()

    def onerror(exc: OSError) -> None:
        report.outcomes.append(FileOutcome(str(exc.filename), "failed", reason=_os_reason(exc)))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        try:
            st = os.stat(dirpath)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.is_symlink() and not path.exists():
                reason = "broken symlink or symlink loop"
                with contextlib.suppress(OSError, RuntimeError):
                    path.resolve(strict=True)
                    reason = "broken symlink"
                report.outcomes.append(FileOutcome(str(path), "failed", reason=reason))
                continue
            yield path


def _take(it: Iterator[Chunk], n: int) -> list[Chunk]:
    out: list[Chunk] = []
    for item in it:
        out.append(item)
        if len(out) >= n:
            break
    return out


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file disappeared during ingest"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


__all__ = ["ConfigError", "FileOutcome", "IngestObserver", "IngestReport", "IngestWorker"]
