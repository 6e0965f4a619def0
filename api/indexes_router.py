"""GET /indexes: every index with its size, for the web page and for clients."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import PipelineDep
from api.keys import Principal
from rag.access import visible
from rag.errors import IndexNotFoundError
from rag.store import Catalog, StoreReader

router = APIRouter(tags=["indexes"])


class IndexOut(BaseModel):
    name: str
    files: int = Field(description="Documents in the index.")
    chunks: int = Field(description="Chunks a search can return.")
    size_bytes: int = Field(description="Bytes the index takes on disk.")
    last_ingest: float | None = Field(description="When a document was last written (epoch seconds).")


class IndexList(BaseModel):
    object: str = "list"
    default: str | None = Field(
        description="The index used when a request names none; null if the key may not see it."
    )
    data: list[IndexOut]
    role: str = Field(
        "admin",
        description="What the request's key may do: read (ask, search), ingest (also add "
        "documents), admin (also create indexes); admin when the service has no keys.",
    )


@router.get("/indexes", response_model=IndexList)
async def indexes(pipeline: PipelineDep, request: Request) -> dict[str, Any]:
    """The indexes, sorted by name, with their files, chunks and size on disk."""
    # The names the request's key may see; listed in the thread, which keeps its scope.
    data = await to_thread.run_sync(lambda: _describe_all(pipeline.catalog, pipeline.index_names()))
    default = next(iter(visible([pipeline.settings.index])), None)
    principal: Principal = request.state.principal
    return {"object": "list", "default": default, "data": data, "role": principal.role}


def _describe_all(catalog: Catalog, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        try:
            store: StoreReader = catalog.open(name, readonly=True)
        except IndexNotFoundError:  # deleted between the listing and the opening
            continue
        try:
            rows.append(
                {
                    "name": name,
                    "files": len(store.files()),
                    "chunks": store.chunk_count(),
                    "size_bytes": store.size_on_disk(),
                    "last_ingest": store.last_ingest(),
                }
            )
        except IndexNotFoundError:  # ... or while it was being read
            continue
        finally:
            store.close()
    return rows
