"""`/v1/suggest` as server-sent events, for a helpdesk sidebar that shows drafts as they come.

Events, in order: `triage` (as soon as the message is read), `draft` (each draft the moment it has
passed every guardrail: never a token the guardrails have not seen), then `done` with the whole
response (blocked drafts, usage, timings). A failure after the stream has started is an `error`
event carrying the status and JSON error the plain endpoint would have answered with.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api.pipeline import Services, suggest
from api.schemas import SuggestRequest, SuggestResponse

MEDIA_TYPE = "text/event-stream"
_RESULT, _ERROR = "done", "error"


def wants_stream(request: Request) -> bool:
    return MEDIA_TYPE in (request.headers.get("accept") or "")


async def stream_suggestion(body: SuggestRequest, svc: Services, request: Request,
                            on_done: Callable[[SuggestResponse], None]) -> EventSourceResponse:
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    async def emit(name: str, model: BaseModel) -> None:
        await queue.put((name, model))

    async def run() -> None:
        try:
            await queue.put((_RESULT, await suggest(body, svc, emit)))
        except Exception as exc:  # handed to the stream, which answers it like the plain endpoint would
            await queue.put((_ERROR, exc))

    task = asyncio.create_task(run())
    first = await queue.get()
    if first[0] == _ERROR:
        # nothing was decided yet (unknown template, store down): a plain HTTP error with its status code
        raise first[1]  # type: ignore[misc]

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent: set[str] = set()
        item = first
        try:
            while True:
                name, payload = item
                if name == _ERROR:
                    yield await _error_event(request, payload)  # type: ignore[arg-type]
                    return
                if name == _RESULT:
                    result: SuggestResponse = payload  # type: ignore[assignment]
                    for draft in result.drafts:  # holding and brand replies are decided at the end
                        if draft.text not in sent:
                            yield ServerSentEvent(draft.model_dump_json(), event="draft")
                    # recorded before the last event: a client that leaves once it has `done` must not lose it
                    await run_in_threadpool(on_done, result)
                    yield ServerSentEvent(result.model_dump_json(), event="done", id=result.id)
                    return
                if name == "draft":
                    sent.add(payload.text)  # type: ignore[attr-defined]
                yield ServerSentEvent(payload.model_dump_json(), event=name)  # type: ignore[attr-defined]
                item = await queue.get()
        finally:  # the client went away: stop asking the LLM for drafts nobody will read
            task.cancel()

    return EventSourceResponse(events(), ping=10, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _error_event(request: Request, exc: Exception) -> ServerSentEvent:
    """The error the plain endpoint would send, from the same exception handlers (api/errors.py)."""
    handler = next((request.app.exception_handlers[cls] for cls in type(exc).__mro__
                    if cls in request.app.exception_handlers), None)
    response = await handler(request, exc)  # Exception itself is always registered
    payload = {"status": response.status_code, **json.loads(response.body)}
    if retry := response.headers.get("retry-after"):
        payload["retry_after"] = int(retry)
    return ServerSentEvent(json.dumps(payload), event="error")
