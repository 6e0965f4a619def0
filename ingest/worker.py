"""The ingestion worker: a folder in, an up-to-date index out.

Incremental: a file whose size and mtime are unchanged is not read (only opened: one
that can no longer be read is a failure); one whose content hash is unchanged is not
re-embedded; a changed file's chunks are replaced in one transaction; files gone from a
folder listed whole are removed, and nothing of a folder or file that could not be
read (`ingest.discovery`). One bad file is reported and skipped, never the end of the
run. Readers see the run's changes when it commits, at its end, all at once.

The embedder is loaded only when a file has to be embedded: a run over an unchanged tree
loads no model. Documents are read in a child process with a time limit per file
(`ingest.sandbox`). With `confine`, no file whose real location (links followed) lies
outside those folders is read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.chunking import Chunker
from ingest.claims import rounds, write_lock
from ingest.discovery import (
    UNDECODABLE,
    Found,
    inside,
    key,
    missing,
    os_reason,
    relative,
    unreachable,
    walk,
)
from ingest.handover import ReadAhead, WriteBehind, take
from ingest.loaders import Page, documents, loader_for
from ingest.report import FileOutcome, IngestObserver, IngestReport, RunBook, Status
from ingest.sandbox import LoaderSandbox
from rag.analysis import detect_language
from rag.config import EmbedderSettings, Settings
from rag.errors import ConfigError, IndexMismatchError, LoaderError, RagError
from rag.store import FileRecord, Manifest, Store, make_catalog
from rag.types import Chunk
from rag.util import readable, redact_paths, undecodable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rag.embedders.base import Embedder

logger = logging.getLogger(__name__)

LARGE_FILE_CHUNKS = 1024  # a document with more chunks is embedded and written as it streams
READ_AHEAD = 2048  # chunks (and messages) the reader may be ahead by
GROUP_BATCHES = 16  # small files are embedded together once they hold this many batches
TAIL_BATCHES = 2  # the run's last group: its last files, this many batches, embedded apart
CONTEXT_HEADER_TOKENS = 32  # embedder tokens kept free in each chunk for its context header


@dataclass
class _File:
    key: str  # its document's key in the index
    name: str  # as shown

    def outcome(self, status: Status, chunks: int = 0, reason: str = "") -> FileOutcome:
        return FileOutcome(self.name, status, chunks, reason, key=self.key)


@dataclass
class _Candidate(_File):
    path: Path
    size: int
    mtime: float


@dataclass
class _Pending(_File):
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
class _Stream:
    """A large document: its chunks follow in batches (lists), then a `_StreamEnd`."""

    item: _Pending
    part: FileRecord


@dataclass
class _StreamEnd:
    error: str | None = None  # the document failed while being read


@dataclass
class _Touch:
    record: FileRecord  # unchanged content: only the record is updated


@dataclass
class _Remove:
    key: str


_Message = FileOutcome | _Touch | _Remove | _Pending | _Stream | list[Chunk] | _StreamEnd


class IngestWorker:
    """Ingests folders and files into named indexes."""

    large_file_chunks = LARGE_FILE_CHUNKS

    def __init__(self, settings: Settings, embedder: Embedder | Callable[[], Embedder] | None = None) -> None:
        """`embedder`: a loaded embedder, or a function that loads one when first needed
        (default: the configured embedder)."""
        self.settings = settings
        self.catalog = make_catalog(settings)
        self._embedder: Embedder | None = None
        self._load_embedder: Callable[[], Embedder]
        self._embedder_settings = settings.embedder
        self._owns_embedder = embedder is None
        if embedder is None:
            self._load_embedder = lambda: _configured_embedder(settings.embedder)
        elif callable(embedder) and not hasattr(embedder, "embed"):
            self._load_embedder = embedder
        else:
            self._embedder = embedder  # type: ignore[assignment]
        self._chunker: Chunker | None = None
        self._sandbox: LoaderSandbox | None = None  # the running run's
        self._stopped = False

    def stop(self) -> None:
        """From another thread, for good: the document being read is abandoned and every
        file after it fails at once, so that an observer that ends the run (a server
        shutting down) does not wait for a parser."""
        self._stopped = True
        if self._sandbox is not None:
            self._sandbox.stop()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._load_embedder()
        return self._embedder

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            embedder = self.embedder
            chunking = self.settings.chunking
            # The context header is embedded with the chunk: room is kept for it.
            reserve = CONTEXT_HEADER_TOKENS if chunking.context else 0
            self._chunker = Chunker(
                chunking.size,
                chunking.overlap,
                encoding=chunking.encoding,
                limit=embedder.count_tokens,
                max_limit=embedder.max_tokens - reserve,
                pieces_many=embedder.word_pieces,  # tokenized once, for chunking and embedding
            )
        return self._chunker

    def run(
        self,
        root: Path,
        index_name: str | None = None,
        observer: IngestObserver | None = None,
        *,
        confine: Sequence[Path] | None = None,
    ) -> IngestReport:
        """Bring the index up to date with `root` (a folder or one file).

        `confine`: folders every file read must really lie in (links resolved)."""
        name = index_name or self.settings.index
        report = IngestReport(name)
        start = time.perf_counter()
        try:
            root.stat()
        except FileNotFoundError:
            raise RagError(f"nothing to ingest: '{readable(root.name)}' does not exist") from None
        except OSError as exc:  # not even told what it is: nothing is removed
            raise RagError(f"cannot ingest '{readable(root.name)}': {os_reason(exc)}") from None
        root = root.resolve()
        if undecodable(str(root)):
            raise RagError(f"cannot ingest '{readable(root.name)}': its {UNDECODABLE}")
        allowed = [Path(p).resolve() for p in confine] if confine is not None else None
        if allowed is not None and not inside(root, allowed):
            raise RagError(f"{root.name!r} is outside the folders this ingest may read")
        book = RunBook(report, observer)
        options = self.settings.ingest
        with write_lock(self.catalog, name), LoaderSandbox(options.file_timeout, options) as sandbox:
            self._sandbox = sandbox
            if self._stopped:
                sandbox.stop()
            store = self._open_or_create(name)
            try:
                found = Found(root.parent)
                candidates = self._discover(root, found, allowed)
                known = store.files()
                gone = missing(known, root, {c.key for c in candidates} | found.kept)
                if observer:
                    observer.started(len(candidates) + len(found.outcomes) + len(gone))
                for outcome in found.outcomes:
                    book.done(outcome)
                try:
                    for share in rounds(store, candidates, known, self.settings.store):  # workers share
                        self._ingest(store, known, share, book, sandbox)
                    for k in gone:
                        book.done(FileOutcome(known[k].display, "removed", store.remove_file(k), key=k))
                finally:
                    store.commit()
            finally:
                self._sandbox = None
                store.close()
        report.seconds = time.perf_counter() - start
        logger.info("ingest done index=%s %s", name, report.summary())
        return report

    # -- discovery -----------------------------------------------------------------

    def _discover(self, root: Path, found: Found, allowed: list[Path] | None) -> list[_Candidate]:
        candidates: list[_Candidate] = []
        skip = self.settings.indexes_dir.resolve()
        for path in walk(root, found, allowed):
            if path.is_relative_to(skip):  # never ingest our own indexes
                continue
            try:
                st = path.stat()
            except OSError as exc:  # not told whether it is there: its documents stay
                found.failed(path, unreachable(path, exc))
                continue
            if loader_for(path) is None:
                found.skipped(path, "unsupported type")
            elif stat.S_ISDIR(st.st_mode):  # a folder the walk could not tell from a file
                found.failed(path, "not listed: its type could not be told")
            elif not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block the reader
                found.skipped(path, "not a regular file")
            else:
                shown = relative(path, found.base)
                candidates.append(_Candidate(key(path), shown, path, st.st_size, st.st_mtime))
        return candidates

    # -- ingestion -----------------------------------------------------------------

    def _ingest(
        self,
        store: Store,
        known: dict[str, FileRecord],
        candidates: list[_Candidate],
        book: RunBook,
        sandbox: LoaderSandbox,
    ) -> None:
        """Files are hashed, read and chunked by a reader thread (`_read`) while this one
        embeds what it has handed over, and a writer thread stores it: embedding rarely
        waits for parsing or writing. The store is touched from the writer thread only (a
        large document's stream, after the writer is drained, from this one), so the
        writes keep the files' order. An unchanged or failed file is reported at once, so
        possibly before files ahead of it that wait to be embedded with others."""
        pending: list[_Pending] = []
        batch = self.settings.embedder.batch_size
        held = 0  # chunks in `pending`
        writer = WriteBehind()

        def flush(last: bool = False) -> None:
            nonlocal held
            try:
                # The last group's writing follows all embedding: its end is embedded apart,
                # so that the rest is written meanwhile.
                for part in _tail_apart(pending, batch * TAIL_BATCHES) if last else [pending]:
                    self._write_pending(store, part, book, writer)
            finally:
                pending.clear()
                held = 0

        messages = ReadAhead(lambda: self._read(known, candidates, sandbox), READ_AHEAD, _weight)
        try:
            while True:
                # Many texts at once are batched with less padding; but the embedder does not
                # wait for the reader while it holds a batch's worth.
                if held >= batch and not messages.ready():
                    flush()
                message = next(messages, None)
                if message is None:
                    break
                if isinstance(message, FileOutcome):
                    writer.submit(partial(book.done, message))
                elif isinstance(message, _Touch):
                    writer.submit(partial(store.touch_file, message.record))
                elif isinstance(message, _Remove):
                    writer.submit(partial(store.remove_file, message.key))
                elif isinstance(message, _Stream):
                    flush()  # what waits goes first: outcomes stay in file order
                    writer.drain()
                    self._write_stream(store, message, messages)
                elif not isinstance(message, _Pending):
                    raise AssertionError(f"chunks outside a stream: {message!r:.80}")
                elif message.failed:
                    writer.submit(partial(_failed, store, message, message.failed, book))
                elif not message.parts:
                    writer.submit(partial(book.done, message.outcome(message.status, message.written)))
                else:
                    pending.append(message)
                    held += len(message.chunks)
                    if held >= batch * GROUP_BATCHES:
                        flush()
            flush(last=True)
            writer.drain()
        except BaseException:
            sandbox.stop()  # interrupted (Ctrl-C) or failed: the reader stops without waiting
            raise
        finally:
            messages.close()
            writer.close()

    def _read(
        self, known: dict[str, FileRecord], candidates: list[_Candidate], sandbox: LoaderSandbox
    ) -> Iterator[_Message]:
        """On the reader thread: what to do with each file, in order. A large document's
        chunks follow its `_Stream` in batches, then `_StreamEnd`; then the file's `_Pending`."""
        for cand in candidates:
            old = known.get(cand.key)
            if old and old.size == cand.size and old.mtime == cand.mtime:
                try:  # not read again, but still readable: else it is a failure to tell
                    os.close(os.open(cand.path, os.O_RDONLY | os.O_NONBLOCK))
                except OSError as exc:
                    yield cand.outcome("failed", reason=os_reason(exc))
                    continue
                if old.name != cand.name:
                    yield _Touch(
                        FileRecord(cand.key, old.hash, old.size, old.mtime, old.ingested_at, cand.name)
                    )
                yield cand.outcome("unchanged")
                continue
            try:
                digest = _hash(cand.path)
            except OSError as exc:
                yield cand.outcome("failed", reason=os_reason(exc))
                continue
            record = FileRecord(cand.key, digest, cand.size, cand.mtime, time.time(), cand.name)
            if old and old.hash == digest:
                yield _Touch(record)
                yield cand.outcome("unchanged")
                continue
            status: Status = "updated" if old else "added"
            item = _Pending(cand.key, cand.name, [], status)
            streamed = 0
            try:
                for sub, pages in documents(sandbox.pages(cand.path)):
                    part = (
                        record
                        if not sub
                        else FileRecord(
                            f"{cand.key}/{sub}",
                            digest,
                            cand.size,
                            cand.mtime,
                            record.ingested_at,
                            f"{cand.name}/{sub}",
                        )
                    )
                    tap = _TitleTap(pages)
                    pieced = self.chunker.pieced(tap, part.display)
                    head_pieced = take(pieced, self.large_file_chunks)
                    head = [c for c, _ in head_pieced]
                    chunks = (c for c, _ in pieced)
                    part = _described(part, head, tap.title)
                    if len(head) < self.large_file_chunks:
                        if head:
                            item.parts.append((part, head))
                            # Tokenized here, beside the embedding of the files before it.
                            item.prepared += self._prepare(head_pieced)
                        continue
                    yield _Stream(item, part)
                    error: str | None = None
                    try:
                        batch = head
                        while batch:
                            yield batch
                            streamed += len(batch)
                            batch = take(chunks, self.large_file_chunks)
                    except Exception as exc:
                        error = _reason(exc, cand.name)
                        raise
                    finally:
                        yield _StreamEnd(error)
                if not item.parts and not streamed:
                    raise LoaderError("no text found")
                parts = {r.path for r, _ in item.parts} | {cand.key}
                for stale in [k for k in known if k.startswith(cand.key + "/") and k not in parts]:
                    yield _Remove(stale)  # an attachment gone from the new version
            except ConfigError:  # a setting that no file can pass (chunk size): end the run
                raise
            except Exception as exc:
                item.failed = _reason(exc, cand.name)
            yield item

    def _write_stream(self, store: Store, stream: _Stream, messages: Iterator[_Message]) -> None:
        """Embed and write a large document's batches as the reader hands them over.

        A failure (reading, embedding or writing) fails the document, and the file with
        it: the store rolls its writing back (the previous version stays), and the rest of
        its batches are taken from the reader and dropped, not embedded."""
        ended = False

        def batches() -> Generator[tuple[Sequence[Chunk], NDArray[np.float32]], None, None]:
            nonlocal ended
            for message in messages:
                if isinstance(message, _StreamEnd):
                    ended = True
                    if message.error:
                        raise LoaderError(message.error)
                    return
                if not isinstance(message, list):
                    raise AssertionError(f"not a batch inside a stream: {message!r:.80}")
                yield message, self.embedder.embed([self._embedded(c) for c in message])

        item = stream.item
        if not item.failed:  # else another document of the file failed: this one goes too
            feed = batches()
            try:
                item.written += store.replace_file(stream.part, feed)
            except Exception as exc:
                item.failed = _reason(exc, item.name)
            finally:
                feed.close()
        if not ended:
            _skip_stream(messages)

    def _write_pending(
        self, store: Store, pending: list[_Pending], book: RunBook, writer: WriteBehind
    ) -> None:
        """Embed the waiting small files together and have each written; a failure is
        reported against the file it belongs to (the batch is tried again file by file)."""
        if not pending:
            return
        try:
            vectors: NDArray[np.float32] | None = self.embedder.embed_prepared(
                [prepared for p in pending for prepared in p.prepared]
            )
        except Exception:  # which file? each on its own tells
            logger.warning("batch embedding failed; embedding its %d files one by one", len(pending))
            vectors = None
        jobs: list[Callable[[], object]] = []
        offset = 0
        for item in pending:
            n = len(item.chunks)
            try:
                mine = (
                    vectors[offset : offset + n]
                    if vectors is not None
                    else self.embedder.embed_prepared(item.prepared)
                )
            except Exception as exc:
                jobs.append(partial(_failed, store, item, _reason(exc, item.name), book))
            else:
                jobs.append(partial(_write_item, store, item, mine, book))
            offset += n
        # One job for the group: the writer's queue holds groups, and handing a group over
        # never waits for the writing of its own files.
        writer.submit(partial(_run_all, jobs))

    def _prepare(self, pieced: list[tuple[Chunk, list[int] | None]]) -> list[Any]:
        """`Embedder.prepare` of the chunks as embedded: from the ids chunking made of their
        text (with their context header's), else from their text."""
        embedder = self.embedder
        texts = [self._embedded(c) for c, _ in pieced]
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

    def _embedded(self, chunk: Chunk) -> str:
        """What the embedder reads of a chunk (the same as the lexical index reads)."""
        return chunk.context if self.settings.chunking.context else chunk.text

    # -- the index -----------------------------------------------------------------

    def _open_or_create(self, name: str) -> Store:
        if not self.catalog.exists(name):
            self._use(self.settings.embedder)  # a new index: the configured embedder
            return self.catalog.create(name, self.manifest())
        store = self.catalog.open(name)
        try:
            self._follow_index(store.manifest)
            kind, model = self._embedder_identity()
            store.manifest.check_embedder(kind, model)
            m = store.manifest
            chunking = self.settings.chunking
            built = (m.chunk_size, m.chunk_overlap, m.encoding, m.chunk_context)
            if built != (chunking.size, chunking.overlap, chunking.encoding, chunking.context):
                raise IndexMismatchError(
                    f"index {name!r} was chunked with size={built[0]} overlap={built[1]} "
                    f"encoding={built[2]} context={str(built[3]).lower()}; ingest into a new "
                    "index to use other chunking settings"
                )
        except BaseException:
            store.close()
            raise
        return store

    def _follow_index(self, manifest: Manifest) -> None:
        """An existing index is ingested into with the embedder runtime it records (see
        `settings_for_index`), when this worker loads its embedder itself."""
        from rag.embedders import settings_for_index

        wanted = settings_for_index(self.settings.embedder, manifest.embedder_kind, manifest.embedder)
        if (wanted.kind, wanted.model) != (self.settings.embedder.kind, self.settings.embedder.model):
            logger.info(
                "index built with embedder kind=%s name=%s: ingesting with it",
                manifest.embedder_kind,
                manifest.embedder,
            )
        self._use(wanted)

    def _use(self, wanted: EmbedderSettings) -> None:
        current = self._embedder_settings
        if not self._owns_embedder or (wanted.kind, wanted.model) == (current.kind, current.model):
            return
        self._embedder_settings, self._embedder, self._chunker = wanted, None, None
        self._load_embedder = lambda: _configured_embedder(wanted)

    def _embedder_identity(self) -> tuple[str, str]:
        """(kind, name) of the embedder, without loading it when it is not loaded yet."""
        if self._embedder is not None:
            return _kind(self._embedder), self._embedder.name
        from rag.embedders import recorded_name

        configured = self._embedder_settings
        return configured.kind, recorded_name(configured.kind, configured.model)

    def manifest(self) -> Manifest:
        chunking = self.settings.chunking
        embedder = self.embedder
        return Manifest(
            embedder_kind=_kind(embedder),
            embedder=embedder.name,
            dimension=embedder.dimension,
            chunk_size=chunking.size,
            chunk_overlap=chunking.overlap,
            encoding=chunking.encoding,
            chunk_context=chunking.context,
        )


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


def _write_item(store: Store, item: _Pending, vectors: NDArray[np.float32], book: RunBook) -> None:
    """On the writer thread: a file's documents, and then its outcome."""
    try:
        written, at = item.written, 0
        for record, chunks in item.parts:
            written += store.replace_file(record, [(chunks, vectors[at : at + len(chunks)])])
            at += len(chunks)
        book.done(item.outcome(item.status, written))
    except Exception as exc:
        item.written = written
        _failed(store, item, _reason(exc, item.name), book)


def _failed(store: Store, item: _Pending, reason: str, book: RunBook) -> None:
    """On the writer thread: a file failed. When some of its documents were written
    already (a long mail body, and then an attachment failed), its record no longer
    tells which content the index holds: it is marked so that the next run reads the
    file again rather than take it for unchanged."""
    if item.written:
        try:
            store.touch_file(FileRecord(item.key, "", 0, 0.0, 0.0, item.name))
        except Exception as exc:  # then the next run may skip it: say so
            logger.warning("failed file not marked to be read again path=%s error=%s", item.name, exc)
    book.done(item.outcome("failed", reason=reason))


def _skip_stream(messages: Iterator[_Message]) -> None:
    """The rest of a large document's batches, taken from the reader and dropped."""
    for message in messages:
        if isinstance(message, _StreamEnd):
            return


def _tail_apart(items: list[_Pending], chunks: int) -> list[list[_Pending]]:
    """`items` in two: its last files, holding at least `chunks` chunks, and those before
    (none when the last files hold all)."""
    held = 0
    for k in range(len(items) - 1, 0, -1):
        held += len(items[k].chunks)
        if held >= chunks:
            return [items[:k], items[k:]]
    return [items]


def _run_all(jobs: list[Callable[[], object]]) -> None:
    for job in jobs:
        job()


def _configured_embedder(settings: EmbedderSettings) -> Embedder:
    from rag.embedders import make_embedder

    return make_embedder(settings)


def _kind(embedder: Embedder) -> str:
    return str(getattr(embedder, "kind", "sentence-transformers"))


def _weight(message: object) -> int:
    """What a message counts for in the read-ahead: its chunks, else one."""
    if isinstance(message, list):
        return max(1, len(message))
    if isinstance(message, _Pending):
        return max(1, sum(len(c) for _, c in message.parts))
    return 1


def _hash(path: Path) -> str:
    """The file's SHA-256, read through one small buffer (a fresh megabyte per read
    costs more than hashing a small file)."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _reason(exc: Exception, path: str) -> str:
    """Why a file failed, as its outcome tells clients: no folder of the server in it."""
    if isinstance(exc, LoaderError):
        return redact_paths(str(exc))
    if isinstance(exc, OSError):
        return os_reason(exc)
    logger.error("unexpected error path=%r", path, exc_info=exc)  # a bug: keep the trace
    return redact_paths(f"{type(exc).__name__}: {exc}")


__all__ = ["ConfigError", "FileOutcome", "IngestObserver", "IngestReport", "IngestWorker"]
