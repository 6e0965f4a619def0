"""Only the server's own page, and origins configured on purpose, may call it from a browser.

Without keys (the default) anything that can reach the port may use the API, and a web
page the user happens to visit can reach `127.0.0.1`: a form, or `fetch` in `no-cors`
mode, sends a multipart or text/plain POST to another origin without asking it first (no
CORS preflight), and the server would ingest what it is sent. So `OriginGuard`, before
anything is read:

- refuses (403) every request that may change something (any method but GET, HEAD and
  OPTIONS; answering routes are POSTs too) that a browser sends from another site:
  `Sec-Fetch-Site` other than `same-origin` or `none`, or, from browsers that do not send
  it, an `Origin` that is not the server's own (scheme, host and port). `Origin: null`
  (sandboxed frames, local files) is always refused. Origins in `server.cors_origins`
  pass, and get their CORS headers from CORSMiddleware. Clients that are not browsers
  send neither header and are not concerned;
- refuses (415) a body that is not declared JSON (or multipart, where files are taken):
  the types a page may send elsewhere without a preflight are never read as JSON;
- without keys, answers only to a Host a page on the web cannot be given (400): an IP
  address, `localhost` and names under it, a name of one label (an intranet host) or one
  in `server.allowed_hosts`. Otherwise a page on evil.example, once that name resolves to
  this machine (DNS rebinding), would be same-origin with the server;
- marks every response as not to be framed nor read by another site's page
  (X-Frame-Options, Cross-Origin-Resource-Policy, X-Content-Type-Options).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from email.message import Message as MimeType
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from api.observability import note
from rag.config import ServerSettings, Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: What a browser says of a request the user or the server's own page made.
_OWN_SITE = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_RESPONSE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class OriginGuard:
    """ASGI middleware: see the module. Reads the settings at each request, as the key
    check does. Multipart bodies are taken on `uploads` paths only."""

    def __init__(self, app: ASGIApp, settings: Settings, uploads: Sequence[str] = ()) -> None:
        self.app = app
        self.settings = settings
        self.uploads = set(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _RESPONSE_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, marked)
            return
        response = error_response(refusal.status, refusal.message, refusal.type, refusal.code)
        await response(scope, receive, marked)

    def _refusal(self, scope: Scope, headers: Headers) -> ApiError | None:
        """Why the request is refused, or None."""
        server = self.settings.server
        host = headers.get("host", "")
        if not _answers_to(host, server):
            why = (
                f"this server does not answer to the name {_name(host)!r}: add it to "
                "server.allowed_hosts (or set server.api_keys), or use its address"
            )
            return _refused(scope, 400, "invalid_host", why, host=host)
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if _cross_site(scope["scheme"], host, origin, headers.get("sec-fetch-site"), server.cors_origins):
            where = origin or "another site"
            why = (
                f"a browser request from {where} is refused: only this server's own page, and "
                "origins in server.cors_origins, may call the API from a browser"
            )
            return _refused(scope, 403, "cross_site_request", why, origin=where)
        kind = headers.get("content-type")
        files = scope["path"] in self.uploads
        if _has_body(headers) and not (_is_json(kind) or (files and _is_multipart(kind))):
            why = f"a body of type {kind or 'unknown'} is not read here: send application/json"
            why += " or multipart/form-data" if files else ""
            return _refused(scope, 415, "unsupported_media_type", why, content_type=kind or "")
        return None


def _refused(scope: Scope, status: int, code: str, message: str, **logged: str) -> ApiError:
    """The refusal, its reason and `logged` noted in the request's log line."""
    note(Request(scope), refused=code, **logged)
    return ApiError(status, message, "permission_error" if status == 403 else "invalid_request_error", code)


def _cross_site(scheme: str, host: str, origin: str | None, site: str | None, allowed: Sequence[str]) -> bool:
    if origin is not None and origin.strip().lower() == "null":
        return True
    if origin is not None and ("*" in allowed or origin.strip().rstrip("/").lower() in allowed):
        return False
    if site is not None:  # the browser's own word, right behind a proxy that rewrites the Host
        return site.strip().lower() not in _OWN_SITE
    return origin is not None and _origin(origin) != _origin(f"{scheme}://{host}")


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port, the default port written out; None when it is no origin."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname, port


def _answers_to(host: str, server: ServerSettings) -> bool:
    if "*" in server.allowed_hosts or (server.api_keys and not server.allowed_hosts):
        return True
    name = _name(host)
    if not name or name in server.allowed_hosts or "." not in name:
        return True  # no Host at all is no browser's; one label is an intranet name
    if name == "localhost" or name.endswith(".localhost"):
        return True  # browsers resolve these to loopback themselves
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _name(host: str) -> str:
    """The name of a Host header: lower case, no port, no brackets, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0].rstrip(".")


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def _media_type(value: str | None) -> tuple[str, str]:
    mime = MimeType()
    mime["content-type"] = value or ""
    return mime.get_content_maintype(), mime.get_content_subtype()


def _is_json(value: str | None) -> bool:
    main, sub = _media_type(value)
    return value is not None and main == "application" and (sub == "json" or sub.endswith("+json"))


def _is_multipart(value: str | None) -> bool:
    return value is not None and _media_type(value) == ("multipart", "form-data")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server to this machine."""
    if _name(host) == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warnings(server: ServerSettings) -> list[str]:
    """What to say at start-up of settings that open the server to others without keys."""
    if server.api_keys:
        return []
    warnings = []
    if not is_loopback(server.host):
        warnings.append(
            f"the server listens on {server.host} without API keys: anyone who can reach port "
            f"{server.port} can read, ask and ingest documents. Set server.api_keys "
            "(RAG_SERVER__API_KEYS), or bind 127.0.0.1 (a container's port published on this "
            "machine's loopback only, as docker-compose.yml does by default, is kept to it)"
        )
    if "*" in server.cors_origins:
        warnings.append(
            "server.cors_origins is '*' without API keys: any web page the user visits can ask "
            "and ingest documents. List the origins that may, or set server.api_keys"
        )
    if "*" in server.allowed_hosts:
        warnings.append(
            "server.allowed_hosts is '*' without API keys: a web page on a name made to resolve "
            "to this server (DNS rebinding) can ask and ingest documents. List the names, or set "
            "server.api_keys"
        )
    return warnings
