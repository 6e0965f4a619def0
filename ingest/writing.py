"""The embedding thread of an ingest: what the reader hands over is embedded, small files
in groups and a large document as it streams, and written to the store by a writer
thread (`ingest.handover.WriteBehind`), so that embedding rarely waits for writing.

The store is touched from the writer thread only (a large document's stream, after the
writer is drained, from the embedding thread), so the writes keep the files' order. An
unchanged or failed file is reported at once, so possibly before files ahead of it that
wait to be embedded with others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING

from ingest.handover import WriteBehind
from ingest.reading import Message, Pending, Remove, Stream, StreamEnd, Touch, embedded_text, reason
from ingest.report import FileOutcome, RunBook
from rag.errors import LoaderError
from rag.store import FileRecord, Store
from rag.types import Chunk

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rag.embedders.base import Embedder

logger = logging.getLogger(__name__)

GROUP_BATCHES = 16  # small files are embedded together once they hold this many batches
TAIL_BATCHES = 2  # the run's last group: its last files, this many batches, embedded apart


class GroupWriter:
    """Takes the reader's messages (`ingest.reading`) and has them embedded and written.

    `embedder` gives the embedder (loaded when first asked for); `context`: whether chunks
    are embedded with their context header; `batch`: the embedder's batch size."""

    def __init__(
        self, store: Store, book: RunBook, embedder: Callable[[], Embedder], context: bool, batch: int
    ) -> None:
        self._store = store
        self._book = book
        self._embedder = embedder
        self._context = context
        self._batch = batch
        self._pending: list[Pending] = []
        self.held = 0  # chunks waiting to be embedded
        self._writer = WriteBehind()

    def take(self, message: Message, messages: Iterator[Message]) -> None:
        """Have `message` written; a `Stream` takes its batches from `messages`."""
        store, book, writer = self._store, self._book, self._writer
        if isinstance(message, FileOutcome):
            writer.submit(partial(book.done, message))
        elif isinstance(message, Touch):
            writer.submit(partial(store.touch_file, message.record))
        elif isinstance(message, Remove):
            writer.submit(partial(store.remove_file, message.key))
        elif isinstance(message, Stream):
            self.flush()  # what waits goes first: outcomes stay in file order
            writer.drain()
            self._write_stream(message, messages)
        elif not isinstance(message, Pending):
            raise AssertionError(f"chunks outside a stream: {message!r:.80}")
        elif message.failed:
            writer.submit(partial(_failed, store, message, message.failed, book))
        elif not message.parts:
            writer.submit(partial(book.done, message.outcome(message.status, message.written)))
        else:
            self._pending.append(message)
            self.held += len(message.chunks)
            if self.held >= self._batch * GROUP_BATCHES:
                self.flush()

    def flush(self, last: bool = False) -> None:
        """Embed the files that wait, and have them written."""
        try:
            # The last group's writing follows all embedding: its end is embedded apart,
            # so that the rest is written meanwhile.
            groups = tail_apart(self._pending, self._batch * TAIL_BATCHES) if last else [self._pending]
            for group in groups:
                self._write_pending(group)
        finally:
            self._pending.clear()
            self.held = 0

    def finish(self) -> None:
        """The reader is done: embed what waits, and wait for all of it to be written."""
        self.flush(last=True)
        self._writer.drain()

    def close(self) -> None:
        """End the writer thread; what still waits to be written is dropped."""
        self._writer.close()

    def _write_stream(self, stream: Stream, messages: Iterator[Message]) -> None:
        """Embed and write a large document's batches as the reader hands them over.

        A failure (reading, embedding or writing) fails the document, and the file with
        it: the store rolls its writing back (the previous version stays), and the rest of
        its batches are taken from the reader and dropped, not embedded."""
        ended = False

        def batches() -> Generator[tuple[Sequence[Chunk], NDArray[np.float32]], None, None]:
            nonlocal ended
            for message in messages:
                if isinstance(message, StreamEnd):
                    ended = True
                    if message.error:
                        raise LoaderError(message.error)
                    return
                if not isinstance(message, list):
                    raise AssertionError(f"not a batch inside a stream: {message!r:.80}")
                yield message, self._embedder().embed([embedded_text(c, self._context) for c in message])

        item = stream.item
        if not item.failed:  # else another document of the file failed: this one goes too
            feed = batches()
            try:
                item.written += self._store.replace_file(stream.part, feed)
            except Exception as exc:
                item.failed = reason(exc, item.name)
            finally:
                feed.close()
        if not ended:
            _skip_stream(messages)

    def _write_pending(self, pending: list[Pending]) -> None:
        """Embed the waiting small files together and have each written; a failure is
        reported against the file it belongs to (the batch is tried again file by file)."""
        if not pending:
            return
        store, book = self._store, self._book
        try:
            vectors: NDArray[np.float32] | None = self._embedder().embed_prepared(
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
                    else self._embedder().embed_prepared(item.prepared)
                )
            except Exception as exc:
                jobs.append(partial(_failed, store, item, reason(exc, item.name), book))
            else:
                jobs.append(partial(_write_item, store, item, mine, book))
            offset += n
        # One job for the group: the writer's queue holds groups, and handing a group over
        # never waits for the writing of its own files.
        self._writer.submit(partial(_run_all, jobs))


def tail_apart(items: list[Pending], chunks: int) -> list[list[Pending]]:
    """`items` in two: its last files, holding at least `chunks` chunks, and those before
    (none when the last files hold all)."""
    held = 0
    for k in range(len(items) - 1, 0, -1):
        held += len(items[k].chunks)
        if held >= chunks:
            return [items[:k], items[k:]]
    return [items]


def _write_item(store: Store, item: Pending, vectors: NDArray[np.float32], book: RunBook) -> None:
    """On the writer thread: a file's documents, and then its outcome."""
    try:
        written, at = item.written, 0
        for record, chunks in item.parts:
            written += store.replace_file(record, [(chunks, vectors[at : at + len(chunks)])])
            at += len(chunks)
        book.done(item.outcome(item.status, written))
    except Exception as exc:
        item.written = written
        _failed(store, item, reason(exc, item.name), book)


def _failed(store: Store, item: Pending, why: str, book: RunBook) -> None:
    """On the writer thread: a file failed. When some of its documents were written
    already (a long mail body, and then an attachment failed), its record no longer
    tells which content the index holds: it is marked so that the next run reads the
    file again rather than take it for unchanged."""
    if item.written:
        try:
            store.touch_file(FileRecord(item.key, "", 0, 0.0, 0.0, item.name))
        except Exception as exc:  # then the next run may skip it: say so
            logger.warning("failed file not marked to be read again path=%s error=%s", item.name, exc)
    book.done(item.outcome("failed", reason=why))


def _skip_stream(messages: Iterator[Message]) -> None:
    """The rest of a large document's batches, taken from the reader and dropped."""
    for message in messages:
        if isinstance(message, StreamEnd):
            return


def _run_all(jobs: list[Callable[[], object]]) -> None:
    for job in jobs:
        job()
