"""GET / and /static/...: the web page, served from the package's `api/static` folder.

The page loads without a key (it is where the key is entered); every API call it makes
sends the key like any other client. Nothing is fetched from elsewhere: it works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import ApiError

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The page's own files only, inline scripts none: document text is never run as code.
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Never in another site's frame, nor reachable from a window another site opened.
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


# Plain functions, run in FastAPI's threads: the folder is listed from the disk.
@router.get("/")
def page() -> FileResponse:
    return _file("index.html")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    return _file(name)


def _file(name: str) -> FileResponse:
    # Only the files that are there: a name is looked up, never joined into a path.
    files = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in _TYPES}
    path = files.get(name)
    if path is None:
        raise ApiError(404, f"no file {name!r}", "not_found_error")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)
