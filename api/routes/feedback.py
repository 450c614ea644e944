from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api.auth import Principal, authorize
from api.errors import APIError
from api.feedback import FeedbackRequest, FeedbackResponse, FeedbackStore, UnknownSuggestion
from api.schemas import ErrorResponse

router = APIRouter(tags=["feedback"], responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})


async def get_feedback(request: Request) -> FeedbackStore:
    return request.app.state.feedback


@router.post("/v1/feedback", response_model=FeedbackResponse, status_code=201,
             summary="Record what the agent did with a draft: accepted, edited or rejected")
def post_feedback(body: FeedbackRequest, store: FeedbackStore = Depends(get_feedback),
                  caller: Principal = Depends(authorize("suggest"))) -> FeedbackResponse:
    if (brand := store.brand_of(body.suggestion_id)) is None:
        raise APIError(404, "unknown_suggestion", f"no suggestion {body.suggestion_id!r}: use the `id` of a /v1/suggest "
                       "response from this tactful", "suggestion_id")
    caller.require_brand(brand)
    if body.outcome == "edited" and not body.final_text:
        raise APIError(422, "invalid_request", "an 'edited' outcome needs 'final_text': the text the agent sent", "final_text")
    try:
        return store.add(body)
    except UnknownSuggestion:
        raise APIError(404, "unknown_suggestion", f"no suggestion {body.suggestion_id!r}: use the `id` of a /v1/suggest "
                       "response from this tactful", "suggestion_id") from None
    except IndexError as exc:
        raise APIError(422, "invalid_request", f"'draft_index' must be below {exc.args[0]}, the number of drafts in "
                       "that suggestion", "draft_index") from None
