"""Prometheus metrics at /metrics: request latency by route, LLM latency and tokens, retrieval
latency, drafts returned, repaired and blocked by rule family.

One process's registry; with several uvicorn workers, scrape each worker or run one per container.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from api.schemas import SuggestResponse

_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUESTS = Histogram("tactful_request_seconds", "HTTP request latency", ["route", "method", "status"], buckets=_BUCKETS_S)
LLM_SECONDS = Histogram("tactful_llm_seconds", "Time in LLM calls per suggestion (generation, re-asks)", buckets=_BUCKETS_S)
LLM_TOKENS = Counter("tactful_llm_tokens_total", "LLM tokens", ["kind"])
RETRIEVAL_SECONDS = Histogram("tactful_retrieval_seconds", "Knowledge retrieval latency per suggestion",
                              buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
DRAFTS = Counter("tactful_drafts_total", "Drafts by outcome", ["outcome"])
FINDINGS = Counter("tactful_blocking_findings_total", "Blocking findings on model drafts, by what was done and rule family",
                   ["outcome", "family"])
SUGGESTIONS = Counter("tactful_suggestions_total", "Suggestions by recommended action and holding reason", ["action", "holding"])


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).observe(seconds)


def observe_suggestion(resp: SuggestResponse) -> None:
    t = resp.timings_ms
    LLM_SECONDS.observe((t.get("generate", 0.0) + t.get("repair", 0.0)) / 1000)
    RETRIEVAL_SECONDS.observe(t.get("retrieve", 0.0) / 1000)
    LLM_TOKENS.labels("prompt").inc(resp.usage.prompt_tokens)
    LLM_TOKENS.labels("completion").inc(resp.usage.completion_tokens)
    SUGGESTIONS.labels(resp.triage.action, resp.holding_reason or "none").inc()
    for draft in resp.drafts:
        DRAFTS.labels("repaired" if draft.repair else "returned").inc()
        for f in draft.fixed:
            FINDINGS.labels("repaired", f.family).inc()
    for b in resp.blocked:
        DRAFTS.labels("blocked").inc()
        for family in {f.family for f in b.findings if f.severity == "block"}:
            FINDINGS.labels("blocked", family).inc()


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
