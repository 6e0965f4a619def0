"""Files uploaded to POST /ingest: size-limited, names checked, stored in the index's folder.

Uploads for index NAME are kept in `server.upload_dir/NAME/`, under the relative name they
were sent with (simple subfolders allowed). Every name is checked before anything is
written. The files are written aside, in a hidden folder of their own, and renamed into
place only once their job is admitted (`Upload.place`): an ingest running meanwhile never
reads half a file, and an upload refused (a full queue, a server shutting down) leaves
nothing behind. A file sent again replaces the old one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class Upload:
    """Files received for `index`, written aside until `place` puts them in `folder`."""

    index: str
    folder: Path
    source: dict[str, Any]  # the job's
    aside: Path
    files: list[tuple[Path, Path]] = field(default_factory=list)  # (written, its place)

    def place(self) -> None:
        for written, target in self.files:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, target)

    def discard(self) -> None:
        """Remove what was not placed."""
        shutil.rmtree(self.aside, ignore_errors=True)


async def receive(request: Request, settings: Settings) -> Upload:
    """Read and check the uploaded files and write them aside; `place` or `discard` them."""
    form = await limited(request, limit_bytes(settings)).form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    try:
        index, files = _parts(form, settings.index)
        uploads = settings.server.upload_dir.resolve()
        folder = uploads / index
        # In a thread, as the writing: it reads the disk.
        targets = await run_in_threadpool(_targets, folder, files)
        # Hidden, and beside the index folders (a name no index can have), on their disk.
        upload = Upload(
            index,
            folder,
            {"type": "upload", "files": [str(name) for name, _ in files]},
            uploads / f".upload-{uuid.uuid4().hex}",
        )
        try:
            await run_in_threadpool(_write, targets, upload)
        except BaseException:
            upload.discard()
            raise
    finally:
        await form.close()
    return upload


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


def _targets(folder: Path, files: list[tuple[PurePosixPath, UploadFile]]) -> list[tuple[Path, UploadFile]]:
    """Where each file goes in the index's folder of the uploads (none may clash)."""
    targets = []
    for name, part in files:
        target = paths.upload_target(folder, name)
        if _taken(target, folder):
            raise InvalidRequestError(f"file {str(name)!r} clashes with a folder or file of the uploads")
        targets.append((target, part))
    return targets


def _write(targets: list[tuple[Path, UploadFile]], upload: Upload) -> None:
    upload.aside.mkdir(parents=True)
    for n, (target, part) in enumerate(targets):
        written = upload.aside / f"{n}.part"
        with open(written, "xb") as out:
            part.file.seek(0)
            shutil.copyfileobj(part.file, out, COPY_BYTES)
        upload.files.append((written, target))


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
