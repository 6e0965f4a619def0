"""Keys with a scope and a role, kept in a SQLite file as salted hashes.

    store = KeyStore(keys_path(settings))
    secret = store.create("hr-bot", "read", ["hr"])   # shown once, never stored
    store.authenticate(secret.encode())               # Principal("hr-bot", "read", {"hr"})

A secret reads `rag_<id>_<secret>`: the id finds the one row whose scrypt hash is checked
(salted, compared in constant time). A verified secret is remembered for a minute by its
SHA-256, so that a request does not pay scrypt's 50 ms; the row itself is read on every
request, so a key revoked or expired stops working at once, in a running server too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast, get_args

from rag.config import Settings
from rag.errors import ConfigError
from rag.store import check_index_name

Role = Literal["read", "ingest", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
ALL = "*"  # the scope of a key that sees every index

_PREFIX = "rag"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# scrypt's interactive cost (N=2^14, r=8: 16 MB, tens of milliseconds): the secret is 256
# random bits, so the hash is a second wall, not the first.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_CACHE_SECONDS = 60.0
_CACHE_SIZE = 1024
_LAST_USED_EVERY = 60.0  # seconds between two writes of a key's last use

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    indexes TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created REAL NOT NULL,
    last_used REAL,
    expires REAL
)
"""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a key's name, its role, and the indexes it may see
    (None: every one)."""

    name: str
    role: Role
    indexes: frozenset[str] | None

    def may(self, role: Role) -> bool:
        """Whether this key's role includes `role` (read < ingest < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as `rag keys list` shows it: never its secret nor its hash."""

    name: str
    role: Role
    indexes: tuple[str, ...] | None
    created: float
    last_used: float | None
    expires: float | None


def keys_path(settings: Settings) -> Path:
    """The key store's file: `server.keys_file`, else keys.sqlite in indexes_dir (a file,
    which index listings, made of folders, never take for an index)."""
    return settings.server.keys_file or settings.indexes_dir / "keys.sqlite"


def parse_expiry(text: str) -> float:
    """A date (YYYY-MM-DD: the key expires as that day begins, UTC) or an ISO date and time,
    as epoch seconds; ConfigError if it cannot be read or is past."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--expires {text!r}: give a date as YYYY-MM-DD") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() <= time.time():
        raise ConfigError(f"--expires {text!r} is already past")
    return moment.timestamp()


def parse_indexes(text: str) -> tuple[str, ...] | None:
    """`hr,manual` as its names, `*` as None (every index)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == [ALL]:
        return None
    if not names or ALL in names:
        raise ConfigError("--indexes: give index names separated by commas, or '*' for every index")
    return tuple(sorted({check_index_name(n) for n in names}))


class KeyStore:
    """The keys of one SQLite file. The file is created by the first key; until then the
    store is not in use and nothing is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._verified: dict[bytes, tuple[str, float]] = {}  # sha256(token) -> (id, until)
        self._written: dict[str, float] = {}  # id -> when its last use was written

    # -- managing ------------------------------------------------------------------------

    def create(
        self, name: str, role: Role, indexes: Iterable[str] | None, expires: float | None = None
    ) -> str:
        """A new key; its secret is returned once and only its salted hash is kept."""
        if not _NAME.fullmatch(name):
            raise ConfigError(f"invalid key name {name!r}: 1 to 64 letters, digits, '_', '.' or '-'")
        if role not in ROLES:
            raise ConfigError(f"invalid role {role!r}: one of {', '.join(ROLES)}")
        scope = ALL if indexes is None else ",".join(sorted(set(indexes)))
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._connection(create=True) as held:
            db = cast(sqlite3.Connection, held)  # created if it was not there
            try:
                db.execute(
                    "INSERT INTO keys (id, name, role, indexes, salt, hash, created, expires)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key_id, name, role, scope, salt, _hash(secret, salt), time.time(), expires),
                )
            except sqlite3.IntegrityError:
                raise ConfigError(f"a key named {name!r} exists; revoke it first") from None
        return f"{_PREFIX}_{key_id}_{secret}"

    def list(self) -> list[KeyInfo]:
        """Every key, by name."""
        with self._connection() as db:
            if db is None:
                return []
            rows = db.execute(
                "SELECT name, role, indexes, created, last_used, expires FROM keys ORDER BY name"
            ).fetchall()
        return [
            KeyInfo(name, cast(Role, role), None if idx == ALL else tuple(idx.split(",")), c, used, exp)
            for name, role, idx, c, used, exp in rows
        ]

    def revoke(self, name: str) -> bool:
        """Delete the key; False if there was none of that name."""
        with self._connection() as db:
            if db is None:
                return False
            return db.execute("DELETE FROM keys WHERE name = ?", (name,)).rowcount > 0

    def in_use(self) -> bool:
        """Whether the store exists: once a key was made, the service wants a key even when
        every one has been revoked (revoking the last key never opens it to everyone)."""
        return self._db is not None or self.path.is_file()

    # -- checking ------------------------------------------------------------------------

    def authenticate(self, token: bytes) -> Principal | None:
        """The key's principal, or None for a token that is no live key of this store."""
        digest = hashlib.sha256(token).digest()
        now = time.time()
        cached = self._verified.get(digest)
        key_id = _split(token)[0] if cached is None else cached[0]
        if key_id is None:
            return None
        with self._connection() as db:
            row = None
            if db is not None:
                row = db.execute(
                    "SELECT name, role, indexes, salt, hash, expires FROM keys WHERE id = ?", (key_id,)
                ).fetchone()
            if cached is None or cached[1] < time.monotonic():
                secret = _split(token)[1] or ""
                # A missing id costs a hash all the same: the time taken does not tell it.
                salt, stored = (row[3], row[4]) if row is not None else (b"0" * 16, b"")
                if not hmac.compare_digest(_hash(secret, salt), stored) or row is None:
                    self._verified.pop(digest, None)
                    return None
                if len(self._verified) >= _CACHE_SIZE:
                    self._verified.clear()
                self._verified[digest] = (key_id, time.monotonic() + _CACHE_SECONDS)
            if row is None:  # revoked since it was verified
                self._verified.pop(digest, None)
                return None
            name, role, indexes, _, _, expires = row
            if expires is not None and expires <= now:
                return None
            if now - self._written.get(key_id, 0.0) >= _LAST_USED_EVERY and db is not None:
                self._written[key_id] = now
                db.execute("UPDATE keys SET last_used = ? WHERE id = ?", (now, key_id))
        scope = None if indexes == ALL else frozenset(indexes.split(","))
        return Principal(name, cast(Role, role), scope)

    # -- the file --------------------------------------------------------------------------

    def _connection(self, *, create: bool = False) -> _Held:
        return _Held(self, create)

    def _open(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            if not create and not self.path.is_file():
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            self.path.chmod(0o600)  # hashes only, but nobody else's business either
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class _Held:
    """The store's connection (None while the file does not exist), under its lock."""

    def __init__(self, store: KeyStore, create: bool) -> None:
        self.store, self.create = store, create

    def __enter__(self) -> sqlite3.Connection | None:
        self.store._lock.acquire()
        try:
            return self.store._open(self.create)
        except BaseException:
            self.store._lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        self.store._lock.release()


def _split(token: bytes) -> tuple[str | None, str | None]:
    """(id, secret) of a token shaped `rag_<id>_<secret>`, else (None, None)."""
    try:
        prefix, key_id, secret = token.decode("ascii").split("_", 2)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if prefix != _PREFIX or not re.fullmatch(r"[0-9a-f]{16}", key_id):
        return None, None
    return key_id, secret


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 2**20, dklen=32
    )
