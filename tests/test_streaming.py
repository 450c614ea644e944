"""/v1/suggest as server-sent events, through real HTTP: triage first, each draft only once it has
passed the guardrails, a final `done`; errors before the stream are plain HTTP errors."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from guardrails import CheckContext, check, is_blocking
from tests.fake_llm import FakeLLM, Step
from tests.servers import ThreadedServer
from tests.test_suggest_api import COMPLAINT, GOOD

SSE = {"Accept": "text/event-stream"}
SERIOUS = "The heater you sold me caught fire last night and burned my hand. I need this dealt with now."


def events(base: str, **body) -> tuple[int, list[tuple[str, dict, float]], dict]:
    """(status, [(event, data, seconds since the request)], headers); a non-stream answer's JSON as one event."""
    payload = {"brand": "acme", "message": COMPLAINT, "channel": "twitter", "visibility": "public", "n": 3, **body}
    started = time.monotonic()
    out: list[tuple[str, dict, float]] = []
    with httpx.stream("POST", f"{base}/v1/suggest", json=payload, headers=SSE, timeout=30) as r:
        if not r.headers["content-type"].startswith("text/event-stream"):
            r.read()
            return r.status_code, [("json", r.json(), time.monotonic() - started)], dict(r.headers)
        name = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                out.append((name, json.loads(line.split(":", 1)[1]), time.monotonic() - started))
                name = None
        return r.status_code, out, dict(r.headers)


def test_triage_then_guarded_drafts_then_done(tactful, fake_llm):
    fake_llm.reset(Step(content=[GOOD, "Just restart it lol, you should have read the manual.", GOOD.replace("so sorry", "very sorry")]))
    status, got, headers = events(tactful)
    assert status == 200 and headers["cache-control"] == "no-store"
    names = [name for name, _, _ in got]
    assert names[0] == "triage" and names[-1] == "done" and set(names[1:-1]) == {"draft"}, names
    assert got[0][1]["language"] == "en"
    done = got[-1][1]
    streamed = [data for name, data, _ in got if name == "draft"]
    # what streamed is exactly what the response holds; the blaming joke is reported, never streamed
    assert [d["text"] for d in streamed] == [d["text"] for d in done["drafts"]] and len(streamed) == 2
    assert any("lol" in b["text"] for b in done["blocked"])
    assert not any("lol" in d["text"] for d in streamed)
    assert done["usage"]["llm_calls"] >= 1 and done["timings_ms"]["total"] > 0 and done["id"].startswith("sug_")
    for draft in streamed:
        assert draft["citations"] and not is_blocking(check(draft["text"], CheckContext(serious=True, message=COMPLAINT)))


def test_a_joke_on_a_serious_complaint_never_streams(tactful, fake_llm):
    fake_llm.reset(Step(content="Haha 😂 sounds like a hot deal! Just unplug it."))
    status, got, _ = events(tactful, message=SERIOUS)
    assert status == 200
    done = got[-1][1]
    assert got[0][1]["serious"] is True and done["blocked"]
    for name, data, _ in got:
        if name == "draft":  # only the brand's own guarded reply can stream here
            assert "😂" not in data["text"] and "Just" not in data["text"]
            assert not is_blocking(check(data["text"], CheckContext(serious=True, message=SERIOUS)))


def test_an_error_before_anything_is_decided_is_a_plain_http_error(tactful, fake_llm):
    status, got, _ = events(tactful, prompt="nosuch")
    assert status == 404 and got[0][1]["error"]["field"] == "prompt"
    status, got, _ = events(tactful, n=50)
    assert status == 422 and got[0][1]["error"]["field"] == "n"


def test_llm_down_after_triage_is_an_error_event_with_retry_after(tactful, fake_llm):
    fake_llm.reset(Step(status=500))
    status, got, _ = events(tactful, brand="plain", n=1)  # a brand with no holding reply
    assert status == 200 and [name for name, _, _ in got] == ["triage", "error"]
    error = got[-1][1]
    assert error["status"] == 503 and error["error"]["code"] == "llm_unavailable" and error["retry_after"] == 7


@pytest.fixture(scope="module")
def one_at_a_time(settings, store):
    """tactful against a model server that ignores `n` and answers one request at a time, like llama.cpp."""
    from api.app import create_app

    fake = FakeLLM()
    with ThreadedServer(fake.app()) as llm:
        with ThreadedServer(create_app(settings.model_copy(update={"llm_base_url": f"{llm.url}/v1"}))) as server:
            yield fake, server.url


def test_the_first_draft_streams_while_the_model_writes_the_next(one_at_a_time):
    fake, base = one_at_a_time
    # the first call answers one choice of three at once; the two calls that follow take 1.2 s (timeout: 2 s)
    fake.reset(None, Step(content=GOOD.replace("so sorry", "truly sorry"), choices=1),
               Step(content=GOOD, delay=1.2), Step(content=GOOD.replace("so sorry", "very sorry"), delay=1.2))
    status, got, _ = events(base)
    assert status == 200
    drafts = [(data, at) for name, data, at in got if name == "draft"]
    done_at = got[-1][2]
    assert got[-1][0] == "done" and len(drafts) == 3
    # the fast draft was on the wire well before the slow ones finished, not held back for the whole response
    assert drafts[0][1] < done_at - 0.8, (drafts[0][1], done_at)
    assert [r["n"] for r in fake.requests] == [3, 1, 1]


def test_the_brands_sentences_alone_stream_last_after_the_models_second_round(tactful, fake_llm):
    from tests.test_segments import ALL_REPLACED, LABELLED
    fake_llm.reset(Step(content=LABELLED), Step(content=ALL_REPLACED))
    status, got, _ = events(tactful, n=3)
    streamed = [data for name, data, _ in got if name == "draft"]
    # the brand-only draft of round one waited: the model's own draft from round two streamed first
    assert status == 200 and len(streamed) == 2, [name for name, _, _ in got]
    assert [{s["source"] for s in d["segments"]} for d in streamed] == [{"model"}, {"brand"}]
    assert [d["text"] for d in streamed] == [d["text"] for d in got[-1][1]["drafts"]]
