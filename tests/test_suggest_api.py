"""/v1/suggest through real HTTP, against the scripted fake LLM."""

from __future__ import annotations

import time

import pytest

from api.pipeline import REGENERATE_ROUNDS
from tests.fake_llm import Step

COMPLAINT = "My order arrived broken and nobody answers my emails. This is the third time!"
# respond, apologise, resolve: the three parts a complaint's reply is made of (prompts/parts/segments.yaml)
GOOD = ("Your order arrived damaged and your emails went unanswered, which is not good enough. We're so sorry. "
        "Send us a photo of the damaged item by direct message and we'll ship a free replacement or refund you.")


def only_holding(body) -> bool:
    """Nothing the model wrote passed: `drafts` holds the brand's holding reply alone."""
    return body["holding"] is True and body["holding_reason"] == "all_blocked" and len(body["drafts"]) == 1


def suggest(client, **overrides):
    body = {"brand": "acme", "message": COMPLAINT, "channel": "twitter", "visibility": "public", "n": 3}
    body.update(overrides)
    return client.post("/v1/suggest", json=body)


def test_guarded_grounded_drafts(client, fake_llm):
    fake_llm.reset(Step(content=GOOD))
    r = suggest(client)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"].startswith("sug_")
    assert body["triage"]["serious"] is True and body["triage"]["language"] == "en"
    assert body["drafts"] and body["drafts"][0]["text"] == GOOD
    assert all(f["severity"] != "block" for d in body["drafts"] for f in d["findings"])
    assert body["knowledge"], "acme's FAQ should be retrieved for a damaged order"
    assert any(k["id"] == "faq-damaged-item" for k in body["knowledge"]), body["knowledge"]
    cited = {c["id"] for c in body["drafts"][0]["citations"]}
    assert cited and cited <= {k["id"] for k in body["knowledge"]}
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    assert {"triage", "retrieve", "generate", "guard", "total"} <= set(body["timings_ms"])
    assert body["prompt"] == {"name": "suggest", "version": "2"}
    # the FAQ text reached the prompt, the customer's words are fenced as data
    prompt = fake_llm.requests[0]["messages"]
    assert "faq-damaged-item" in prompt[1]["content"]
    assert COMPLAINT in prompt[1]["content"]


def test_hostile_draft_is_blocked_never_returned(client, fake_llm):
    fake_llm.reset(Step(content="Just restart it lol"))
    r = suggest(client)
    assert r.status_code == 200, r.text
    body = r.json()
    # nothing the model wrote passed: the agent gets acme's holding reply, and the model's drafts are reported
    assert body["holding"] is True and body["holding_reason"] == "all_blocked"
    assert [d["text"] for d in body["drafts"]] != ["Just restart it lol"] and len(body["drafts"]) == 1
    assert body["blocked"] and {b["text"] for b in body["blocked"]} == {"Just restart it lol"}
    rules = {f["rule"]: f for f in body["blocked"][0]["findings"]}
    assert {"en.minimising.just-imperative", "en.humour.laughter"} <= set(rules)
    lol = rules["en.humour.laughter"]
    assert "Just restart it lol"[lol["start"]:lol["end"]] == "lol" and lol["severity"] == "block"
    # every draft was blocked, so the pipeline asked again, REGENERATE_ROUNDS more times
    assert len(fake_llm.requests) == 1 + REGENERATE_ROUNDS


def test_mixed_drafts_split_between_drafts_and_blocked(client, fake_llm):
    # the two blaming drafts are re-asked (acme allows two rounds) and keep blaming
    fake_llm.reset(Step(content="You were supposed to keep the receipt."),
                   Step(content=[GOOD, "You should have read the instructions.", "As we already told you, wait."]))
    body = suggest(client).json()
    assert [d["text"] for d in body["drafts"]] == [GOOD]
    assert {f["family"] for b in body["blocked"] for f in b["findings"]} == {"blame"}
    assert sorted(b["reask_round"] for b in body["blocked"]) == [0, 0, 1, 1, 2, 2]
    assert len(fake_llm.requests) == 1 + 2 * 2


def test_empty_completion_is_reported_as_blocked(client, fake_llm):
    fake_llm.reset(Step(content=""))
    body = suggest(client, n=1).json()
    assert only_holding(body)
    assert body["blocked"][0]["findings"][0]["rule"] == "any.format.empty"


def test_one_call_when_server_honours_n(client, fake_llm):
    fake_llm.reset(Step(content=GOOD))
    suggest(client, n=3)
    assert len(fake_llm.requests) == 1 and fake_llm.requests[0]["n"] == 3


def test_falls_back_to_n_calls_when_server_ignores_n(tactful, settings, fake_llm):
    # a fresh client: n support is detected per client, never assumed
    from api.llm import LLMClient
    import asyncio

    fake_llm.reset(Step(content=GOOD, choices=1))
    llm = LLMClient(f"{fake_llm.url}/v1", "k", "fake", timeout=2, max_retries=0)
    result = asyncio.run(llm.chat([{"role": "user", "content": "hi"}], n=3))
    assert len(result.texts) == 3 and result.calls == 3
    assert llm.supports_n is False
    assert [r["n"] for r in fake_llm.requests] == [3, 1, 1]
    # each call its own seed: llama_cpp.server restores a cached prompt's seed, so without one the
    # three calls for the same prompt drew the same draft
    assert len({r["seed"] for r in fake_llm.requests}) == 3


def test_falls_back_when_server_rejects_n(fake_llm):
    from api.llm import LLMClient
    import asyncio

    fake_llm.reset(Step(content=GOOD), Step(status=400))
    llm = LLMClient(f"{fake_llm.url}/v1", "k", "fake", timeout=2, max_retries=0)
    result = asyncio.run(llm.chat([{"role": "user", "content": "hi"}], n=2))
    assert len(result.texts) == 2 and llm.supports_n is False


def test_retries_a_5xx_then_succeeds(client, fake_llm):
    fake_llm.reset(Step(content=GOOD), Step(status=500))
    r = suggest(client, n=1)
    assert r.status_code == 200 and r.json()["drafts"]
    assert len(fake_llm.requests) == 2


@pytest.mark.parametrize("step", [Step(status=500), Step(status=429), Step(raw="{not json"), Step(raw='{"choices": 5}')],
                         ids=["500", "429", "malformed-json", "wrong-shape"])
def test_llm_failures_give_503_with_retry_after(client, fake_llm, step):
    fake_llm.reset(step)
    r = suggest(client, n=1, brand="plain")  # acme has holding replies: see test_holding.py
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "7"
    assert r.json()["error"]["code"] == "llm_unavailable"


def test_slow_llm_gives_503_within_the_timeout(client, fake_llm, settings):
    fake_llm.reset(Step(delay=10))
    started = time.monotonic()
    r = suggest(client, n=1, brand="plain")
    elapsed = time.monotonic() - started
    assert r.status_code == 503 and r.headers["Retry-After"]
    # timeout per attempt x (1 + retries), plus the client's backoff between attempts
    assert elapsed < settings.llm_timeout * (settings.llm_max_retries + 1) + 3


def test_llm_down_gives_503(settings, store):
    from api.app import create_app
    from tests.servers import ThreadedServer, free_port
    import httpx

    down = settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1"})
    with ThreadedServer(create_app(down)) as server:
        r = httpx.post(f"{server.url}/v1/suggest", json={"brand": "plain", "message": COMPLAINT}, timeout=30)
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert r.json()["error"]["code"] == "llm_unavailable"
    assert ready.status_code == 503 and ready.json()["llm"] is False


@pytest.mark.parametrize("patch,field,status", [
    ({"message": ""}, "message", 422),
    ({"message": "   "}, "message", 422),
    ({"message": "\x1c\x1f \x1d"}, "message", 422),  # separators: whitespace to Python, not to JSON Schema's \s
    ({"message": "x" * 100_000}, "message", 422),
    ({"brand": "nobody"}, "brand", 404),
    ({"brand": "../etc"}, "brand", 422),
    ({"n": 0}, "n", 422),
    ({"n": 50}, "n", 422),
    ({"n": "three"}, "n", 422),
    ({"message": 123}, "message", 422),
    ({"channel": "fax"}, "channel", 422),
    ({"visibility": "secret"}, "visibility", 422),
    ({"history": "not a list"}, "history", 422),
    ({"surprise": 1}, "surprise", 422),
    ({"prompt": "nope"}, "prompt", 404),
])
def test_bad_requests_get_4xx_json_naming_the_field(client, fake_llm, patch, field, status):
    r = suggest(client, **patch)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field and error["message"] and error["code"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize("patch, says", [
    ({"message": "   "}, "'message' must contain text, not only whitespace"),
    ({"message": "\x1c\x1f \x1d"}, "'message' must contain text, not only whitespace"),
    ({"brand": "shop_"}, "'brand' must be 2-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit"),
    # pydantic reports only the bound that failed ("use a value from 1 to None" was said before)
    ({"n": 0}, "'n' must be at least 1"),
    ({"n": 50}, "'n' must be at most 5"),
])
def test_a_broken_text_rule_is_explained_in_words_not_as_a_regex(client, fake_llm, patch, says):
    r = suggest(client, **patch)
    assert r.status_code == 422 and r.json()["error"]["message"] == says
    assert fake_llm.requests == [], "a bad request must not reach the LLM"


def test_an_internal_template_cannot_be_asked_for(client, fake_llm):
    r = suggest(client, prompt="repair")
    assert r.status_code == 422 and r.json()["error"]["field"] == "prompt"
    assert len(fake_llm.requests) == 0


def test_missing_field_and_invalid_json(client):
    r = client.post("/v1/suggest", json={"brand": "acme"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "message"
    r = client.post("/v1/suggest", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_alias_and_ops_endpoints(client, fake_llm):
    fake_llm.reset(Step(content=GOOD))
    assert client.post("/suggest", json={"brand": "acme", "message": COMPLAINT, "n": 1}).status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["llm"] and ready.json()["store"]
    spec = client.get("/openapi.json").json()
    assert "/v1/suggest" in spec["paths"] and "/v1/guardrails/check" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_draft_cut_at_max_tokens_is_trimmed_to_whole_sentences(client, fake_llm):
    from tests.fake_llm import Step as S

    fake_llm.reset(S(content=GOOD + " We will also", finish_reason="length"))
    body = suggest(client, n=1).json()
    assert body["drafts"][0]["text"] == GOOD and body["drafts"][0]["repaired"] is True


def test_citations_point_at_the_faq_the_draft_draws_on():
    from api.pipeline import cite
    from knowledge.store import Hit

    faqs = [Hit("faq-damaged", "faq", "Item arrived damaged", "en", 0.6, "Send a photo of the packaging; we send a free replacement."),
            Hit("faq-late", "faq", "Order is late", "en", 0.6, "We chase the courier and refund the express charge."),
            Hit("faq-refund", "faq", "Refund timing", "en", 0.5, "Refunds reach your card in 3-5 working days.")]
    draft = "We're sorry! Please send us a photo of the damaged packaging and we'll ship a free replacement."
    assert [c.id for c in cite(draft, faqs)] == ["faq-damaged"]
    assert cite("We're so sorry about this.", faqs) == []


@pytest.mark.parametrize("raw,cut_off,expected", [
    ('"We are sorry. We will refund you."', False, "We are sorry. We will refund you."),
    ("we'll refund you today.", False, "We'll refund you today."),
    ("We are sorry. We will refund you. And then we", True, "We are sorry. We will refund you."),
    ("We are sorry about", True, "We are sorry about"),
])
def test_tidy_repairs_formatting_only(raw, cut_off, expected):
    from api.pipeline import tidy, trim_to_sentence

    assert tidy(trim_to_sentence(raw) if cut_off else raw) == expected


def test_minimising_draft_comes_back_fixed_and_marked(client, fake_llm):
    raw = ("Being charged twice is stressful. We're sorry about the double charge. "
           "Just send us a DM and we'll refund the second charge today.")
    fake_llm.reset(Step(content=raw))
    body = suggest(client, n=1, message="You charged me twice!").json()
    draft = body["drafts"][0]
    assert draft["text"] == ("Being charged twice is stressful. We're sorry about the double charge. "
                             "Send us a DM and we'll refund the second charge today.")
    assert [s["kind"] for s in draft["segments"]] == ["respond", "apologise", "resolve"]
    assert draft["segments"][2]["text"] == "Send us a DM and we'll refund the second charge today."
    assert draft["repaired"] is True and draft["original"] == raw
    assert [f["rule"] for f in draft["fixed"]] == ["en.minimising.just-contact"]
    assert raw[draft["fixed"][0]["start"]:draft["fixed"][0]["end"]] == "Just "
    assert body["blocked"] == []


def test_history_reaches_the_prompt_most_recent_first_within_its_budget(client, fake_llm):
    old = [{"role": "customer", "text": f"Old message number {i}: " + "still waiting " * 40} for i in range(10)]
    recent = [{"role": "agent", "text": "We're checking with the courier."},
              {"role": "customer", "text": "That was yesterday. This is the third time I write!"}]
    fake_llm.reset(Step(content=GOOD))
    body = suggest(client, n=1, history=old + recent).json()
    prompt = fake_llm.requests[0]["messages"][1]["content"]
    assert "We're checking with the courier." in prompt and "third time I write" in prompt
    assert "Old message number 0" not in prompt  # over the template's history budget: dropped, oldest first
    assert "repeated_contact" in body["triage"]["categories"]


def test_start_up_objects_are_moved_out_of_the_collectors_reach(settings, store):
    """The models, rules and mirrors loaded at start-up live as long as the process: a full garbage
    collection that walked them all (~240 ms) would stall every request in flight."""
    import gc

    from api.app import create_app
    from tests.servers import ThreadedServer

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with ThreadedServer(create_app(settings)):
        assert gc.get_freeze_count() > 50_000
