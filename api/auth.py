"""Who sends a request, and what it may do: bearer keys, roles and failed-key limits.

Keys come from two places: `server.api_keys` (each an admin on every index, as before
scopes existed) and the key store (`api.keys`, managed with `rag keys`). With neither, the
service is open as it always was. Otherwise a request without a key is a 401; a key that
lacks the role a route needs, a 403; an index outside the key's scope answers 404, as a
missing one (`rag.access`, set here for the rest of the request).

A client address that sends wrong keys `server.auth_failures` times in a minute gets 429
for the rest of that minute, the right key included: guessing learns nothing more.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request
from pydantic import SecretStr

from api.errors import ApiError
from api.keys import KeyStore, Principal, Role, keys_path
from api.observability import note
from rag.access import scoped
from rag.config import Settings

#: The principal of a service without keys: everything, as before keys existed.
OPEN = Principal("-", "admin", None)
WINDOW = 60.0  # seconds over which failed attempts are counted


class FailureLimiter:
    """Failed key attempts per client address, over a sliding minute."""

    def __init__(self, limit: int, window: float = WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again; None if it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return None
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._failures[address]
                return None
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # addresses whose minute has passed
                self._failures = {a: t for a, t in self._failures.items() if t and t[-1] > now - self.window}
            self._failures.setdefault(address, deque()).append(now)


class Authenticator:
    """The keys of one app: those of the settings and those of the key store."""

    def __init__(self, settings: Settings) -> None:
        self.settings_keys: list[SecretStr] = list(settings.server.api_keys)
        self.store = KeyStore(keys_path(settings))
        self.limiter = FailureLimiter(settings.server.auth_failures)

    def principal(self, request: Request) -> Principal:
        """The request's principal, or ApiError 401 (no or wrong key) or 429 (too many
        wrong keys from its address)."""
        if not self.settings_keys and not self.store.in_use():
            return OPEN
        header = next((v for k, v in request.headers.raw if k == b"authorization"), b"")
        scheme, _, token = header.strip().partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            raise ApiError(
                401,
                "missing API key: send Authorization: Bearer KEY",
                "invalid_request_error",
                "invalid_api_key",
            )
        address = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(address)
        if wait is not None:
            raise ApiError(
                429,
                "too many wrong API keys from this address; retry later",
                "rate_limit_error",
                "too_many_auth_failures",
                headers={"Retry-After": str(wait)},
            )
        found = self._settings_key(token) or self.store.authenticate(token)
        if found is None:
            self.limiter.failed(address)
            raise ApiError(401, "invalid API key", "invalid_request_error", "invalid_api_key")
        return found

    def _settings_key(self, token: bytes) -> Principal | None:
        # Every key is compared, so that the time taken does not tell which one came close.
        matches = [secrets.compare_digest(token, k.get_secret_value().encode()) for k in self.settings_keys]
        return Principal(f"api_keys[{matches.index(True)}]", "admin", None) if any(matches) else None


async def require_key(request: Request) -> Principal:
    """The request's principal, its index scope set for the rest of the request (a
    coroutine: what a dependency run in a thread sets would not reach the route)."""
    auth: Authenticator = request.app.state.auth
    principal = auth.principal(request)
    request.state.principal = principal
    scoped(principal.indexes)
    if principal is not OPEN:
        note(request, key=principal.name)  # the key's name: its secret is never logged
    return principal


def requires(role: Role) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency refusing (403) a key whose role is below `role`."""

    async def check(request: Request) -> None:
        principal: Principal = request.state.principal
        if not principal.may(role):
            raise ApiError(
                403,
                f"this key's role ({principal.role}) may not do this; it needs {role}",
                "permission_error",
                "insufficient_role",
            )

    return check


def role(role_: Role) -> Any:
    """`Depends(requires(role))`, for a route's `dependencies`."""
    return Depends(requires(role_))
