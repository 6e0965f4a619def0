"""What an index was built with; opening it with something else is refused."""

from __future__ import annotations

import time
import uuid

from pydantic import BaseModel, Field

from rag.errors import IndexMismatchError

FORMAT_VERSION = 2


class Manifest(BaseModel):
    """Recorded when an index is created. `id` is new at every creation, so a reader never
    takes a re-created index for the one it had open."""

    format_version: int = FORMAT_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    embedder_kind: str = "sentence-transformers"
    embedder: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    encoding: str
    chunk_context: bool = False  # chunks embedded and indexed with their title header
    created_at: float = Field(default_factory=time.time)

    def check_embedder(self, kind: str, name: str, dimension: int | None = None) -> None:
        """Refuse an embedder other than the one the index was built with."""
        same = (self.embedder_kind, self.embedder) == (kind, name) and (
            dimension is None or dimension == self.dimension
        )
        if not same:
            built = f"{self.embedder_kind}:{self.embedder} ({self.dimension} dimensions)"
            given = f"{kind}:{name}" + (f" ({dimension})" if dimension is not None else "")
            raise IndexMismatchError(
                f"index was built with embedder {built}, not {given}; "
                "re-ingest into a new index or set embedder.kind/embedder.model back"
            )
