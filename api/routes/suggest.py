from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import Response

from api.auth import Principal, authorize
from api.metrics import observe_suggestion
from api.deps import get_services
from api.errors import APIError
from api.pipeline import Services, suggest
from api.schemas import ErrorResponse, SuggestRequest, SuggestResponse
from knowledge.documents import brand_ok

router = APIRouter(tags=["suggest"])
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 422, 503)}


async def _suggest(body: SuggestRequest, request: Request, background: BackgroundTasks,
                   svc: Services = Depends(get_services), caller: Principal = Depends(authorize("suggest"))) -> Response:
    if not body.message.strip():
        raise APIError(422, "invalid_request", "'message' must contain text, not only whitespace", "message")
    if not brand_ok(body.brand):
        raise APIError(422, "invalid_request", "'brand' must be 2-63 lowercase letters, digits, '-' or '_'", "brand")
    caller.require_brand(body.brand)
    result = await suggest(body, svc)
    # kept so an agent's feedback on it can become an eval case; written after the response is sent
    background.add_task(request.app.state.feedback.remember, body, result)
    background.add_task(observe_suggestion, result)
    # Serialised once from the model the pipeline built (and validated); FastAPI's response_model
    # path would validate the whole nested response a second time (~0.7 ms per suggestion).
    return Response(result.model_dump_json(), media_type="application/json")


_RESPONSES = {200: {"model": SuggestResponse, "description": "Drafts that passed, blocked drafts with findings"}, **_ERRORS}
router.add_api_route("/v1/suggest", _suggest, methods=["POST"], response_model=None, responses=_RESPONSES,
                     summary="Guarded reply drafts for a customer's message")
router.add_api_route("/suggest", _suggest, methods=["POST"], response_model=None, responses=_RESPONSES,
                     summary="Alias of /v1/suggest", include_in_schema=False)
