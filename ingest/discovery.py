"""Which files an ingest run reads: the walk of a folder, links followed without loops
(and never out of the allowed folders), and the indexed documents no longer there."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ingest.report import FileOutcome
from rag.store import FileRecord
from rag.util import redact_paths


def walk(root: Path, early: list[FileOutcome], allowed: list[Path] | None) -> Iterator[Path]:
    """Files under root, sorted, hidden ones skipped, symlinks followed without looping
    (and, with `allowed`, never out of those folders)."""
    base = root.parent
    if root.is_file():
        yield root
        return
    visited: set[tuple[int, int]] = set()

    def onerror(exc: OSError) -> None:
        early.append(FileOutcome(relative(Path(str(exc.filename)), base), "failed",
                                 reason=os_reason(exc)))  # fmt: skip

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        try:
            st = os.stat(dirpath)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if allowed is not None and not inside((Path(dirpath) / d).resolve(), allowed):
                early.append(FileOutcome(relative(Path(dirpath) / d, base), "skipped",
                                         reason="links outside the allowed folders"))  # fmt: skip
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.is_symlink() and not path.exists():
                reason = "broken symlink or symlink loop"
                try:
                    path.resolve(strict=True)
                    reason = "broken symlink"
                except (OSError, RuntimeError):
                    pass
                early.append(FileOutcome(relative(path, base), "failed", reason=reason))
                continue
            if allowed is not None and not inside(path.resolve(), allowed):
                early.append(FileOutcome(relative(path, base), "skipped",
                                         reason="links outside the allowed folders"))  # fmt: skip
                continue
            yield path


def missing(known: dict[str, FileRecord], root: Path, present: set[str]) -> list[str]:
    """Keys of indexed documents under `root` that are no longer there. A document inside
    a file (`<file>/<attachment>`) is there while its file is."""

    def there(key: str) -> bool:
        return key in present or any(key.startswith(p + "/") for p in _parents(key, present))

    if root.is_file():
        return [p for p in known if p == str(root) and not there(p)]
    prefix = str(root).rstrip("/") + "/"
    return sorted(p for p in known if p.startswith(prefix) and not there(p))


def _parents(key: str, present: set[str]) -> list[str]:
    parts = key.split("/")
    return [p for p in ("/".join(parts[:i]) for i in range(len(parts) - 1, 1, -1)) if p in present]


def inside(path: Path, allowed: Sequence[Path]) -> bool:
    return any(path == a or path.is_relative_to(a) for a in allowed)


def relative(path: Path, base: Path) -> str:
    """How clients are shown a document: relative to the folder above the ingested root."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.name


def os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file disappeared during ingest"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or redact_paths(str(exc))
