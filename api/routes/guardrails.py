from __future__ import annotations

from fastapi import APIRouter

from api.schemas import AnalyzeRequest, CheckRequest, CheckResponse, ErrorResponse
from guardrails import CheckContext, check, is_blocking
from guardrails.triage import Triage, analyze, detect_language

router = APIRouter(tags=["guardrails"], responses={422: {"model": ErrorResponse}})


@router.post("/v1/guardrails/check", response_model=CheckResponse, summary="Check a draft reply against the tone guardrails")
def check_draft(body: CheckRequest) -> CheckResponse:
    if body.message:
        triage = analyze(body.message, language=body.language)
        language, serious = triage.language, triage.serious
    else:
        language, serious = body.language or detect_language(body.text), False
    findings = check(body.text, CheckContext(language=language, serious=serious, message=body.message))
    return CheckResponse(passed=not is_blocking(findings), language=language, serious=serious, findings=findings)


@router.post("/v1/analyze", response_model=Triage, summary="Triage a customer's message")
def analyze_message(body: AnalyzeRequest) -> Triage:
    return analyze(body.message, language=body.language)
