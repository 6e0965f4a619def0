"""The ingestion worker: a folder in, an up-to-date index out.

`IngestWorker.run` plans what to do (`ingest.planning`: the folder discovered and compared
with the index), has a reader thread read and chunk the new and changed files
(`ingest.reading`), and embeds and writes them in groups (`ingest.writing`). One bad
file is reported and skipped, never the end of the run; a changed file's chunks are
replaced in one transaction. Readers see the run's changes when it commits, at its end,
all at once.

The embedder is loaded only when a file has to be embedded: a run over an unchanged tree
loads no model. With `confine`, no file whose real location (links followed) lies outside
those folders is read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.chunking import Chunker
from ingest.claims import rounds, write_lock
from ingest.discovery import UNDECODABLE, Found, inside, os_reason
from ingest.handover import ReadAhead
from ingest.planning import Candidate, discover, gone
from ingest.reading import FileReader, weight
from ingest.report import FileOutcome, IngestObserver, IngestReport, RunBook
from ingest.sandbox import LoaderSandbox
from ingest.writing import GroupWriter
from rag.config import EmbedderSettings, Settings
from rag.errors import ConfigError, IndexMismatchError, RagError
from rag.store import FileRecord, Manifest, Store, make_catalog
from rag.util import readable, undecodable

if TYPE_CHECKING:
    from rag.embedders.base import Embedder

logger = logging.getLogger(__name__)

LARGE_FILE_CHUNKS = 1024  # a document with more chunks is embedded and written as it streams
READ_AHEAD = 2048  # chunks (and messages) the reader may be ahead by
CONTEXT_HEADER_TOKENS = 32  # embedder tokens kept free in each chunk for its context header


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
                candidates = discover(root, found, allowed, self.settings.indexes_dir.resolve())
                known = store.files()
                removed = gone(known, root, candidates, found)
                if observer:
                    observer.started(len(candidates) + len(found.outcomes) + len(removed))
                for outcome in found.outcomes:
                    book.done(outcome)
                try:
                    for share in rounds(store, candidates, known, self.settings.store):  # workers share
                        self._ingest(store, known, share, book, sandbox)
                    for k in removed:
                        book.done(FileOutcome(known[k].display, "removed", store.remove_file(k), key=k))
                finally:
                    store.commit()
            finally:
                self._sandbox = None
                store.close()
        report.seconds = time.perf_counter() - start
        logger.info("ingest done index=%s %s", name, report.summary())
        return report

    def _ingest(
        self,
        store: Store,
        known: dict[str, FileRecord],
        candidates: list[Candidate],
        book: RunBook,
        sandbox: LoaderSandbox,
    ) -> None:
        """Files are hashed, read and chunked by a reader thread (`ingest.reading`) while
        this one embeds what it has handed over, and a writer thread stores it
        (`ingest.writing`): embedding rarely waits for parsing or writing."""
        batch = self.settings.embedder.batch_size
        context = self.settings.chunking.context
        reader = FileReader(self, context)
        groups = GroupWriter(store, book, lambda: self.embedder, context, batch)
        messages = ReadAhead(lambda: reader.read(known, candidates, sandbox), READ_AHEAD, weight)
        try:
            while True:
                # Many texts at once are batched with less padding; but the embedder does not
                # wait for the reader while it holds a batch's worth.
                if groups.held >= batch and not messages.ready():
                    groups.flush()
                message = next(messages, None)
                if message is None:
                    break
                groups.take(message, messages)
            groups.finish()
        except BaseException:
            sandbox.stop()  # interrupted (Ctrl-C) or failed: the reader stops without waiting
            raise
        finally:
            messages.close()
            groups.close()

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
            return self._embedder.kind, self._embedder.name
        from rag.embedders import recorded_name

        configured = self._embedder_settings
        return configured.kind, recorded_name(configured.kind, configured.model)

    def manifest(self) -> Manifest:
        chunking = self.settings.chunking
        embedder = self.embedder
        return Manifest(
            embedder_kind=embedder.kind,
            embedder=embedder.name,
            dimension=embedder.dimension,
            chunk_size=chunking.size,
            chunk_overlap=chunking.overlap,
            encoding=chunking.encoding,
            chunk_context=chunking.context,
        )


def _configured_embedder(settings: EmbedderSettings) -> Embedder:
    from rag.embedders import make_embedder

    return make_embedder(settings)


__all__ = ["ConfigError", "FileOutcome", "IngestObserver", "IngestReport", "IngestWorker"]
