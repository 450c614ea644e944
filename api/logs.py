"""Structured logs: one JSON object per line on stderr, each with the request id it belongs to.

Customer text never goes out at INFO or above: a request line carries the route, status and
timings; a suggestion line carries counts, the triage verdict and the suggestion id (which
finds the stored suggestion). The customer's message is logged at DEBUG only.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_HANDLER_NAME = "tactful"
log = logging.getLogger("tactful.access")
suggest_log = logging.getLogger("tactful.suggest")


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Idempotent: called by every app (and every uvicorn worker); replaces only tactful's own handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RequestId())
    if fmt == "json":
        handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}{request_id}", style="{",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                                           datefmt="%Y-%m-%dT%H:%M:%S%z",
                                           reserved_attrs=[*RESERVED_ATTRS, "color_message"]))  # uvicorn's ANSI copy
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own loggers go through the same handler; its access log is replaced by request lines with ids
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpx2", "httpcore", "chromadb", "aiohttp.access"):  # a line per LLM call is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)


def request_line(method: str, route: str, status: int, seconds: float, caller: str) -> None:
    log.info("request", extra={"method": method, "route": route, "status": status,
                               "duration_ms": round(seconds * 1000, 2), "caller": caller})


def suggestion_line(body, result) -> None:
    """What happened to one suggestion, without the customer's words (they are in DEBUG)."""
    suggest_log.info("suggestion", extra={
        "suggestion_id": result.id, "brand": result.brand, "language": result.triage.language,
        "serious": result.triage.serious, "action": result.triage.action, "drafts": len(result.drafts),
        "repaired": sum(1 for d in result.drafts if d.repaired), "blocked": len(result.blocked),
        "blocked_families": sorted({f.family for b in result.blocked for f in b.findings if f.severity == "block"}),
        "holding_reason": result.holding_reason, "llm_calls": result.usage.llm_calls,
        "prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens,
        "total_ms": result.timings_ms.get("total")})
    suggest_log.debug("suggestion message", extra={"suggestion_id": result.id, "customer_message": body.message})
