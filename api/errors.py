"""Every error leaves tactful as {"error": {"code", "message", "field"}}: never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.llm import LLMUnavailable
from api.schemas import BRAND_PATTERN, TEXT_PATTERN, ErrorResponse
from knowledge.documents import BRAND_RULE
from knowledge.store import StoreUnavailable, UnknownBrand
from prompts.templates import PromptError, PromptNotFound

log = logging.getLogger("tactful.errors")
# the schema's text rules in words: a regular expression tells a client nothing it can act on
_PATTERNS = {BRAND_PATTERN: f"must be {BRAND_RULE}", TEXT_PATTERN: "must contain text, not only whitespace"}


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


# What the gate in front of every API route can answer (api/middleware.py, api/auth.py), for the OpenAPI document.
_RETRY = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
GATE_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorResponse, "description": "No API key, or an unknown or revoked one (TACTFUL_AUTH=keys)."},
    403: {"model": ErrorResponse, "description": "The key may not use this brand or lacks the route's role."},
    413: {"model": ErrorResponse, "description": "The body is larger than TACTFUL_MAX_BODY_BYTES (TACTFUL_MAX_UPLOAD_BYTES for uploads)."},
    429: {"model": ErrorResponse, "description": "Past the key's rate limit (RateLimit and RateLimit-Policy headers).",
          "headers": _RETRY},
}


def error_response(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status, headers=headers)


def _field(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or None


def _explain(err: dict) -> str:
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "string_too_long":
        return f"is too long: at most {ctx.get('max_length')} characters; shorten it"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"needs at least {ctx.get('min_length')} characters"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        # pydantic names only the bound that failed: n=0 knows ge=1, n=50 knows le=5
        bounds = {"ge": "at least", "le": "at most", "gt": "more than", "lt": "less than"}
        said = [f"{words} {ctx[key]}" for key, words in bounds.items() if key in ctx]
        return f"must be {' and '.join(said)}" if said else err["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field; remove it (see /docs for the request schema)"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "json_invalid":
        return f"the body is not valid JSON ({ctx.get('error', 'parse error')}); send application/json"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERNS:
        return _PATTERNS[ctx["pattern"]]
    if kind == "too_long":
        return f"has too many items: at most {ctx.get('max_length')}"
    return f"{err['msg'].rstrip('.')}; see /docs for the request schema"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        field = _field(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            return error_response(400, "invalid_json", _explain(err), None)
        what = f"'{field}' " if field else "the request body "
        return error_response(422, "invalid_request", what + _explain(err), field)

    @app.exception_handler(APIError)
    async def _api(_: Request, exc: APIError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(UnknownBrand)
    async def _brand(_: Request, exc: UnknownBrand):
        return error_response(404, "unknown_brand", f"no knowledge base for brand {str(exc.args[0])!r}; ingest one with "
                              f"`tactful ingest PATH --brand {exc.args[0]}`", "brand")

    @app.exception_handler(PromptNotFound)
    async def _prompt_missing(_: Request, exc: PromptNotFound):
        return error_response(404, "unknown_prompt", str(exc), "prompt")

    @app.exception_handler(PromptError)
    async def _prompt(_: Request, exc: PromptError):
        return error_response(422, "prompt_error", str(exc), "prompt")

    @app.exception_handler(LLMUnavailable)
    async def _llm(request: Request, exc: LLMUnavailable):
        retry = str(request.app.state.settings.retry_after_seconds)
        log.warning("LLM unavailable: %s", exc)
        return error_response(503, "llm_unavailable", "the language model is not answering; retry after the delay in Retry-After",
                              None, {"Retry-After": retry})

    @app.exception_handler(StoreUnavailable)
    async def _store(request: Request, exc: StoreUnavailable):
        log.warning("store unavailable: %s", exc)
        return error_response(503, "store_unavailable", "the knowledge store is not answering; retry later", None,
                              {"Retry-After": str(request.app.state.settings.retry_after_seconds)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), None,
                              getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unexpected error")
        return error_response(500, "internal_error", "tactful hit an unexpected error; it has been logged", None)
