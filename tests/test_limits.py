"""Rate limits per key, idempotent retries, request ids: through real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.fake_llm import Step
from tests.test_suggest_api import COMPLAINT, GOOD


@pytest.fixture(scope="module")
def limited(settings, store):
    from api.app import create_app
    from tests.servers import ThreadedServer

    with ThreadedServer(create_app(settings.model_copy(update={"rate_limit_per_minute": 5}))) as server:
        yield server.url


def test_rate_limit_headers_and_429_with_retry_after(limited):
    seen = [httpx.post(f"{limited}/v1/analyze", json={"message": "hi"}, headers={"X-API-Key": "tk_one"}) for _ in range(6)]
    assert [r.status_code for r in seen] == [200] * 5 + [429]
    assert seen[0].headers["RateLimit-Policy"] == '"per-key";q=5;w=60'
    assert seen[0].headers["RateLimit"].startswith('"per-key";r=4;t=')
    assert int(seen[-1].headers["Retry-After"]) >= 1 and seen[-1].json()["error"]["code"] == "rate_limited"
    # another key has its own budget; health checks are never limited
    assert httpx.post(f"{limited}/v1/analyze", json={"message": "hi"}, headers={"X-API-Key": "tk_two"}).status_code == 200
    assert all(httpx.get(f"{limited}/healthz").status_code == 200 for _ in range(8))


def test_a_retried_suggest_with_the_same_idempotency_key_returns_the_same_suggestion(client, fake_llm):
    fake_llm.reset(Step(content=GOOD))
    body = {"brand": "acme", "message": COMPLAINT, "n": 1}
    first = client.post("/v1/suggest", json=body, headers={"Idempotency-Key": "retry-1"})
    again = client.post("/v1/suggest", json=body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert len(fake_llm.requests) == 1  # the retry cost no LLM call
    other = client.post("/v1/suggest", json={**body, "n": 2}, headers={"Idempotency-Key": "retry-1"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    fresh = client.post("/v1/suggest", json=body, headers={"Idempotency-Key": "retry-2"})
    assert fresh.json()["id"] != first.json()["id"]


def test_request_id_is_echoed_or_made(client):
    mine = client.post("/v1/analyze", json={"message": "hi"}, headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    made = client.post("/v1/analyze", json={"message": "hi"}, headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"].startswith("req_")


def test_metrics_count_requests_by_route_template_and_drafts_by_outcome(client, fake_llm):
    fake_llm.reset(Step(content="Just restart it lol"))  # blocked, then the brand's own reply
    client.post("/v1/suggest", json={"brand": "acme", "message": COMPLAINT, "n": 1})
    client.post("/v1/brands/acme/search", json={"text": "refund"})
    import time

    for _ in range(40):  # suggestion metrics are recorded after the response is sent
        text = client.get("/metrics").text
        if 'tactful_blocking_findings_total{family="humour",outcome="blocked"}' in text:
            break
        time.sleep(0.05)
    assert 'tactful_request_seconds_count{method="POST",route="/v1/brands/{brand}/search",status="200"}' in text
    assert 'tactful_blocking_findings_total{family="humour",outcome="blocked"}' in text
    assert 'tactful_drafts_total{outcome="blocked"}' in text and "tactful_llm_tokens_total" in text


def test_a_body_over_the_limit_is_413_whether_sized_or_chunked(client):
    big = b'{"brand": "acme", "message": "' + b"x" * 1_100_000 + b'"}'
    sized = client.post("/v1/suggest", content=big, headers={"Content-Type": "application/json"})
    assert sized.status_code == 413 and sized.json()["error"]["code"] == "payload_too_large"
    assert "TACTFUL_MAX_BODY_BYTES" in sized.json()["error"]["message"]

    def chunks():  # no Content-Length: the gate counts the bytes as they arrive
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]
    chunked = client.post("/v1/suggest", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "payload_too_large"
    # under the limit, a chunked body is read as usual and validated field by field
    small = client.post("/v1/analyze", content=iter([b'{"message": ', b'"hello"}']), headers={"Content-Type": "application/json"})
    assert small.status_code == 200 and small.json()["language"]


def test_openapi_declares_what_the_gate_can_answer(client):
    paths = client.get("/openapi.json").json()["paths"]
    for status in ("401", "403", "413", "429"):
        assert status in paths["/v1/suggest"]["post"]["responses"]
        assert status in paths["/v1/brands/{brand}/documents"]["post"]["responses"]
    assert "Retry-After" in paths["/v1/suggest"]["post"]["responses"]["429"]["headers"]
    assert "text/event-stream" in paths["/v1/suggest"]["post"]["responses"]["200"]["content"]
    assert "401" not in paths["/healthz"]["get"]["responses"]  # probes need no key
