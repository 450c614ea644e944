"""The repair step of /v1/suggest through real HTTP: fix, reask, block, per the brand's policy."""

from __future__ import annotations

from api.pipeline import REGENERATE_ROUNDS
from tests.fake_llm import Step
from tests.test_suggest_api import COMPLAINT, GOOD, only_holding, suggest

BLAME = "You should have read the delivery instructions before ordering."


def test_blaming_draft_is_reasked_with_its_findings_and_repaired(client, fake_llm):
    fake_llm.reset(Step(content=GOOD), Step(content=BLAME))
    body = suggest(client, n=1).json()
    assert [d["text"] for d in body["drafts"]] == [GOOD] and body["blocked"] == []
    draft = body["drafts"][0]
    assert draft["repair"] == "reask" and draft["reask_rounds"] == 1 and draft["repaired"] is True
    assert draft["original"] == BLAME
    assert {f["family"] for f in draft["fixed"]} == {"blame"}
    assert body["usage"]["llm_calls"] == 2
    # the re-ask carried the flagged words and why they were flagged, and the customer's text as data
    reask = fake_llm.requests[1]["messages"][1]["content"]
    assert '"You should have "' in reask and "blame" in reask and COMPLAINT in reask and BLAME in reask
    assert fake_llm.requests[1]["n"] == 1


def test_draft_still_blaming_after_reasks_is_blocked(client, fake_llm):
    fake_llm.reset(Step(content=BLAME))
    body = suggest(client, n=1).json()
    assert only_holding(body)
    # acme allows two re-asks, but the first repeated the very blame it was sent to fix: no second one.
    # Nothing passed, so REGENERATE_ROUNDS more generation rounds, each with its own re-ask
    assert [b["reask_round"] for b in body["blocked"]] == [0, 1] * (1 + REGENERATE_ROUNDS)
    assert all(f["family"] == "blame" for b in body["blocked"] for f in b["findings"] if f["severity"] == "block")
    assert len(fake_llm.requests) == 2 * (1 + REGENERATE_ROUNDS)


def test_a_reask_that_trips_another_rule_gets_the_second_try(client, fake_llm):
    # blame, then (re-asked) a different blame, then (re-asked again) a good reply: acme's second re-ask
    # is for exactly this, a model that took the feedback and went wrong elsewhere
    fake_llm.reset(Step(content=GOOD), Step(content=BLAME), Step(content="As we already told you, wait for the courier."))
    body = suggest(client, n=1).json()
    assert [d["text"] for d in body["drafts"]] == [GOOD] and body["drafts"][0]["reask_rounds"] == 2
    assert [b["reask_round"] for b in body["blocked"]] == [1]
    assert len(fake_llm.requests) == 3


def test_reask_that_goes_wrong_another_way_is_blocked(client, fake_llm):
    # the re-ask drops the blame but adds a joke: acme's policy blocks humour without a re-ask
    fake_llm.reset(Step(content=GOOD), Step(content=BLAME), Step(content="Sorry! We'll sort the refund out 😅"))
    body = suggest(client, n=1).json()
    assert [b["reask_round"] for b in body["blocked"][:2]] == [0, 1]
    assert body["blocked"][1]["findings"][0]["family"] == "humour"
    assert [d["text"] for d in body["drafts"]] == [GOOD]  # from the second generation round


def test_joke_on_serious_complaint_never_reaches_drafts(client, fake_llm):
    fake_llm.reset(Step(content="Oops, our courier must have played football with it 😂 DM us!"))
    body = suggest(client, n=2).json()
    assert body["triage"]["serious"] is True
    assert only_holding(body)
    assert body["blocked"] and all(any(f["family"] == "humour" for f in b["findings"]) for b in body["blocked"])


def test_llm_down_during_reask_keeps_the_draft_blocked_and_the_request_alive(client, fake_llm):
    fake_llm.reset(Step(status=500), Step(content=[GOOD, BLAME]))
    r = suggest(client, n=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["text"] for d in body["drafts"]] == [GOOD]
    assert [b["text"] for b in body["blocked"]] == [BLAME]


def test_repair_that_duplicates_a_draft_still_reports_the_blocked_text(client, fake_llm):
    fake_llm.reset(Step(content=GOOD), Step(content=[GOOD, BLAME]))
    body = suggest(client, n=2).json()
    assert [d["text"] for d in body["drafts"]] == [GOOD]
    assert [b["text"] for b in body["blocked"]] == [BLAME]


def test_triage_judge_is_off_by_default_and_only_asked_about_the_unclear_middle(tactful, settings, fake_llm):
    import httpx

    from api.app import create_app
    from tests.servers import ThreadedServer

    unclear = "Honestly really disappointed with how this went, not what I expected at all."
    with httpx.Client(base_url=tactful, timeout=30) as off:  # the default app: no judge
        fake_llm.reset(Step(content=GOOD))
        body = off.post("/v1/suggest", json={"brand": "acme", "message": unclear, "n": 1}).json()
        assert body["triage"]["serious"] is False and len(fake_llm.requests) == 1

    judged = settings.model_copy(update={"triage_judge": True})
    with ThreadedServer(create_app(judged)) as server, httpx.Client(base_url=server.url, timeout=30) as on:
        fake_llm.reset(Step(content=GOOD), Step(content='{"serious": true, "category": "financial"}'))
        body = on.post("/v1/suggest", json={"brand": "acme", "message": unclear, "n": 1}).json()
        assert body["triage"]["serious"] is True and "financial" in body["triage"]["categories"]
        assert body["triage"]["reasons"][-1] == "LLM judge: financial"
        assert "not instructions" in fake_llm.requests[0]["messages"][1]["content"]
        # a message the cues already settle is never sent to the judge
        fake_llm.reset(Step(content=GOOD))
        on.post("/v1/suggest", json={"brand": "acme", "message": "I was charged twice!", "n": 1})
        assert len(fake_llm.requests) == 1
        # a judge answer that is not JSON keeps the cue-based triage
        fake_llm.reset(Step(content=GOOD), Step(content="I think so, yes"))
        body = on.post("/v1/suggest", json={"brand": "acme", "message": unclear, "n": 1}).json()
        assert body["triage"]["serious"] is False and body["drafts"]


def test_a_public_draft_asking_for_the_order_number_is_reasked_and_a_private_one_passes(client, fake_llm):
    asks = "So sorry about this! Can you reply with your order number so we can check?"
    fake_llm.reset(Step(content=GOOD), Step(content=asks))
    body = suggest(client, n=1).json()
    assert [d["text"] for d in body["drafts"]] == [GOOD]
    assert body["drafts"][0]["repair"] == "reask"
    assert {f["family"] for f in body["drafts"][0]["fixed"]} == {"private_data_in_public"}
    fake_llm.reset(Step(content=asks))
    body = suggest(client, n=1, visibility="private").json()
    draft = body["drafts"][0]
    assert draft["text"].endswith(asks) and draft["private"] is None  # already private: no public/private split
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [("respond", "brand"), ("apologise", "model"),
                                                                     ("resolve", "model")]


def test_check_endpoint_takes_channel_and_visibility(client):
    text = "We refunded the card ending in 4821. " * 10
    public = client.post("/v1/guardrails/check", json={"text": text, "channel": "twitter"}).json()
    assert {f["family"] for f in public["findings"]} >= {"private_data_in_public", "channel_length"}
    private = client.post("/v1/guardrails/check", json={"text": text, "visibility": "private", "channel": "email"}).json()
    assert private["passed"] is True
