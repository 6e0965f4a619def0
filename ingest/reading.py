"""The reader thread of an ingest: each file compared with the index, hashed, read and
chunked, and what is to be done with it handed over to the embedding thread as messages,
in file order (through `ingest.handover.ReadAhead`).

Documents are read in a child process with a time limit per file (`ingest.sandbox`). A
file's messages: a `FileOutcome` when it is unchanged or failed early; a `Touch` when only
its record changes; a `Remove` per attachment gone from its new version; then its
`Pending`, which carries its chunks (prepared for the embedder here, beside the embedding
of the files before it) or why it failed. A large document's chunks are not held: they
follow a `Stream` in batches, then a `StreamEnd`, before the file's `Pending`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ingest.chunking import Chunker
from ingest.discovery import os_reason
from ingest.handover import take
from ingest.loaders import Page, documents
from ingest.planning import Candidate, FileEntry, file_hash, same_stat, stale_parts
from ingest.report import FileOutcome, Status
from ingest.sandbox import LoaderSandbox
from rag.analysis import detect_language
from rag.errors import ConfigError, LoaderError
from rag.store import FileRecord
from rag.types import Chunk
from rag.util import redact_paths

if TYPE_CHECKING:
    from rag.embedders.base import Embedder

logger = logging.getLogger(__name__)

Pieced = tuple[Chunk, list[int] | None]  # a chunk and its embedder token ids, when known


@dataclass
class Pending(FileEntry):
    """A file read and chunked, waiting to be embedded with others: its own document and
    the documents inside it (an e-mail's attachments), each its own record."""

    parts: list[tuple[FileRecord, list[Chunk]]]
    status: Status
    written: int = 0  # chunks of its large documents, already written
    failed: str = ""  # why the file could not be ingested; nothing of it is reported else
    prepared: list[Any] = field(default_factory=list)  # `Embedder.prepare` of `chunks`

    @property
    def chunks(self) -> list[Chunk]:
        return [c for _, chunks in self.parts for c in chunks]


@dataclass
class Stream:
    """A large document: its chunks follow in batches (lists), then a `StreamEnd`."""

    item: Pending
    part: FileRecord


@dataclass
class StreamEnd:
    error: str | None = None  # the document failed while being read


@dataclass
class Touch:
    record: FileRecord  # unchanged content: only the record is updated


@dataclass
class Remove:
    key: str


Message = FileOutcome | Touch | Remove | Pending | Stream | list[Chunk] | StreamEnd


class Models(Protocol):
    """What the reader takes from its worker: the chunker and the embedder, each loaded
    when first used (a run over an unchanged tree loads no model), and the number of
    chunks from which a document is streamed."""

    large_file_chunks: int

    @property
    def chunker(self) -> Chunker: ...

    @property
    def embedder(self) -> Embedder: ...


class FileReader:
    """Reads files for an ingest run; `context`: whether chunks are embedded with their
    context header."""

    def __init__(self, models: Models, context: bool) -> None:
        self.models = models
        self.context = context

    def read(
        self, known: dict[str, FileRecord], candidates: list[Candidate], sandbox: LoaderSandbox
    ) -> Iterator[Message]:
        """On the reader thread: what to do with each file, in order (see the module)."""
        for cand in candidates:
            old = known.get(cand.key)
            if old and same_stat(old, cand):
                try:  # not read again, but still readable: else it is a failure to tell
                    os.close(os.open(cand.path, os.O_RDONLY | os.O_NONBLOCK))
                except OSError as exc:
                    yield cand.outcome("failed", reason=os_reason(exc))
                    continue
                if old.name != cand.name:
                    yield Touch(
                        FileRecord(cand.key, old.hash, old.size, old.mtime, old.ingested_at, cand.name)
                    )
                yield cand.outcome("unchanged")
                continue
            try:
                digest = file_hash(cand.path)
            except OSError as exc:
                yield cand.outcome("failed", reason=os_reason(exc))
                continue
            record = FileRecord(cand.key, digest, cand.size, cand.mtime, time.time(), cand.name)
            if old and old.hash == digest:
                yield Touch(record)
                yield cand.outcome("unchanged")
                continue
            yield from self._read_file(known, cand, record, "updated" if old else "added", sandbox)

    def _read_file(
        self,
        known: dict[str, FileRecord],
        cand: Candidate,
        record: FileRecord,
        status: Status,
        sandbox: LoaderSandbox,
    ) -> Iterator[Message]:
        """A new or changed file's documents, chunked: its messages, `Pending` last."""
        item = Pending(cand.key, cand.name, [], status)
        large = self.models.large_file_chunks
        streamed = 0
        try:
            for sub, pages in documents(sandbox.pages(cand.path)):
                part = (
                    record
                    if not sub
                    else FileRecord(
                        f"{cand.key}/{sub}",
                        record.hash,
                        cand.size,
                        cand.mtime,
                        record.ingested_at,
                        f"{cand.name}/{sub}",
                    )
                )
                tap = _TitleTap(pages)
                pieced = self.models.chunker.pieced(tap, part.display)
                head_pieced = take(pieced, large)
                head = [c for c, _ in head_pieced]
                chunks = (c for c, _ in pieced)
                part = _described(part, head, tap.title)
                if len(head) < large:
                    if head:
                        item.parts.append((part, head))
                        # Tokenized here, beside the embedding of the files before it.
                        item.prepared += self.prepare(head_pieced)
                    continue
                yield Stream(item, part)
                error: str | None = None
                try:
                    batch = head
                    while batch:
                        yield batch
                        streamed += len(batch)
                        batch = take(chunks, large)
                except Exception as exc:
                    error = reason(exc, cand.name)
                    raise
                finally:
                    yield StreamEnd(error)
            if not item.parts and not streamed:
                raise LoaderError("no text found")
            for stale in stale_parts(known, cand.key, {r.path for r, _ in item.parts} | {cand.key}):
                yield Remove(stale)  # an attachment gone from the new version
        except ConfigError:  # a setting that no file can pass (chunk size): end the run
            raise
        except Exception as exc:
            item.failed = reason(exc, cand.name)
        yield item

    def prepare(self, pieced: list[Pieced]) -> list[Any]:
        """`Embedder.prepare` of the chunks as embedded: from the ids chunking made of their
        text (with their context header's), else from their text."""
        embedder = self.models.embedder
        texts = [embedded_text(c, self.context) for c, _ in pieced]
        prepared: list[Any] = [None] * len(pieced)
        known = [i for i, (_, ids) in enumerate(pieced) if ids is not None]
        if known:
            # What precedes a text: its context header (the same for many chunks), or "".
            heads = [texts[i][: len(texts[i]) - len(pieced[i][0].text)] for i in known]
            distinct = list(dict.fromkeys(heads))
            head_ids = dict(zip(distinct, embedder.word_pieces(distinct) or [], strict=True))
            joined = [head_ids[h] + (pieced[i][1] or []) for h, i in zip(heads, known, strict=True)]
            for i, p in zip(known, embedder.prepare_pieces(joined), strict=True):
                prepared[i] = p
        rest = [i for i, (_, ids) in enumerate(pieced) if ids is None]
        for i, p in zip(rest, embedder.prepare([texts[i] for i in rest]), strict=True):
            prepared[i] = p
        return prepared


class _TitleTap:
    """Pages passed through, the first title a page carries kept (PDF metadata)."""

    def __init__(self, pages: Iterable[Page]) -> None:
        self.pages = iter(pages)
        self.title = ""

    def __iter__(self) -> Iterator[Page]:
        for page in self.pages:
            if page.title and not self.title:
                self.title = page.title
            yield page


def _described(record: FileRecord, head: list[Chunk], title: str = "") -> FileRecord:
    """The record with what is told from the document: its title (metadata, else first
    heading, else file name), type (suffix) and language (from its first chunks)."""
    title = title or (head[0].title if head else Path(record.display).stem)
    suffix = Path(record.display).suffix.lower().lstrip(".")
    language = detect_language(" ".join(c.text for c in head[:8])) if head else ""
    return replace(record, title=title, type=suffix, language=language)


def embedded_text(chunk: Chunk, context: bool) -> str:
    """What the embedder reads of a chunk (the same as the lexical index reads)."""
    return chunk.context if context else chunk.text


def weight(message: object) -> int:
    """What a message counts for in the read-ahead: its chunks, else one."""
    if isinstance(message, list):
        return max(1, len(message))
    if isinstance(message, Pending):
        return max(1, sum(len(c) for _, c in message.parts))
    return 1


def reason(exc: Exception, path: str) -> str:
    """Why a file failed, as its outcome tells clients: no folder of the server in it."""
    if isinstance(exc, LoaderError):
        return redact_paths(str(exc))
    if isinstance(exc, OSError):
        return os_reason(exc)
    logger.error("unexpected error path=%r", path, exc_info=exc)  # a bug: keep the trace
    return redact_paths(f"{type(exc).__name__}: {exc}")
