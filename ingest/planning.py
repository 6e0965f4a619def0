"""What an ingest run has to do: the folder discovered and compared with the index.

Incremental: a file whose size and mtime are unchanged is not read (only opened: one
that can no longer be read is a failure); one whose content hash is unchanged is not
re-embedded; a changed file's chunks are replaced; files gone from a folder listed whole
are removed, and nothing of a folder or file that could not be read (`ingest.discovery`).
The files found are compared by size and mtime, and by hash, on the reader thread
(`ingest.reading`), as they come.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from ingest.discovery import Found, key, missing, relative, unreachable, walk
from ingest.loaders import loader_for
from ingest.report import FileOutcome, Status
from rag.store import FileRecord


@dataclass
class FileEntry:
    key: str  # its document's key in the index
    name: str  # as shown

    def outcome(self, status: Status, chunks: int = 0, reason: str = "") -> FileOutcome:
        return FileOutcome(self.name, status, chunks, reason, key=self.key)


@dataclass
class Candidate(FileEntry):
    """A file found, to be read unless the index holds it as it is."""

    path: Path
    size: int
    mtime: float


def discover(root: Path, found: Found, allowed: list[Path] | None, skip: Path) -> list[Candidate]:
    """The files under `root` an ingest may read, in order; what cannot be read goes to
    `found`. Nothing under `skip` (the indexes' folder) is ingested."""
    candidates: list[Candidate] = []
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
            candidates.append(Candidate(key(path), shown, path, st.st_size, st.st_mtime))
    return candidates


def gone(known: dict[str, FileRecord], root: Path, candidates: list[Candidate], found: Found) -> list[str]:
    """Keys of the indexed documents under `root` to remove: neither found nor kept."""
    return missing(known, root, {c.key for c in candidates} | found.kept)


def same_stat(old: FileRecord, cand: Candidate) -> bool:
    """Whether the index holds the file with its size and mtime: it is not read again."""
    return old.size == cand.size and old.mtime == cand.mtime


def stale_parts(known: dict[str, FileRecord], file_key: str, parts: set[str]) -> list[str]:
    """Keys of the documents indexed inside a file (an e-mail's attachments) that are not
    among `parts`, those of its new version."""
    return [k for k in known if k.startswith(file_key + "/") and k not in parts]


def file_hash(path: Path) -> str:
    """The file's SHA-256, read through one small buffer (a fresh megabyte per read
    costs more than hashing a small file)."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()
