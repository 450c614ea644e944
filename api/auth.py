"""API keys, each scoped to a set of brands and roles.

A key is shown once when created (`tactful keys create`) and stored only as its SHA-256 (keys
are 192 random bits, so a plain hash is enough; a slow KDF would cost every request). Clients send
`Authorization: Bearer <key>` or `X-API-Key: <key>`. Roles: `suggest` (suggest, analyze, check,
search, feedback), `knowledge:write` (documents), `admin` (everything, every brand). Open mode
(no keys) exists only when `TACTFUL_AUTH=open` says so.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fastapi import Request

from api.errors import APIError

Role = Literal["suggest", "knowledge:write", "admin"]
ROLES: tuple[str, ...] = ("suggest", "knowledge:write", "admin")
PREFIX = "tk_"


@dataclass(frozen=True)
class Principal:
    key_id: str
    brands: frozenset[str]  # "*": every brand
    roles: frozenset[str]

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles

    def sees(self, brand: str | None) -> bool:
        return brand is None or "*" in self.brands or "admin" in self.roles or brand in self.brands

    def require_brand(self, brand: str | None) -> None:
        if not self.sees(brand):
            raise APIError(403, "forbidden_brand", f"this API key is not allowed to use brand {brand!r}; ask an admin for a "
                           "key scoped to it (tactful keys create --brand ...)", "brand")


OPEN = Principal(key_id="open", brands=frozenset({"*"}), roles=frozenset({"admin"}))


class KeyStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("""CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE, name TEXT, brands TEXT,
                            roles TEXT, created TEXT DEFAULT CURRENT_TIMESTAMP, revoked TEXT)""")

    def create(self, brands: list[str], roles: list[str], name: str = "") -> tuple[str, str]:
        """A new key (shown once) and its id."""
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ValueError(f"roles must be among {', '.join(ROLES)}; got {roles}")
        if not brands:
            raise ValueError("give at least one brand (or '*' for every brand)")
        key = PREFIX + secrets.token_urlsafe(24)
        key_id = "key_" + secrets.token_hex(4)
        with self._lock:
            self._db.execute("INSERT INTO keys (id, hash, name, brands, roles) VALUES (?, ?, ?, ?, ?)",
                             (key_id, _hash(key), name, json.dumps(sorted(set(brands))), json.dumps(sorted(set(roles)))))
        return key, key_id

    def list(self) -> list[dict]:
        rows = self._db.execute("SELECT id, name, brands, roles, created, revoked FROM keys ORDER BY created").fetchall()
        return [{"id": r[0], "name": r[1], "brands": json.loads(r[2]), "roles": json.loads(r[3]), "created": r[4],
                 "revoked": r[5]} for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE keys SET revoked = CURRENT_TIMESTAMP WHERE id = ? AND revoked IS NULL", (key_id,))
        return cur.rowcount == 1

    def lookup(self, key: str) -> Principal | None:
        # no cache: a key revoked from the CLI (another process) must stop working on its next request;
        # an indexed SQLite read is tens of microseconds
        with self._lock:
            row = self._db.execute("SELECT id, brands, roles FROM keys WHERE hash = ? AND revoked IS NULL", (_hash(key),)).fetchone()
        return Principal(row[0], frozenset(json.loads(row[1])), frozenset(json.loads(row[2]))) if row else None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def authorize(role: str):
    """A dependency: the caller's principal, with `role`; 401 without a valid key, 403 without the role.
    Runs on the event loop (`async def`, see api/deps.py): its one blocking call is an indexed SQLite
    read of tens of microseconds, less than the thread hand-off a plain `def` would cost."""
    async def dependency(request: Request) -> Principal:
        if request.app.state.settings.auth == "open":
            return OPEN
        key = presented_key(request)
        if key is None:
            raise APIError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
                           "(create one with `tactful keys create`)", headers={"WWW-Authenticate": "Bearer"})
        principal = request.app.state.keys.lookup(key)
        if principal is None:
            raise APIError(401, "unauthorized", "this API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(role):
            raise APIError(403, "forbidden_role", f"this API key lacks the {role!r} role")
        request.state.principal = principal
        return principal
    return dependency
