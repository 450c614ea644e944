"""Holding replies: with the LLM down, a brand that has them gets a safe first response, not a 503."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from guardrails import CheckContext, check, is_blocking
from prompts.holding import HoldingError, holding_reply, load_holding
from tests.fake_llm import Step
from tests.test_suggest_api import COMPLAINT, GOOD, suggest


@pytest.fixture(scope="module")
def down_server(settings, store):
    from api.app import create_app
    from tests.servers import ThreadedServer, free_port

    down = settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1"})
    with ThreadedServer(create_app(down)) as server:
        yield server.url


def test_llm_down_gives_the_brands_holding_reply_fast(down_server, settings):
    started = time.monotonic()
    received = datetime.now(timezone.utc) - timedelta(minutes=10)  # acme answers within 60 minutes
    r = httpx.post(f"{down_server}/v1/suggest", json={"brand": "acme", "message": COMPLAINT, "channel": "twitter",
                                                      "received_at": received.isoformat()}, timeout=30)
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    body = r.json()
    # a refused connection fails at once: the reply comes after the client's retries, not after any timeout
    # (about 0.5 s here; the 2 s of the acceptance line is measured in the closing note, not asserted)
    assert body["holding"] is True and elapsed < settings.llm_timeout * (settings.llm_max_retries + 1)
    [draft] = body["drafts"]
    assert (received + timedelta(minutes=60)).strftime("%H:%M UTC") in draft["text"] and "seen your message" in draft["text"]
    assert body["holding_reason"] == "llm_unavailable"
    assert not is_blocking(check(draft["text"], CheckContext(serious=True, channel="twitter")))
    assert body["triage"]["serious"] is True and body["usage"]["llm_calls"] == 0


@pytest.mark.parametrize("message,lang,words", [
    ("Pesanan saya datang rusak dan tidak ada yang membalas email saya!", "id", "sudah kami terima"),
    ("Comanda mea a ajuns spartă și nimeni nu îmi răspunde la emailuri!", "ro", "echipa noastră"),
    ("我的订单到了是坏的，发了三次邮件都没人回复！", "zh", "已收到您的消息"),
])
def test_the_holding_reply_is_in_the_customers_language(down_server, message, lang, words):
    body = httpx.post(f"{down_server}/v1/suggest", json={"brand": "acme", "message": message}, timeout=30).json()
    assert body["holding"] is True and body["triage"]["language"] == lang
    assert words in body["drafts"][0]["text"]


def test_a_brand_without_holding_replies_still_gets_503(down_server):
    r = httpx.post(f"{down_server}/v1/suggest", json={"brand": "plain", "message": COMPLAINT}, timeout=30)
    assert r.status_code == 503 and r.headers["Retry-After"]


def test_every_shipped_holding_file_renders_and_passes_the_guardrails():
    from prompts.holding import HOLDING_DIR

    for path in HOLDING_DIR.glob("*.yaml"):
        holding = load_holding(path.stem)
        for lang in holding.templates:
            text, used = holding_reply(holding, lang, None, "Ana")
            assert used == lang and "{{" not in text
            assert not is_blocking(check(text, CheckContext(language=lang, serious=True, channel="twitter"))), (path, lang, text)


def test_a_bad_holding_file_is_a_clear_error(tmp_path):
    (tmp_path / "shop.yaml").write_text("brand: shop\ntemplates: {en: 'by {{ reply_by '}\n")
    with pytest.raises(HoldingError, match="shop.yaml"):
        load_holding("shop", tmp_path)


def _iso(minutes_ago: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).isoformat()


def test_a_message_about_to_miss_the_response_target_gets_the_holding_reply_at_once(client, fake_llm):
    body = suggest(client, received_at=_iso(58)).json()  # acme's target is 60 minutes; the margin is 5
    assert body["holding"] is True and body["holding_reason"] == "response_target"
    assert fake_llm.requests == []
    # the promised time is one the team can still keep, not the target that is passing
    promised = datetime.strptime(body["drafts"][0]["text"].split("by ")[-1][:5], "%H:%M").time()
    assert promised == (datetime.now(timezone.utc) + timedelta(minutes=60)).time().replace(second=0, microsecond=0) or \
        promised == (datetime.now(timezone.utc) + timedelta(minutes=59)).time().replace(second=0, microsecond=0)


def test_a_message_well_inside_the_target_is_drafted(client, fake_llm):
    fake_llm.reset(Step(content=GOOD))
    body = suggest(client, received_at=_iso(5)).json()
    assert body["holding"] is False and body["drafts"][0]["text"] == GOOD


def test_a_question_no_faq_answers_gets_the_holding_reply_not_a_guess(client, fake_llm):
    body = suggest(client, message="What is the capital of Mongolia?").json()
    assert body["triage"]["type"] == "question" and body["knowledge"] == []
    assert body["holding"] is True and body["holding_reason"] == "no_knowledge" and fake_llm.requests == []


@pytest.fixture(scope="module")
def impatient_server(settings, store):
    from api.app import create_app
    from tests.servers import ThreadedServer

    with ThreadedServer(create_app(settings.model_copy(update={"suggest_deadline": 0.5}))) as server:
        yield server.url


def test_a_slow_llm_gets_the_holding_reply_within_the_deadline(impatient_server, fake_llm):
    fake_llm.reset(Step(content=GOOD, delay=1.5))
    started = time.monotonic()
    body = httpx.post(f"{impatient_server}/v1/suggest", json={"brand": "acme", "message": COMPLAINT}, timeout=30).json()
    assert body["holding"] is True and body["holding_reason"] == "llm_slow"
    assert time.monotonic() - started < 1.4
    time.sleep(1.2)  # let the fake finish the abandoned request before the next test resets it
