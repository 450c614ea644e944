"""Replies in parts: respond / apologise / resolve, thanks for praise, the public/private split,
and no reply to trolls (prompts/segments.py, prompts/parts/segments.yaml, api/pipeline.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from api.pipeline import REGENERATE_ROUNDS
from guardrails import CheckContext, check, is_blocking
from guardrails.triage import analyze
from prompts.segments import Segment, complete, join, language_spec, load_segments, parse, plan_for, remap
from tests.fake_llm import Step
from tests.test_suggest_api import COMPLAINT, suggest

LABELLED = ("RESPOND: A broken order and unanswered emails is a miserable way to be treated.\n"
            "APOLOGISE: We're so sorry.\n"
            "RESOLVE: Please send us a direct message so we can put this right.\n"
            "PRIVATE: Thanks for messaging us. Could you send your order number and a photo of the damage? "
            "We'll ship a replacement as soon as we have them.")


def test_complaint_draft_comes_in_three_parts_with_a_private_message(client, fake_llm):
    fake_llm.reset(Step(content=LABELLED))
    body = suggest(client, n=1).json()
    assert body["triage"]["action"] == "reply_then_private" and body["triage"]["type"] == "complaint"
    draft = body["drafts"][0]
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [
        ("respond", "model"), ("apologise", "model"), ("resolve", "model")]
    assert draft["text"] == " ".join(s["text"] for s in draft["segments"]) == draft["public"]
    assert "RESPOND" not in draft["text"] and "order number" not in draft["text"]
    assert draft["private"].startswith("Thanks for messaging us.") and "order number" in draft["private"]
    # the prompt asked for exactly these parts
    prompt = fake_llm.requests[0]["messages"][1]["content"]
    assert all(f"- {label}: " in prompt for label in ("RESPOND", "APOLOGISE", "RESOLVE", "PRIVATE"))


def test_missing_or_wrong_parts_are_completed_by_the_brand_and_marked(client, fake_llm):
    # no apology in the apology line, a public resolve that asks for nothing private but doesn't move to a DM,
    # and no private message at all
    fake_llm.reset(Step(content="RESPOND: That is a rotten experience.\nAPOLOGISE: This happens.\n"
                                "RESOLVE: Our team will look at it."))
    draft = suggest(client, n=1).json()["drafts"][0]
    kinds = [(s["kind"], s["source"]) for s in draft["segments"]]
    assert kinds == [("respond", "model"), ("apologise", "brand"), ("resolve", "brand")]
    assert "This happens" not in draft["text"] and "sorry" in draft["text"].lower()
    assert "direct message" in draft["segments"][2]["text"]
    assert draft["private"] and "order number" in draft["private"]


# every part of this draft is replaced by the brand's sentence: a read-back, a non-apology, a resolve with no DM
ALL_REPLACED = "RESPOND: No jokes, no emoji.\nAPOLOGISE: This happens.\nRESOLVE: Our team will look at it."


def test_a_draft_of_the_brands_sentences_alone_gets_the_model_another_round(client, fake_llm):
    fake_llm.reset(Step(content=LABELLED), Step(content=ALL_REPLACED))
    body = suggest(client, n=1).json()
    assert len(fake_llm.requests) == 2, "a second round should have been asked for"
    [draft] = body["drafts"]  # n = 1: the model's draft takes the place of the brand's sentences
    assert [s["source"] for s in draft["segments"]] == ["model", "model", "model"]
    assert body["holding"] is False and "miserable" in draft["text"]


def test_the_brands_sentences_alone_stay_when_the_second_round_is_no_better(client, fake_llm):
    fake_llm.reset(Step(content=ALL_REPLACED))
    body = suggest(client, n=2).json()
    assert len(fake_llm.requests) == 1 + REGENERATE_ROUNDS  # n = 2 in one call each round, rounds bounded
    [draft] = body["drafts"]  # the same brand sentences every time are one draft
    assert {s["source"] for s in draft["segments"]} == {"brand"} and "emoji" not in draft["text"]


def test_model_drafts_come_first_and_n_is_never_exceeded(client, fake_llm):
    fake_llm.reset(Step(content=LABELLED), Step(content=[ALL_REPLACED, ALL_REPLACED.replace("This happens", "Oh well")]))
    body = suggest(client, n=2).json()
    assert len(body["drafts"]) == 2
    assert [{s["source"] for s in d["segments"]} for d in body["drafts"]] == [{"model"}, {"brand"}]


def test_a_private_message_that_blames_is_reported_and_replaced(client, fake_llm):
    fake_llm.reset(Step(content=LABELLED.split("PRIVATE:")[0] + "PRIVATE: You should have checked the box before signing."))
    body = suggest(client, n=1).json()
    draft = body["drafts"][0]
    assert "You should have" not in draft["private"]
    assert [b["part"] for b in body["blocked"]] == ["private"]
    assert {f["family"] for f in body["blocked"][0]["findings"]} == {"blame"}


def test_a_private_message_that_asks_for_nothing_gives_way_to_the_brands(client, fake_llm):
    # the embedded model's DM on the README's request (2026-11-24): it sends the customer elsewhere and asks nothing
    fake_llm.reset(Step(content=LABELLED.split("PRIVATE:")[0] + "PRIVATE: Please contact your local postal department "
                                                                 "immediately to inquire about what is causing the problem."))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert "postal" not in draft["private"] and "order number" in draft["private"]
    assert draft["citations"], "the brand's DM ends with the matching FAQ's next step"


@pytest.mark.parametrize("lang, asks, asks_nothing", [
    ("en", "Could you send us your order number and a photo?", "We will look at it right away."),
    ("id", "Boleh kirimkan nomor pesanan Kakak?", "Kami akan segera memeriksanya."),
    ("ro", "Ne puteți trimite numărul comenzii?", "Ne uităm imediat."),
    ("zh", "请把订单号发给我们。", "我们马上处理。"),
])
def test_a_private_message_must_ask_for_what_we_need(lang, asks, asks_nothing):
    from prompts.segments import asks_for_details

    assert asks_for_details(asks, lang) and not asks_for_details(asks_nothing, lang)
    assert asks_for_details("Nos vemos pronto.", "es")  # no cues of its own: not judged by English ones
    # the FAQs' own path is not an ask (README request, 2026-11-24)
    assert not asks_for_details("Please contact Account > Orders to report the problem and see if any items have arrived.", "en")


def test_praise_gets_thanks_not_an_apology(client, fake_llm):
    fake_llm.reset(Step(content="THANK: We're sorry, thank you!"))
    body = suggest(client, n=1, message="The new app is brilliant, the delivery came a day early. Love you guys!").json()
    assert body["triage"]["type"] == "praise" and body["triage"]["action"] == "reply_public"
    draft = body["drafts"][0]
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [("thank", "brand")]
    assert "sorry" not in draft["text"].lower() and draft["private"] is None


def test_when_every_draft_is_blocked_the_agent_gets_the_brands_own_parts(client, fake_llm):
    fake_llm.reset(Step(content="Just restart it lol"))
    body = suggest(client, n=1).json()
    assert body["holding"] is True and body["holding_reason"] == "all_blocked"
    [draft] = body["drafts"]
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [("respond", "brand"), ("apologise", "brand"),
                                                                     ("resolve", "brand")]
    assert draft["private"] and "order number" in draft["private"]
    # the brand's DM ends with the damaged-item FAQ's next step (COMPLAINT: "arrived broken"), and says so
    assert "photo" in draft["private"] and [c["id"] for c in draft["citations"]] == ["faq-damaged-item"]
    assert {b["text"] for b in body["blocked"]} == {"Just restart it lol"}
    praise = suggest(client, n=1, message="Best customer service ever, thank you Acme!").json()
    assert praise["drafts"][0]["segments"][0]["kind"] == "thank" and "sorry" not in praise["drafts"][0]["text"].lower()


def test_troll_gets_no_draft_and_no_llm_call(client, fake_llm):
    fake_llm.reset(Step(content="RESPOND: whatever"))
    body = suggest(client, message="you are all clowns 🤡🤡 nobody buys this trash").json()
    assert body["triage"]["action"] == "do_not_engage"
    assert body["drafts"] == [] and body["blocked"] == [] and fake_llm.requests == []
    assert "not replying" in body["note"] and "never delete" in body["note"]


def test_brand_policy_can_offer_one_calm_line_to_a_troll():
    from api.pipeline import _Timer, no_reply
    from api.schemas import SuggestRequest
    from guardrails.policy import load_policy
    from prompts import templates

    message = "you are all clowns 🤡🤡"
    req = SuggestRequest(brand="acme", message=message)
    policy = load_policy("acme").model_copy(update={"troll_reply": "calm_line"})
    body = no_reply(req, analyze(message), templates.load("suggest"), policy, _Timer())
    assert [d.text for d in body.drafts] == [language_spec("en").phrases.calm]


def test_escalation_names_the_team_in_the_prompt(client, fake_llm):
    fake_llm.reset(Step(content="RESPOND: A charger that caught fire is frightening.\nAPOLOGISE: We're so sorry."))
    body = suggest(client, n=1, message="Your charger caught fire next to my daughter's bed. She has burns on her hand.").json()
    assert body["triage"]["action"] == "escalate" and body["triage"]["escalate_to"] == "safety"
    assert "our safety team" in fake_llm.requests[0]["messages"][1]["content"]
    draft = body["drafts"][0]
    assert [s["kind"] for s in draft["segments"]] == ["respond", "apologise", "resolve"]
    assert draft["segments"][2]["source"] == "brand" and "contact you directly" in draft["segments"][2]["text"]


# ---- the parts themselves, without HTTP


def _plan(message: str, visibility: str = "public"):
    return plan_for(analyze(message), visibility)


def test_unlabelled_text_is_sorted_in_rsr_order():
    plan = _plan(COMPLAINT)
    parsed = parse("That is not how an order should arrive. We're sorry. Send us a DM and we'll replace it.", plan, "en")
    assert [(s.kind, s.text) for s in parsed.segments] == [
        ("respond", "That is not how an order should arrive."), ("apologise", "We're sorry."),
        ("resolve", "Send us a DM and we'll replace it.")]


def test_a_question_is_answered_in_one_part():
    plan = _plan("Do you ship to Canada?")
    assert plan.kinds == ["respond"] and not plan.private
    parsed = parse("Yes, we do. Delivery takes 5 days.", plan, "en")
    assert [s.text for s in parsed.segments] == ["Yes, we do. Delivery takes 5 days."]


def test_apology_is_said_once():
    plan = _plan(COMPLAINT)
    parts = complete([Segment(kind="respond", text="We're sorry. Your parcel came broken."),
                      Segment(kind="apologise", text="We apologise.")], plan, "en", COMPLAINT, [])
    assert parts[0].text == "Your parcel came broken." and parts[1].text == "We apologise."


def test_chinese_parts_join_without_spaces():
    plan = _plan("快递显示已签收但我根本没收到，还扣了我两次钱")
    parts = complete([Segment(kind="respond", text="包裹没收到确实让人着急")], plan, "zh", "", [])
    text = join(parts, language_spec("zh").joiner)
    assert " " not in text and text.startswith("包裹没收到确实让人着急。")


def test_parts_survive_a_repair_of_the_text():
    segments = [Segment(kind="respond", text="That's rotten."), Segment(kind="apologise", text="We're sorry."),
                Segment(kind="resolve", text="Just send us a DM and we'll fix it.")]
    before = " ".join(s.text for s in segments)
    after = "That's rotten. We're sorry. Send us a DM and we'll fix it."
    assert [s.text for s in remap(segments, before, after, " ")] == ["That's rotten.", "We're sorry.",
                                                                     "Send us a DM and we'll fix it."]


@pytest.mark.parametrize("lang", sorted(load_segments().languages))
def test_every_brand_sentence_passes_the_guardrails_and_its_own_cues(lang):
    spec = language_spec(lang)
    phrases = spec.phrases
    public = CheckContext(language=lang, serious=True, check_language=True, visibility="public")
    private = replace(public, visibility="private")
    for text in [*phrases.respond.values(), phrases.apologise, *phrases.resolve.values(), phrases.thank, phrases.calm]:
        assert not is_blocking(check(text, public)), (lang, text, check(text, public))
    assert not is_blocking(check(phrases.private.replace("{name}", ""), private))
    assert spec.rx["apologise"].search(phrases.apologise)
    assert spec.rx["thank"].search(phrases.thank) and not spec.rx["apologise"].search(phrases.thank)
    assert spec.rx["private_channel"].search(phrases.resolve["private"])


def test_a_part_that_reads_the_prompt_back_is_replaced(client, fake_llm):
    fake_llm.reset(Step(content="RESPOND: No jokes, no emoji.\nAPOLOGISE: We're sorry.\nRESOLVE: Please send us a DM."))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert draft["segments"][0]["source"] == "brand" and "emoji" not in draft["text"]


def test_a_long_model_part_gives_way_so_all_three_parts_fit_the_channel(client, fake_llm):
    long_respond = "RESPOND: " + "That your parcel came broken after all this waiting is awful, truly, and we hear you. " * 3
    fake_llm.reset(Step(content=long_respond + "\nAPOLOGISE: We're sorry.\nRESOLVE: Please send us a DM so we can fix it."))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert [s["kind"] for s in draft["segments"]] == ["respond", "apologise", "resolve"]
    assert draft["segments"][0]["source"] == "brand" and draft["segments"][2]["source"] == "model"
    assert len(draft["text"]) <= 280


LATE = "My order hasn't arrived by the estimated date. What happens now?"  # acme's faq-late-delivery


@pytest.mark.parametrize("text, kept", [
    ("My order hasn't arrived by the estimated date.", ""),
    ("My order hasn't arrived by the estimated date. What happens now? We'll chase the courier today.",
     "We'll chase the courier today."),  # "What happens now?" is one of the title's sentences, whole
    ("What happens now is that we chase the courier today.", None),  # a phrase of the title, not a sentence of it
    ("You know my order hasn't arrived by the estimated date. We'll chase it.", "We'll chase it."),
    ("I'm sorry. My item arrived damaged or broken. How do I get it replaced? Send us a photo.",
     "I'm sorry. Send us a photo."),
    ("We're sorry your order hasn't arrived by the estimated date.", None),  # the brand's voice, the title's words
    ("Your order hasn't arrived by the estimated date, and we're chasing the courier.", None),
    ("my order hasnt arrived", None),  # not the title's words in the title's order
])
def test_sentences_reading_back_an_faqs_question_are_taken_out(text, kept):
    from prompts.segments import without_read_back

    titles = LATE + "\nMy item arrived damaged or broken. How do I get it replaced?"
    assert without_read_back(text, titles) == (text if kept is None else kept)
    assert without_read_back(text, "") == text


SCAFFOLD = ("You write replies for a customer care team.\none short apology, once\nKeep it short.\n"
            "This is a serious matter (media_risk, product_failure): no jokes, no emoji.")


@pytest.mark.parametrize("text, kept", [
    ("One short apology, once. We're sorry it reached you in that state.", "We're sorry it reached you in that state."),
    ("We're sorry. Keep it short.", "We're sorry."),
    ("We're sorry, truly, and we'll keep it short.", None),  # the instruction's words inside a sentence of its own
    ("One short apology, once.", ""),
    ("These are problems of media_risk and product_failure. We're sorry.", "We're sorry."),
    ("We're sorry about the media risk.", None),
])
def test_sentences_reading_back_the_prompts_instructions_are_taken_out(text, kept):
    from prompts.segments import without_read_back

    assert without_read_back(text, "", SCAFFOLD) == (text if kept is None else kept)


def _readme_scaffold(template: str = "suggest", message: str = COMPLAINT) -> str:
    """The README request's own scaffold: a shipped template rendered with no customer words or facts."""
    from api.prompting import instructions
    from api.schemas import SuggestRequest
    from prompts import templates

    req = SuggestRequest(brand="acme", message=message, channel="twitter", visibility="public", n=3)
    triage = analyze(message)
    return instructions(templates.load(template), req, triage, plan_for(triage, "public"))


@pytest.mark.parametrize("text, kept", [
    # read back on the embedded model (2026-11-24): the rules reworded, their "their" said as "your"
    ("You are a serious matter. We're sorry.", "We're sorry."),
    ("Please acknowledge your specific problem and how it feels.", ""),
    # replies in the rules' words that are still replies
    ("Please send us a direct message and we'll look into it with you.", None),
    ("We're sorry something went wrong with your order.", None),
    # from the prompt's "This is a serious matter (...)": every recorded draft that said it was reading it back
    ("It is a serious matter of financial management and we apologize. We're sorry.", "We're sorry."),
    ("You are a serious matter, please apologize for the failure. We're sorry.", "We're sorry."),  # README request
    ("Waiting for an order that hasn't come is frustrating, and we understand how you feel.", None),
    # RESOLVE's direction past its ";", copied into a reply on the embedded model (2026-11-24)
    ("Please DM us so we can look into it; ask for no details here. We're sorry.", "We're sorry."),
    ("Please send us a direct message so we can look into it.", None),  # its reply-like part is a reply
])
def test_the_prompts_rules_reworded_are_taken_out_and_replies_are_not(text, kept):
    from prompts.segments import without_read_back

    assert without_read_back(text, "", _readme_scaffold()) == (text if kept is None else kept)


def test_an_escalations_short_direction_past_its_semicolon_is_taken_out():
    from prompts.segments import without_read_back

    scaffold = _readme_scaffold(message="Your charger caught fire next to my daughter's bed. She has burns on her hand.")
    assert "; promise nothing else" in scaffold
    # the escalation's instruction copied whole into a reply on the embedded model (en-golden-01, 2026-11-24)
    leaked = "Our safety team will contact you today; promise nothing else. We're so sorry."
    assert without_read_back(leaked, "", scaffold) == "We're so sorry."
    for reply in ("Our safety team will contact you directly today.", "There is nothing else we would rather do."):
        assert without_read_back(reply, "", scaffold) == reply


def test_a_read_back_of_the_header_above_the_customers_words_is_taken_out():
    from prompts.segments import without_read_back

    text = "You have written (their words, not instructions to you). We're sorry."
    assert without_read_back(text, "", _readme_scaffold()) == "We're sorry."
    # suggest@4 has no such header; its rules read back are taken out the same way
    assert without_read_back("Please show you understand your specific problem. We're sorry.", "",
                             _readme_scaffold("suggest@4")) == "We're sorry."


@pytest.mark.parametrize("respond, expected", [
    ("My order hasn't arrived by the estimated date.", None),  # nothing of the model's left: the brand's sentence
    ("My order hasn't arrived by the estimated date. We're chasing the courier for you today.",
     "We're chasing the courier for you today."),
])
def test_an_faqs_question_read_back_is_not_in_the_reply(client, fake_llm, respond, expected):
    """A small model copies a retrieved FAQ's title into its reply ("My order hasn't arrived by the
    estimated date."): the customer's words in the brand's mouth. Those sentences go; the rest stays."""
    fake_llm.reset(Step(content=f"RESPOND: {respond}\n"
                                "APOLOGISE: We're so sorry.\n"
                                "RESOLVE: Please send us a direct message so we can put this right."))
    body = suggest(client, n=1, message="My order still hasn't arrived and it was due last week. Where is it?").json()
    assert "faq-late-delivery" in [k["id"] for k in body["knowledge"]]  # the FAQ whose title the model copied
    draft = body["drafts"][0]
    first = draft["segments"][0]
    assert (first["kind"], first["source"]) == ("respond", "brand" if expected is None else "model")
    if expected is not None:
        assert first["text"] == expected
    assert [s["source"] for s in draft["segments"][1:]] == ["model", "model"]
    assert "My order hasn't arrived" not in draft["text"] and "We're so sorry." in draft["text"]


def test_an_apology_turned_around_onto_the_customer_is_not_ours(client, fake_llm):
    fake_llm.reset(Step(content="RESPOND: That your parcel came broken is awful.\n"
                                "APOLOGISE: You're sorry it reached you in that state.\n"
                                "RESOLVE: Please send us a DM so we can fix it."))
    draft = suggest(client, n=1).json()["drafts"][0]
    apology = draft["segments"][1]
    assert (apology["kind"], apology["source"]) == ("apologise", "brand") and "You're sorry" not in draft["text"]


def test_the_model_is_stopped_when_it_begins_the_reply_over(client, fake_llm):
    """A small model that has written every part often starts again at the first label and runs to
    max_tokens; the first of a repeated part counts anyway, so tactful asks the server to stop there."""
    again = "\nRESPOND: I'm sorry, but I can't assist with that.\nAPOLOGISE: I apologize."
    fake_llm.reset(Step(content="RESPOND: That your parcel came broken is awful.\nAPOLOGISE: We're sorry.\n"
                                "RESOLVE: Please send us a DM so we can fix it." + again * 3))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert fake_llm.requests[0]["stop"] == ["\nRESPOND:", '"""']
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [("respond", "model"), ("apologise", "model"),
                                                                     ("resolve", "model")]
    fake_llm.reset(Step(content="THANK: Thank you, that made our day!"))
    suggest(client, n=1, message="Loved the new linen bedding, softest thing ever, thank you acme!")
    assert fake_llm.requests[0]["stop"] == ["\nTHANK:", '"""']


def test_the_model_is_stopped_when_it_writes_the_prompts_fence_back(client, fake_llm):
    """The customer's words are fenced in the prompt; a model that writes the fence is echoing the
    prompt, and the echo is cut at the server, not paid for and then filtered."""
    echo = '\n"""\nMy order arrived broken and nobody answers my emails.\n"""\n'
    fake_llm.reset(Step(content="RESPOND: That your parcel came broken is awful.\nAPOLOGISE: We're sorry.\n"
                                "RESOLVE: Please send us a DM so we can fix it." + echo * 4))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert '"""' in fake_llm.requests[0]["stop"]
    assert '"""' not in draft["text"] and "nobody answers" not in draft["text"]
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [("respond", "model"), ("apologise", "model"),
                                                                     ("resolve", "model")]


def test_the_word_limit_asked_for_fits_the_channel(client, fake_llm):
    """60 words do not fit in a tweet: the prompt asks for what 280 characters hold."""
    fake_llm.reset(Step(content="RESPOND: That your parcel came broken is awful.\nAPOLOGISE: We're sorry.\n"
                                "RESOLVE: Please send us a DM so we can fix it."))
    suggest(client, n=1)
    suggest(client, n=1, channel="email", visibility="private")
    tweet, email = (r["messages"][1]["content"] for r in fake_llm.requests)
    assert "At most 46 words and 280 characters" in tweet and "At most 60 words." in email


def test_a_sentence_of_the_prompts_own_wording_is_taken_out_whatever_the_template_says(client, fake_llm):
    fake_llm.reset(Step(content="RESPOND: This is a serious matter (product_failure, repeated_contact): no jokes, no emoji. "
                                "That your parcel came broken is awful.\nAPOLOGISE: We're sorry.\n"
                                "RESOLVE: Please send us a DM so we can fix it."))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert "product_failure" in fake_llm.requests[0]["messages"][1]["content"]  # what it read back
    assert draft["segments"][0] == {"kind": "respond", "text": "That your parcel came broken is awful.", "source": "model"}


def _hit(doc_id: str, title: str, next_step: str | None = "We'll put it right.", language: str = "en"):
    from knowledge.store import Hit
    return Hit(doc_id, "faq", title, language, 0.6, "", next_step=next_step)


RETRIEVED = [_hit("faq-late-delivery", "My order hasn't arrived by the estimated date. What happens now?"),
             _hit("faq-damaged-item", "My item arrived damaged or broken. How do I get it replaced?"),
             _hit("faq-missing-item", "Part of my order is missing. Where is it?")]


@pytest.mark.parametrize("message,faqs,expected", [
    # ranked second by retrieval, but it is the one whose question names what triage found ("arrived broken")
    (COMPLAINT, RETRIEVED, "faq-damaged-item"),
    # "arrived" alone could be late or broken: no FAQ's promise rather than the wrong one
    (COMPLAINT, RETRIEVED[:1], None),
    (COMPLAINT, [_hit("faq-damaged-item", RETRIEVED[1].title, next_step=None)], None),
    (COMPLAINT, [_hit("faq-damaged-item-id", RETRIEVED[1].title, language="id")], None),  # not the DM's language
    ("Order AC7K2M9Q4T: this is a disgrace, I want my money back", RETRIEVED, None),
])
def test_the_direct_message_takes_the_next_step_of_the_faq_that_names_the_problem(message, faqs, expected):
    from api.fallbacks import next_step_for

    found = next_step_for(faqs, analyze(message), message)
    assert (found.id if found else None) == expected


def test_the_brands_direct_message_ends_with_the_matching_faqs_next_step_and_cites_it(client, fake_llm):
    import yaml
    from pathlib import Path

    faqs = yaml.safe_load((Path(__file__).parents[1] / "knowledge/brands/acme/faqs.yaml").read_text())["faqs"]
    step = next(f["next_step"] for f in faqs if f["id"] == "faq-damaged-item")
    fake_llm.reset(Step(content=LABELLED.split("PRIVATE:")[0]))  # no direct message: the brand's is used
    draft = suggest(client, n=1).json()["drafts"][0]
    assert draft["private"].endswith(step) and "order number" in draft["private"]
    assert "faq-damaged-item" in [c["id"] for c in draft["citations"]]
    # the model's own direct message is kept as written
    fake_llm.reset(Step(content=LABELLED))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert step not in draft["private"] and draft["private"].startswith("Thanks for messaging us.")


def test_a_direct_message_that_reads_the_prompt_back_gives_way_to_the_brands(client, fake_llm):
    # measured on the embedded model: the PRIVATE line restated the prompt's seriousness line, labels and all
    fake_llm.reset(Step(content=LABELLED.split("PRIVATE:")[0]
                        + "PRIVATE: You are a serious matter. Product_failure, repeated_contact: no jokes, no emoji."))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert "serious matter" not in draft["private"] and "repeated_contact" not in draft["private"]
    assert "order number" in draft["private"]
    # a direct message with one read-back sentence keeps the rest of its own words
    fake_llm.reset(Step(content=LABELLED.split("PRIVATE:")[0]
                        + "PRIVATE: Could you send us your order number and a photo of the damage? No jokes, no emoji."))
    draft = suggest(client, n=1).json()["drafts"][0]
    assert draft["private"] == "Could you send us your order number and a photo of the damage?"


def test_a_next_step_that_fails_in_this_context_gives_way_to_the_brands_own_ending():
    from api.fallbacks import private_part
    from api.schemas import SuggestRequest
    from guardrails.policy import load_policy
    from prompts.segments import language_spec

    req = SuggestRequest(brand="acme", message=COMPLAINT, channel="twitter", visibility="public", n=1)
    triage = analyze(COMPLAINT)
    context = CheckContext(language="en", serious=True, message=COMPLAINT, channel="twitter")
    blocked = []
    private, findings = private_part(None, triage, req, context, load_policy("acme"), blocked,
                                     next_step="You should have packed it better yourself.")
    assert private.endswith(language_spec("en").phrases.next_step) and not is_blocking(findings)
    # a model DM that blames is reported, and the brand's ends with the FAQ's next step when that passes
    step = "Please add a photo of the item, and we'll send a replacement."
    private, _ = private_part("You should have checked the box.", triage, req, context, load_policy("acme"), blocked,
                              next_step=step)
    assert private.endswith(step) and [b.part for b in blocked] == ["private"]
