"""GET /openapi.json, /docs and /redoc: the API's schema and its two viewers.

FastAPI's own routes for these are turned off in `create_app`, so that they are served
here, behind the API key like every other route unless `server.public_docs` is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=_schema_url(request), title=f"{request.app.title} - Swagger UI")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=_schema_url(request), title=f"{request.app.title} - ReDoc")


def _schema_url(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") + "/openapi.json"
