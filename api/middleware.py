"""What every request goes through before its route: a request id, the caller's rate limit, and
idempotent retries of the POSTs that write or cost an LLM call.

Pure ASGI (not BaseHTTPMiddleware): no extra task per request, and the body is read only on the
routes where an Idempotency-Key asks for it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import logs
from api.errors import error_response
from api.metrics import observe_request

EXEMPT = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")
UPLOAD = re.compile(r"^/v1/brands/[^/]+/documents$")
IDEMPOTENT = re.compile(r"^/v1/(?:suggest|feedback|brands/[^/]+/documents)$")
IDEMPOTENCY_TTL = 24 * 3600
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


def caller_id(scope: Scope) -> str:
    """Whose budget a request spends: the API key it presents (hashed), else the client address."""
    auth = _header(scope, b"authorization") or ""
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else _header(scope, b"x-api-key")
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class TokenBucket:
    """`rate` requests per `window` seconds per caller, with bursts up to `rate`."""

    def __init__(self, rate: int, window: float = 60.0):
        self.rate, self.window = rate, window
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> tuple[bool, int, int]:
        """(allowed, remaining, seconds until one more request is allowed / the bucket is full)."""
        now = time.monotonic()
        per_second = self.rate / self.window
        with self._lock:
            tokens, last = self._state.get(who, (float(self.rate), now))
            tokens = min(self.rate, tokens + (now - last) * per_second)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._state[who] = (tokens, now)
        wait = math.ceil((1 - tokens) / per_second) if not allowed else math.ceil((self.rate - tokens) / per_second)
        return allowed, int(tokens), max(1, wait)


class IdempotencyStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("""CREATE TABLE IF NOT EXISTS idempotency (scope TEXT, key TEXT, fingerprint TEXT, status INTEGER,
                            headers TEXT, body BLOB, created REAL, PRIMARY KEY (scope, key))""")
        self._lock = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()

    def get(self, scope: str, key: str) -> tuple[str, int, list, bytes] | None:
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE created < ?", (time.time() - IDEMPOTENCY_TTL,))
            row = self._db.execute("SELECT fingerprint, status, headers, body FROM idempotency WHERE scope = ? AND key = ?",
                                   (scope, key)).fetchone()
        return (row[0], row[1], json.loads(row[2]), row[3]) if row else None

    def claim(self, scope: str, key: str) -> bool:
        with self._lock:
            if (scope, key) in self._in_flight:
                return False
            self._in_flight.add((scope, key))
            return True

    def release(self, scope: str, key: str) -> None:
        with self._lock:
            self._in_flight.discard((scope, key))

    def put(self, scope: str, key: str, fingerprint: str, status: int, headers: list, body: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (scope, key, fingerprint, status, json.dumps(headers), body, time.time()))


class Gatekeeper:
    """Request id, rate limit, idempotency, in that order."""

    def __init__(self, app: ASGIApp, rate_per_minute: int, idempotency: IdempotencyStore,
                 max_body: int = 1 << 20, max_upload: int = 1 << 24):
        self.app = app
        self.max_body, self.max_upload = max_body, max_upload
        self.bucket = TokenBucket(rate_per_minute) if rate_per_minute > 0 else None
        self.policy = f'"per-key";q={rate_per_minute};w=60'
        self.idempotency = idempotency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        logs.request_id.set(request_id)  # every log line of this request carries it
        extra = [(b"x-request-id", request_id.encode())]
        path = scope["path"]
        limit = self.max_upload if UPLOAD.match(path) else self.max_body
        size = _header(scope, b"content-length")
        if size is not None and size.isdigit() and int(size) > limit:
            return await self._send(_too_large(int(size), limit), extra, scope, receive, send)
        if self.bucket is not None and not path.startswith(EXEMPT):
            allowed, remaining, reset = self.bucket.take(caller_id(scope))
            extra += [(b"ratelimit-policy", self.policy.encode()), (b"ratelimit", f'"per-key";r={remaining};t={reset}'.encode())]
            if not allowed:
                response = error_response(429, "rate_limited", f"too many requests for this API key; retry in {reset} s",
                                          headers={"Retry-After": str(reset)})
                return await self._send(response, extra, scope, receive, send)

        started = time.perf_counter()
        status = [500]

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        if size is None and scope["method"] in ("POST", "PUT", "PATCH"):  # chunked: count what arrives
            body = await _read_body(receive, limit)
            if body is None:
                return await self._send(_too_large(None, limit), extra, scope, receive, send)
            receive = _replay(body, receive)
        try:
            await self._guarded(scope, receive, timed, extra, path)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"  # the template: no ids in labels
            seconds = time.perf_counter() - started
            observe_request(route, scope["method"], status[0], seconds)
            logs.request_line(scope["method"], route, status[0], seconds, caller_id(scope))

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, extra: list, path: str) -> None:
        key = _header(scope, b"idempotency-key")
        if key is None or scope["method"] != "POST" or not IDEMPOTENT.match(path):
            return await self.app(scope, receive, _with_headers(send, extra))
        if not 1 <= len(key) <= 255:
            return await self._send(error_response(400, "invalid_idempotency_key", "'Idempotency-Key' must be 1-255 characters"),
                                    extra, scope, receive, send)
        body = await _read_body(receive)
        owner = caller_id(scope) + " " + path
        fingerprint = hashlib.sha256(body).hexdigest()
        stored = self.idempotency.get(owner, key)
        if stored is not None:
            if stored[0] != fingerprint:
                return await self._send(error_response(
                    422, "idempotency_key_reused", "this Idempotency-Key was used with a different request body; use a new key "
                    "for a new request"), extra, scope, receive, send)
            await send({"type": "http.response.start", "status": stored[1],
                        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored[2]] + extra + [(b"idempotent-replayed", b"true")]})
            return await send({"type": "http.response.body", "body": stored[3]})
        if not self.idempotency.claim(owner, key):
            return await self._send(error_response(409, "idempotency_in_progress", "a request with this Idempotency-Key is still "
                                                   "running; retry when it has answered"), extra, scope, receive, send)
        captured: dict = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
                                       if k.lower() not in (b"content-length", b"x-request-id", b"ratelimit", b"ratelimit-policy")]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    # stored before the client can see the answer (and before background tasks run),
                    # so its retry finds it; a server error may be retried for real
                    if captured["status"] < 500:
                        self.idempotency.put(owner, key, fingerprint, captured["status"], captured["headers"], captured["body"])
                    self.idempotency.release(owner, key)
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), capture)
        finally:
            self.idempotency.release(owner, key)

    async def _send(self, response, extra, scope, receive, send) -> None:
        response.raw_headers.extend(extra)
        await response(scope, receive, send)


def _with_headers(send: Send, extra: list) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": list(message.get("headers", [])) + extra}
        await send(message)
    return wrapped


async def _read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole body; None as soon as it passes `limit` bytes."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        if limit is not None and len(body) > limit:
            return None
        more = message.get("more_body", False)
    return body


def _too_large(size: int | None, limit: int):
    sent = f"{size} bytes" if size is not None else "more than that"
    return error_response(413, "payload_too_large", f"the request body is {sent}; at most {limit} bytes are accepted here "
                          "(TACTFUL_MAX_BODY_BYTES; knowledge uploads: TACTFUL_MAX_UPLOAD_BYTES). Split it into smaller requests.")


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the real channel (so a real disconnect is still seen)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed
