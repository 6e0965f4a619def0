"""Optional abilities a backend declares beside the store role's contracts (`rag.store.base`);
their users check them with `isinstance`.

    SharedIngest    a store several ingest workers write at once: `claims(owner, lease)`
                    gives one worker leases on files (`FileLeases`: take, release)
    SharedLocks     a catalog whose write lock several workers hold at once: `lock_shared`

A backend without them keeps one writer per index at a time (the catalog's exclusive
`lock`), which goes through every file it found in one round.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from rag.store.base import FileRecord


@dataclass(frozen=True)
class Wanted:
    """A file a worker found: its key, size and modification time."""

    path: str
    size: int
    mtime: float


@dataclass
class Taken:
    """What one claim gave: files now this worker's, files already done (their current
    records), and files another worker holds."""

    claimed: list[str]
    done: dict[str, FileRecord]
    held: list[str]


class FileLeases(ABC):
    """One ingest worker's leases on the files of one index."""

    @abstractmethod
    def take(self, wanted: Sequence[Wanted], limit: int) -> Taken:
        """Claim up to `limit` of the wanted files that are neither done nor held."""

    @abstractmethod
    def release(self) -> None:
        """Give back every file this worker holds."""


class SharedIngest(ABC):
    """A store that several ingest workers write at once, each on files it claims."""

    @abstractmethod
    def claims(self, owner: str, lease: float) -> FileLeases:
        """One worker's (`owner`) claims on files, each running out `lease` seconds after it
        was taken (the files of a worker that died are free again)."""


class SharedLocks(ABC):
    """A catalog whose write lock several ingest workers can hold at once."""

    @abstractmethod
    def lock_shared(self, name: str) -> AbstractContextManager[None]:
        """The right to write to an index beside other workers (not beside a deletion)."""
