"""The store role: a whole named index (documents, chunks, vectors), behind small contracts.

    Catalog                the named indexes of one backend: list, open, create, delete, lock
    StoreReader            one index as retrieval, answering and listings read it: search,
                           lexical search, chunks, documents, counts, freshness
    StoreWriter            one index as ingest writes it: replace/remove/touch a document, commit
    Store                  both: what a catalog opens (read-only unless asked otherwise)

Optional abilities a backend may declare beside these (shared ingest) are in
`rag.store.abilities`, checked with `isinstance`.

`rag.store.open_store(settings, name)` and `rag.store.make_catalog(settings)` pick the
backend by `store.kind`; nothing else in the code knows which one runs.

Readers see whole committed states only: what a writer changes becomes visible at its
`commit()`, all at once; until then readers keep finding the previous state.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self, get_args

from rag.analysis import Language
from rag.config import INDEX_NAME_PATTERN
from rag.errors import IndexNotFoundError, InvalidRequestError
from rag.store.globs import is_text, parse_glob
from rag.store.manifest import Manifest
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

INDEX_NAME = re.compile(INDEX_NAME_PATTERN)
LANGUAGES: tuple[str, ...] = get_args(Language)

Batches = Iterable[tuple[Sequence[Chunk], "NDArray[np.float32]"]]


def check_index_name(name: str) -> str:
    """An index name valid for every backend (and a safe folder name), or a 400."""
    if not isinstance(name, str) or not INDEX_NAME.match(name):
        raise InvalidRequestError(
            f"invalid index name {name!r}: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.'"
        )
    return name


def not_found(name: str, *, deleted: bool = False) -> IndexNotFoundError:
    """The error of a name no index has (now), alike on every store: it names neither where
    indexes are kept nor which other indexes exist (`rag index list` tells those)."""
    if deleted:
        return IndexNotFoundError(f"no index named {name!r}: it was deleted")
    return IndexNotFoundError(f"no index named {name!r}; create it with `rag ingest PATH --index {name}`")


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return; applied inside the search, so k results still
    come back. `path` is a glob on the document's shown path ("*.pdf", "guide/*"); `types`
    are file suffixes without the dot; `languages` "en"/"fr"; dates are epoch seconds of
    the document's modification time."""

    path: str | None = None
    types: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    modified_after: float | None = None
    modified_before: float | None = None

    def __post_init__(self) -> None:
        """Every filter is checked here, where all of them are made, so that a value no
        store can read is the client's error (InvalidRequestError) on every store alike."""
        if self.path:
            parse_glob(self.path)
        for kind in self.types:
            if not is_text(kind):
                raise InvalidRequestError(f"type filter {kind!r} contains a character that is not text")
        for language in self.languages:
            if language not in LANGUAGES:
                raise InvalidRequestError(
                    f"language filter: expected {' or '.join(LANGUAGES)}, got {language!r}"
                )
        for name in ("modified_after", "modified_before"):
            when = getattr(self, name)
            if when is not None and not math.isfinite(when):
                raise InvalidRequestError(f"{name}: expected a time, got {when!r}")

    def __bool__(self) -> bool:
        return bool(
            self.path
            or self.types
            or self.languages
            or self.modified_after is not None
            or self.modified_before is not None
        )


@dataclass(frozen=True)
class FileRecord:
    """One ingested document. `path` is its key (where the ingest read it); `name` is what
    clients are shown: the path relative to the folder that was ingested."""

    path: str
    hash: str
    size: int
    mtime: float
    ingested_at: float
    name: str = ""
    title: str = ""  # the document's title: its metadata's, its first heading, or its file name
    type: str = ""  # the file's suffix, without the dot
    language: str = ""  # "en" or "fr", as told from its text

    @property
    def display(self) -> str:
        return self.name or self.path


class StoreReader(ABC):
    """What reading one named index needs (retrieval, answering, search, listing): the
    last committed state, whose new commits a reader follows by itself."""

    name: str
    manifest: Manifest
    readonly: bool

    @property
    def identity(self) -> str:
        """Unique to this index's creation: a deleted and re-created index has another."""
        return self.manifest.id

    @abstractmethod
    def search(self, vector: NDArray[np.float32], k: int, filters: Filters | None = None) -> list[Hit]:
        """The k chunks most similar to `vector` (inner product), best first, among the
        documents `filters` allows."""

    @abstractmethod
    def search_text(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        """The k chunks best matching the query's words (BM25 over stemmed, accent-folded
        terms in the query's language), best first. `Hit.score` is the share of the
        query's term weight (idf) that the chunk contains, from 0 to 1; `Hit.scores`
        holds the raw `bm25` too."""

    @abstractmethod
    def vector(self, chunk_id: int) -> NDArray[np.float32]:
        """The stored vector of one chunk."""

    @abstractmethod
    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        """Chunks by id (ids no longer stored are left out)."""

    @abstractmethod
    def all_chunks(self) -> Iterator[tuple[int, Chunk]]:
        """Every chunk, by document then position."""

    @abstractmethod
    def files(self) -> dict[str, FileRecord]:
        """Documents by key."""

    @abstractmethod
    def chunk_count(self) -> int:
        """Chunks a search can return."""

    @abstractmethod
    def last_ingest(self) -> float | None:
        """When a document was last written (epoch seconds)."""

    @abstractmethod
    def size_on_disk(self) -> int:
        """Bytes the index takes where it is stored."""

    @property
    @abstractmethod
    def generation(self) -> int:
        """The committed state a reader sees; grows with every commit that changed something."""

    @abstractmethod
    def close(self) -> None:
        """Release what the store holds open."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreWriter(ABC):
    """What writing one named index needs (ingest): documents replaced, removed or
    touched, then made visible to readers all at once by `commit()`."""

    @abstractmethod
    def replace_file(self, record: FileRecord, batches: Batches) -> int:
        """Put one document's chunks in place of its old ones, atomically; returns how many.

        `batches` may be a generator; if it raises, nothing of the document changes."""

    @abstractmethod
    def remove_file(self, path: str) -> int:
        """Forget one document; returns how many chunks it had."""

    @abstractmethod
    def touch_file(self, record: FileRecord) -> None:
        """Record a new mtime, name and hash for a document, its chunks as they are: for
        content that did not change, or, with an empty hash, to have the next ingest read
        the file again."""

    @abstractmethod
    def commit(self) -> None:
        """Make every change so far visible to readers, all at once."""


class Store(StoreReader, StoreWriter):
    """One named index, as a catalog opens it: read (`StoreReader`) and, unless opened
    read-only, written (`StoreWriter`). Writers change documents and `commit()`; readers
    `search()` the last committed state and follow new commits by themselves."""


class Catalog(ABC):
    """The named indexes of one backend."""

    @abstractmethod
    def names(self) -> list[str]:
        """Existing index names, sorted."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether an index of that name exists."""

    @abstractmethod
    def open(self, name: str, *, readonly: bool = False) -> Store:
        """Open an existing index (IndexNotFoundError if there is none)."""

    @abstractmethod
    def create(self, name: str, manifest: Manifest) -> Store:
        """Create an index (the caller holds its lock)."""

    @abstractmethod
    def lock(self, name: str) -> AbstractContextManager[None]:
        """Exclusive right to write to (or delete) one index; IndexLockedError if taken."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Delete an index, under its lock."""

    @abstractmethod
    def manifest(self, name: str) -> Manifest | None:
        """The manifest of the index now under that name, or None; cheap to ask."""

    def identity(self, name: str) -> str | None:
        """The identity of the index now under that name, or None."""
        manifest = self.manifest(name)
        return None if manifest is None else manifest.id
