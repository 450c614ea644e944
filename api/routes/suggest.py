from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import Response

from api.auth import Principal, authorize
from api.logs import suggestion_line
from api.metrics import observe_suggestion
from api.deps import get_services
from api.pipeline import Services, suggest
from api.schemas import ErrorResponse, SuggestRequest, SuggestResponse
from api.streaming import MEDIA_TYPE, stream_suggestion, wants_stream

router = APIRouter(tags=["suggest"])
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 422, 503)}


async def _suggest(body: SuggestRequest, request: Request, background: BackgroundTasks,
                   svc: Services = Depends(get_services), caller: Principal = Depends(authorize("suggest"))) -> Response:
    caller.require_brand(body.brand)
    if wants_stream(request):
        return await stream_suggestion(body, svc, request, lambda result: _after(request, body, result))
    result = await suggest(body, svc)
    background.add_task(_after, request, body, result)  # after the response is sent
    # Serialised once from the model the pipeline built (and validated); FastAPI's response_model
    # path would validate the whole nested response a second time (~0.7 ms per suggestion).
    return Response(result.model_dump_json(), media_type="application/json")


def _after(request: Request, body: SuggestRequest, result: SuggestResponse) -> None:
    # kept so an agent's feedback on it can become an eval case
    request.app.state.feedback.remember(body, result)
    observe_suggestion(result)
    suggestion_line(body, result)


_STREAM = ("With `Accept: text/event-stream`: server-sent events `triage`, then `draft` for each draft as soon as "
           "it has passed the guardrails, then `done` with this whole response; `error` (status and error body) "
           "if it fails after the stream started.")
_RESPONSES = {200: {"model": SuggestResponse, "description": "Drafts that passed, blocked drafts with findings. " + _STREAM,
                    "content": {MEDIA_TYPE: {"schema": {"type": "string"}}}}, **_ERRORS}
router.add_api_route("/v1/suggest", _suggest, methods=["POST"], response_model=None, responses=_RESPONSES,
                     summary="Guarded reply drafts for a customer's message")
router.add_api_route("/suggest", _suggest, methods=["POST"], response_model=None, responses=_RESPONSES,
                     summary="Alias of /v1/suggest", include_in_schema=False)
