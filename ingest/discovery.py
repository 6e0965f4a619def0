"""Which files an ingest run reads: the walk of a folder, links followed without loops
(and never out of the allowed folders), and the indexed documents no longer there.

A document's key is the path its file was read at (`key`); every comparison of what was
found with what is indexed is made on keys. A document is gone only when its folder was
listed whole and its file is not in it: a folder that could not be listed (or entered),
or a file that could not be stat'ed, keeps its documents (`Found.kept`) and is reported
as failed, once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.report import FileOutcome
from rag.store import FileRecord
from rag.util import readable, redact_paths, undecodable

UNDECODABLE = "name is not valid UTF-8"


@dataclass
class Found:
    """What a walk found besides the files to read: the outcomes to report, and the keys
    whose documents stay though they were not read (their file or folder failed)."""

    base: Path  # what shown paths are relative to
    outcomes: list[FileOutcome] = field(default_factory=list)
    kept: set[str] = field(default_factory=set)

    def failed(self, path: Path, reason: str) -> None:
        self.outcomes.append(FileOutcome(relative(path, self.base), "failed", reason=reason, key=key(path)))
        self.kept.add(key(path))

    def skipped(self, path: Path, reason: str) -> None:
        self.outcomes.append(FileOutcome(relative(path, self.base), "skipped", reason=reason, key=key(path)))


def walk(root: Path, found: Found, allowed: list[Path] | None) -> Iterator[Path]:
    """Files under root, sorted, hidden ones skipped, symlinks followed without looping
    (and, with `allowed`, never out of those folders)."""
    if os.path.isfile(root):
        yield root
        return
    visited: set[tuple[int, int]] = set()

    def onerror(exc: OSError) -> None:  # a folder not listed (or not whole): its documents stay
        found.failed(root if exc.filename is None else Path(os.fsdecode(exc.filename)), os_reason(exc))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            found.failed(Path(dirpath), os_reason(exc))
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = [d.name for d in _kept(Path(dirpath), dirnames, found, allowed)]
        yield from _kept(Path(dirpath), filenames, found, allowed)


def unreachable(path: Path, exc: OSError) -> str:
    """Why a file listed in its folder cannot be stat'ed."""
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ELOOP:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return "broken symlink or symlink loop"
    return os_reason(exc)


def _kept(folder: Path, names: Iterable[str], found: Found, allowed: list[Path] | None) -> Iterator[Path]:
    """The entries of a folder the walk goes into, sorted: not hidden, named in UTF-8, and
    (with `allowed`) not leading out of those folders."""
    for name in sorted(names):
        if name.startswith("."):
            continue
        path = folder / name
        if undecodable(name):
            found.skipped(path, UNDECODABLE)
        elif allowed is not None and not inside(path.resolve(), allowed):
            found.skipped(path, "links outside the allowed folders")
        else:
            yield path


def missing(known: dict[str, FileRecord], root: Path, present: set[str]) -> list[str]:
    """Keys of indexed documents under `root` that are no longer there. A document is there
    while its key, its file's (`<file>/<attachment>`) or one of its folders' is in `present`."""

    def there(k: str) -> bool:
        return k in present or any(k.startswith(p + "/") for p in _parents(k, present))

    if os.path.isfile(root):
        return [p for p in known if p == key(root) and not there(p)]
    prefix = key(root).rstrip("/") + "/"
    return sorted(p for p in known if p.startswith(prefix) and not there(p))


def _parents(key: str, present: set[str]) -> list[str]:
    parts = key.split("/")
    return [p for p in ("/".join(parts[:i]) for i in range(len(parts) - 1, 1, -1)) if p in present]


def key(path: Path) -> str:
    """The key of the document read at `path`."""
    return str(path)


def inside(path: Path, allowed: Sequence[Path]) -> bool:
    return any(path == a or path.is_relative_to(a) for a in allowed)


def relative(path: Path, base: Path) -> str:
    """How clients are shown a document: relative to the folder above the ingested root
    (bytes that are not UTF-8 written `\\xNN`)."""
    try:
        return readable(path.relative_to(base).as_posix())
    except ValueError:
        return readable(path.name)


def os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file disappeared during ingest"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or redact_paths(str(exc))
