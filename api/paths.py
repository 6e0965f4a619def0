"""Where POST /ingest may read and write.

An uploaded file's name is a relative path that must stay inside its index's upload
folder: no absolute path, no `..`, no backslash, no control character (C0, DEL or C1; NUL
and line breaks included), no hidden component. A path to ingest must be valid UTF-8 (as
every name an ingest stores) and resolve, symbolic links followed, inside one of
`server.ingest_roots`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ingest.loaders import loader_for
from rag.errors import ForbiddenPathError, InvalidRequestError
from rag.store import check_index_name
from rag.util import undecodable

MAX_NAME_BYTES = 255  # of one path component, as most file systems allow
MAX_DEPTH = 16


def index_name(name: str) -> str:
    """An index name that is also a safe folder name (the one rule, `check_index_name`)."""
    return check_index_name(name)


def upload_name(raw: str) -> PurePosixPath:
    """The relative path an uploaded file is stored under, or InvalidRequestError."""
    if not raw.strip():
        raise InvalidRequestError("an uploaded file has no name")
    if raw.startswith("/"):  # not echoed: it would name a folder of the server
        raise InvalidRequestError("an uploaded file's name is an absolute path; send a relative one")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in raw):  # Cs: not valid UTF-8
        raise InvalidRequestError(f"file name {raw!r} contains a control character")
    if "\\" in raw:
        raise InvalidRequestError(f"file name {raw!r} contains a backslash")
    parts = raw.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidRequestError(f"file name {raw!r} has an empty, '.' or '..' component")
    if any(p.startswith(".") for p in parts):
        raise InvalidRequestError(f"file name {raw!r} is hidden; hidden files are not ingested")
    if len(parts) > MAX_DEPTH or any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
        raise InvalidRequestError(f"file name {raw[:60]!r}... is too long or too deep")
    name = PurePosixPath(*parts)
    if loader_for(Path(name.name)) is None:
        raise InvalidRequestError(f"file {raw!r}: unsupported file type {name.suffix or '(none)'!r}")
    return name


def upload_target(folder: Path, name: PurePosixPath) -> Path:
    """Where `name` goes in `folder`; refused if a link on the way leads out of it."""
    target = folder.joinpath(*name.parts)
    if not target.parent.resolve().is_relative_to(folder.resolve()):
        raise ForbiddenPathError(f"file name {str(name)!r} leads outside the upload folder")
    return target


def allowed_path(raw: str, roots: Sequence[Path]) -> Path:
    """The resolved path to ingest, if it lies inside one of `roots`. What is refused is
    said without the path: only one inside a root is named, relative to it."""
    if not roots:
        raise ForbiddenPathError(
            "ingesting a path on the server is disabled: set server.ingest_roots to allow it"
        )
    if "\0" in raw:
        raise InvalidRequestError("path contains a NUL character")
    if undecodable(raw):
        raise InvalidRequestError(f"path {raw!r} is not valid UTF-8")
    path = Path(raw)
    if not path.is_absolute():
        raise InvalidRequestError(f"path {raw!r} is not absolute")
    resolved = path.resolve()
    root = next((r.resolve() for r in roots if resolved.is_relative_to(r.resolve())), None)
    if root is None:
        raise ForbiddenPathError(
            "the path is outside the folders the server may ingest (server.ingest_roots)"
        )
    if not resolved.exists():
        shown = resolved.relative_to(root).as_posix()
        raise InvalidRequestError(f"nothing at {shown!r} in the folder {root.name!r} the server may ingest")
    return resolved
