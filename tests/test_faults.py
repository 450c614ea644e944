"""Faults in the LLM and the store, through real HTTP: every case ends in guarded drafts, the
brand's holding reply, or a clean 503 with Retry-After. Never a 500, never an unguarded draft."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from guardrails import CheckContext, check, is_blocking
from guardrails.triage import analyze
from tests.fake_llm import BrokenLLM, Step
from tests.servers import ThreadedServer
from tests.test_suggest_api import COMPLAINT

SERIOUS = "The charger you sold me overheated and burned my daughter's hand. I want answers today."
INDONESIAN = "Pesanan saya datang rusak dan tidak ada yang membalas email saya. Sudah tiga kali begini!"


def assert_safe(r: httpx.Response, message: str, channel: str = "twitter") -> dict | None:
    """The contract of every fault: 200 with only guarded drafts (or the holding reply), or a clean 503."""
    assert r.status_code in (200, 503), (r.status_code, r.text[:500])
    body = r.json()
    if r.status_code == 503:
        assert body["error"]["code"] in ("llm_unavailable", "store_unavailable") and int(r.headers["Retry-After"]) > 0
        return None
    assert body["drafts"] or body["blocked"] or body["note"], body
    triage = body["triage"]
    context = CheckContext(language=triage["language"], serious=triage["serious"], message=message, check_language=True,
                           channel=channel, visibility="public")
    for draft in body["drafts"]:
        assert not is_blocking(check(draft["text"], context)), draft["text"]
        if draft.get("private"):
            assert not is_blocking(check(draft["private"], replace(context, visibility="private", channel=None)))
    return body


def suggest(base_or_client, brand="acme", message=COMPLAINT, n=2, timeout=60) -> httpx.Response:
    body = {"brand": brand, "message": message, "channel": "twitter", "visibility": "public", "n": n}
    if isinstance(base_or_client, str):
        return httpx.post(f"{base_or_client}/v1/suggest", json=body, timeout=timeout)
    return base_or_client.post("/v1/suggest", json=body)


GARBAGE = {
    "binary-junk": "\x00\x01\x02\ufffd\ufffd\x7f",
    "json-instead-of-text": '{"reply": "We are sorry", "confidence": 0.9}',
    "chat-template-tokens": "<|im_start|>assistant\n<|im_end|><|endoftext|>",
    "empty-labels": "RESPOND:\nAPOLOGISE:\nRESOLVE:\nPRIVATE:",
    "only-emoji": "😂😂😂🤣",
    "one-giant-word": "a" * 6000,
    "markdown": "# Reply\n\n- **Sorry**\n- [click here](http://example.com)\n\n```\ncode\n```",
    "mixed-scripts": "ок 好的 ok đ ș 🙂",
    "whitespace": " \n\t \n ",
    "truncated-mid-word": "We're so sorry your order arrived brok",
}


@pytest.mark.parametrize("content", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("message", [COMPLAINT, SERIOUS], ids=["complaint", "serious"])
def test_garbage_from_the_model_never_becomes_an_unguarded_draft(client, fake_llm, content, message):
    fake_llm.reset(Step(content=content, finish_reason="length" if "truncated" in content else "stop"))
    assert_safe(suggest(client, message=message), message)


def test_a_model_that_writes_ten_thousand_tokens(client, fake_llm):
    rambling = " ".join(["We're sorry your order arrived damaged and we will look into it right away."] * 700)  # ~10k tokens
    fake_llm.reset(Step(content=rambling, completion_tokens=10_000, finish_reason="length"))
    body = assert_safe(suggest(client), COMPLAINT)
    assert body and body["drafts"]
    assert all(len(d["text"]) <= 280 for d in body["drafts"])  # cut to the channel, at a sentence end


def test_a_model_that_ignores_the_customers_language(client, fake_llm):
    fake_llm.reset(Step(content="We're so sorry your order arrived damaged. Send us a photo by direct message and we'll replace it."))
    body = assert_safe(suggest(client, message=INDONESIAN), INDONESIAN)
    assert body and body["triage"]["language"] == "id"
    assert any(f["rule"] == "any.format.wrong-language" for b in body["blocked"] for f in b["findings"])  # reported
    for draft in body["drafts"]:  # what is returned is in Indonesian (the brand's own parts, or a re-ask)
        assert analyze(draft["text"]).language == "id", draft["text"]


@pytest.mark.parametrize("brand", ["acme", "plain"], ids=["with-holding-reply", "without"])
@pytest.mark.parametrize("step", [Step(status=429), Step(status=500), Step(status=502), Step(status=503), Step(delay=5)],
                         ids=["429-storm", "500s", "502s", "503s", "timeouts"])
def test_a_failing_model_gives_the_holding_reply_or_a_clean_503(client, fake_llm, step, brand):
    fake_llm.reset(step)
    body = assert_safe(suggest(client, brand=brand), COMPLAINT)
    if brand == "acme":
        assert body and body["holding"] and body["holding_reason"] in ("llm_unavailable", "llm_slow")
    else:
        assert body is None


def test_a_failure_after_some_drafts_keeps_the_drafts(tactful, settings, fake_llm):
    """One call of three fails: the two drafts that came back are returned, the failure costs nothing else."""
    from api.app import create_app

    fake_llm.reset(Step(status=500), Step(content="We're so sorry about your order. Send us a photo by DM and we'll replace it.",
                                          choices=1), Step(content="We're very sorry. Please DM us a photo and we'll send a new one."))
    with ThreadedServer(create_app(settings)) as server:  # a fresh client: it learns the fake ignores n
        body = assert_safe(suggest(server.url, n=3), COMPLAINT)
    assert body and len(body["drafts"]) == 2 and not body["holding"]


@pytest.fixture(scope="module", params=["reset", "truncate"])
def broken(request, settings, store):
    from api.app import create_app

    llm = BrokenLLM(request.param)
    with ThreadedServer(create_app(settings.model_copy(update={"llm_base_url": f"{llm.url}/v1"}))) as server:
        yield llm, server.url
    llm.close()


@pytest.mark.parametrize("brand", ["acme", "plain"])
def test_connection_resets_and_truncated_bodies(broken, brand):
    llm, base = broken
    before = llm.connections
    body = assert_safe(suggest(base, brand=brand), COMPLAINT)
    assert llm.connections > before  # the model server was really asked (and retried)
    if brand == "acme":
        assert body and body["holding_reason"] == "llm_unavailable"
    else:
        assert body is None


def _faq(i: int) -> dict:
    return {"id": f"faq-outage-{i}", "question": f"Outage question {i}?", "answer": f"Outage answer number {i}, kept whole."}


def test_chroma_down_answers_503_and_loses_nothing(tmp_path, settings, fake_llm):
    """A Chroma server outage: writes are refused whole (503, nothing half-written), a brand this
    worker does not hold in memory is a 503, the brand it does keeps its guarded drafts; after the
    restart every acknowledged document is there and the refused one can be retried."""
    from api.app import create_app
    from knowledge.ingest import ingest
    from knowledge.store import KnowledgeStore
    from tests.conftest import ACME
    from tests.servers import ChromaServer
    from tests.test_suggest_api import GOOD

    chroma = ChromaServer(tmp_path / "chroma").start()
    try:
        cfg = settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": chroma.port})
        assert not ingest(KnowledgeStore(cfg), "acme", ACME).problems
        fake_llm.reset(Step(content=GOOD))
        with ThreadedServer(create_app(cfg)) as server, httpx.Client(base_url=server.url, timeout=60) as c:
            assert assert_safe(suggest(c), COMPLAINT)["drafts"]
            assert c.post("/v1/brands/acme/documents", json={"documents": [_faq(1)]}).json()["added"] == ["faq-outage-1"]
            assert c.post("/v1/brands/late/documents", json={"documents": [_faq(9)]}).status_code == 200
            assert suggest(c).status_code == 200  # acme's mirror reloaded after the write
            before = {d["id"] for d in c.get("/v1/brands/acme/documents").json()["documents"]}
            chroma.stop()

            refused = c.post("/v1/brands/acme/documents", json={"documents": [_faq(2), _faq(3)]})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_unavailable"
            assert int(refused.headers["Retry-After"]) > 0
            assert c.get("/v1/brands/acme/documents").status_code == 503
            late = suggest(c, brand="late")  # its mirror was never loaded in this worker: the store must answer
            assert late.status_code == 503 and late.json()["error"]["code"] == "store_unavailable"
            held = assert_safe(suggest(c), COMPLAINT)  # acme's mirror is in memory: drafts go on, guarded
            assert held and held["drafts"]

            chroma.start()
            ids = {d["id"] for d in c.get("/v1/brands/acme/documents").json()["documents"]}
            assert ids == before and "faq-outage-1" in ids  # every acknowledged document, none of the refused
            retried = c.post("/v1/brands/acme/documents", json={"documents": [_faq(2), _faq(3)]})
            assert retried.status_code == 200 and sorted(retried.json()["added"]) == ["faq-outage-2", "faq-outage-3"]
            assert assert_safe(suggest(c, brand="late"), COMPLAINT) is not None
    finally:
        chroma.stop()
