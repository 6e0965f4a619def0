"""The indexes directory: named index folders and their locks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.config import StoreSettings
from rag.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError, RagError
from rag.store.base import Catalog, check_index_name, not_found
from rag.store.local.store import LocalStore
from rag.store.local.vectors import fsync
from rag.store.manifest import FORMAT_VERSION, Manifest

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK = ".lock"
OPEN_ATTEMPTS = 3  # an index deleted and created again while being opened is opened anew


class LocalCatalog(Catalog):
    """Index folders under one directory."""

    def __init__(self, root: Path, settings: StoreSettings | None = None) -> None:
        self.root = root
        self.settings = settings  # the local store's vector index settings (defaults if None)

    def folder(self, name: str) -> Path:
        return self.root / check_index_name(name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()
        )

    def exists(self, name: str) -> bool:
        return (self.folder(name) / MANIFEST).is_file()

    def open(self, name: str, *, readonly: bool = False) -> LocalStore:
        folder = self.folder(name)
        for _ in range(OPEN_ATTEMPTS):
            try:
                manifest = read_manifest(folder)
            except (IndexNotFoundError, FileNotFoundError):
                raise not_found(name) from None
            try:
                store = LocalStore(folder, manifest, readonly=readonly, settings=self.settings)
            except (sqlite3.Error, OSError, IndexMismatchError):
                if self.identity(name) == manifest.id:
                    raise  # the index is there as it was read: its own failure
                continue  # deleted (and perhaps created again) while being opened
            try:
                store.check_present()  # the folder opened is the one the manifest was read from
            except IndexNotFoundError:
                store.close()
                continue
            return store
        raise not_found(name)

    def create(self, name: str, manifest: Manifest) -> LocalStore:
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        # The store first: a manifest means an index.
        store = LocalStore(folder, manifest, settings=self.settings)
        _write_json(folder / MANIFEST, manifest.model_dump())
        return store

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK, "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IndexLockedError(f"index {name!r} is being ingested by another process") from exc
            yield

    def delete(self, name: str) -> None:
        folder = self.folder(name)
        if not (folder / MANIFEST).is_file():
            raise not_found(name)
        with self.lock(name):
            # Renamed away first: from this instant the name is free and readers see it gone.
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def manifest(self, name: str) -> Manifest | None:
        try:
            return read_manifest(self.folder(name))
        except (OSError, ValueError, RagError):
            return None


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise not_found(folder.name)
    data = json.loads(path.read_text())
    version = data.get("format_version")
    if version == 1:  # the same files, without an identity: given one by the next writer
        data = {**data, "format_version": FORMAT_VERSION, "id": f"v1-{folder.name}"}
    elif version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index {folder.name!r} has format version {version}, this version reads "
            f"{FORMAT_VERSION}; re-ingest it"
        )
    return Manifest.model_validate(data)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    fsync(tmp)
    os.replace(tmp, path)
