"""Files uploaded to POST /ingest: size-limited, names checked, stored in the index's folder.

Uploads for index NAME are kept in `server.upload_dir/NAME/`, under the relative name they
were sent with (simple subfolders allowed). Every name is checked before anything is
written; each file is written under a hidden temporary name and renamed into place, so an
ingest running meanwhile never reads half a file. A file sent again replaces the old one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive

from api import paths
from rag.config import Settings
from rag.errors import InvalidRequestError, PayloadTooLargeError

MAX_FILES = 1000
MAX_FIELDS = 100
COPY_BYTES = 1 << 20


def limit_bytes(settings: Settings) -> int:
    return settings.server.max_upload_mb * 1024 * 1024


def limited(request: Request, limit: int) -> Request:
    """The same request, refused with PayloadTooLargeError once its body passes `limit` bytes
    (checked on the declared length first, then on what really arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(_too_large(limit))
    return Request(request.scope, _counting(request.receive, limit))


async def receive(request: Request, settings: Settings) -> tuple[str, Path, dict[str, Any]]:
    """Store the uploaded files; returns the index, the folder to ingest and the job's source."""
    form = await limited(request, limit_bytes(settings)).form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    try:
        index, files = _parts(form, settings.index)
        folder = await run_in_threadpool(_store, settings.server.upload_dir, index, files)
    finally:
        await form.close()
    return index, folder, {"type": "upload", "files": [str(name) for name, _ in files]}


def _parts(form: FormData, default_index: str) -> tuple[str, list[tuple[PurePosixPath, UploadFile]]]:
    index = default_index
    files: list[tuple[PurePosixPath, UploadFile]] = []
    for key, value in form.multi_items():
        if key == "index":
            if not isinstance(value, str):
                raise InvalidRequestError("index: expected a text field, not a file")
            index = value
        elif key == "files":
            if not isinstance(value, UploadFile):
                raise InvalidRequestError("files: expected files, not text fields")
            name = paths.upload_name(value.filename or "")
            if any(name == seen for seen, _ in files):
                raise InvalidRequestError(f"file {str(name)!r} is sent twice")
            files.append((name, value))
        else:
            raise InvalidRequestError(f"unknown field {key!r}: send `files` and, optionally, `index`")
    if not files:
        raise InvalidRequestError("no files: send one or more `files` parts")
    return paths.index_name(index), files


def _taken(target: Path, folder: Path) -> bool:
    """A folder where the file goes, or a file where one of its folders goes."""
    return target.is_dir() or any(p.exists() and not p.is_dir() for p in _folders(target, folder))


def _folders(target: Path, folder: Path) -> Iterator[Path]:
    """The folders `target` needs, from its own up to `folder` included."""
    for parent in target.parents:
        yield parent
        if parent == folder:
            return


def _store(upload_dir: Path, index: str, files: list[tuple[PurePosixPath, UploadFile]]) -> Path:
    """(In a thread: it reads and writes the disk.) The files in the index's folder of the
    uploads, each whole or not at all; returns the folder."""
    folder = upload_dir.resolve() / index
    targets = []
    for name, upload in files:
        target = paths.upload_target(folder, name)
        if _taken(target, folder):
            raise InvalidRequestError(f"file {str(name)!r} clashes with a folder or file of the uploads")
        targets.append((target, upload))
    for target, upload in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".upload-{uuid.uuid4().hex}.part")  # hidden: never ingested
        try:
            with open(part, "xb") as out:
                upload.file.seek(0)
                shutil.copyfileobj(upload.file, out, COPY_BYTES)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
    return folder


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLargeError(_too_large(limit))
        return message

    return counted


def _too_large(limit: int) -> str:
    return f"the request is larger than the {limit // (1024 * 1024)} MB allowed (server.max_upload_mb)"
