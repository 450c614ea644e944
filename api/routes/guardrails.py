from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import Principal, authorize

from api.schemas import AnalyzeRequest, CheckRequest, CheckResponse, ErrorResponse
from guardrails.lint import check_reply
from guardrails.triage import Triage, analyze

router = APIRouter(tags=["guardrails"], responses={422: {"model": ErrorResponse}})


@router.post("/v1/guardrails/check", response_model=CheckResponse, summary="Check a draft reply against the tone guardrails")
def check_draft(body: CheckRequest, caller: Principal = Depends(authorize("suggest"))) -> CheckResponse:
    caller.require_brand(body.brand)
    result = check_reply(body.text, body.message, body.language, body.brand, body.channel, body.visibility)
    return CheckResponse(passed=result.passed, language=result.language, serious=result.serious, findings=result.findings)


@router.post("/v1/analyze", response_model=Triage, summary="Triage a customer's message")
def analyze_message(body: AnalyzeRequest, caller: Principal = Depends(authorize("suggest"))) -> Triage:
    return analyze(body.message, language=body.language)
