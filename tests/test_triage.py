from __future__ import annotations

import pytest

from guardrails.triage import analyze, detect_language


@pytest.mark.parametrize("message,category", [
    ("You charged me twice for one order!", "financial"),
    ("My account was hacked and someone ordered a TV", "security_privacy"),
    ("The charger caught fire last night", "safety_health"),
    ("I'll be talking to my lawyer about this", "legal"),
    ("Your app is down again, I can't pay", "service_outage"),
    ("This is the third time I write and nobody answers", "repeated_contact"),
])
def test_serious_messages_and_their_category(message, category):
    t = analyze(message)
    assert t.serious and category in t.categories
    assert t.sentiment == "negative"
    for reason in t.evidence:
        assert message[reason.start:reason.end] == reason.text


@pytest.mark.parametrize("message", ["Love the new app, thank you!", "Do you ship to Canada?", "What time do you open?"])
def test_light_messages_are_not_serious(message):
    t = analyze(message)
    assert not t.serious and t.action == "reply_public"


def test_actions():
    fire = analyze("The heater caught fire")
    assert fire.action == "escalate" and fire.escalate_to == "safety"
    lawyer = analyze("I'll be talking to my lawyer about this")
    assert lawyer.action == "escalate" and lawyer.escalate_to == "legal"
    charged = analyze("You charged me twice")
    assert charged.action == "reply_then_private" and charged.escalate_to is None
    troll = analyze("lol you people are clowns, bet nobody reads these")
    assert troll.troll and troll.action == "do_not_engage"


@pytest.mark.parametrize("text,lang", [
    ("My parcel has not arrived and I am really upset", "en"),
    ("Pesanan saya belum sampai padahal sudah seminggu, tolong dibantu", "id"),
    ("Comanda mea nu a ajuns nici după două săptămâni", "ro"),
    ("我的订单还没有到", "zh"),
])
def test_language_detection_offline(text, lang):
    assert detect_language(text) == lang


def test_direct_model_call_answers_as_the_detector_does():
    """detect_language_scored calls the fastText model itself; it must see what LangDetector.detect shows it."""
    from evals.guardrails_eval import load_draft_cases, load_triage_cases
    from guardrails.triage import _detector, _detector_input, _model

    cases, _ = load_draft_cases()
    rows, _ = load_triage_cases()
    texts = [c.text for c in cases[::7]] + [r["text"] for r in rows[::7]]
    texts += ["MY PARCEL IS LATE AGAIN!!!", "Hi\nthere, where is\nmy order?", "ok", "Comanda " * 30, "12345", "😡😡"]
    for text in texts:
        labels, scores = _model()[0].predict(_detector_input(text))
        expected = _detector().detect(text, model="lite", k=1)
        assert [(label.replace("__label__", ""), min(float(s), 1.0)) for label, s in zip(labels, scores)] == \
            [(r["lang"], r["score"]) for r in expected], text


def test_settled_languages_agree_with_labels_and_with_fasttext():
    """The function-word shortcut before fastText (languages.yaml `settled`) must never change an
    answer: on every labelled text it settles, it says what the label and fastText say."""
    from evals.guardrails_eval import load_draft_cases, load_triage_cases
    from guardrails.triage import _detect_statistically, _function_words, _hits, _settled

    cases, _ = load_draft_cases()
    rows, _ = load_triage_cases()
    texts = [(c.text, c.lang) for c in cases] + [(r["text"], r["lang"]) for r in rows]
    words = _function_words()
    settled = [(text, lang, answer) for text, lang in texts if (answer := _settled(_hits(text, words), words))]
    assert len(settled) > len(texts) / 4  # it does take most English texts off fastText
    for text, lang, answer in settled:
        assert answer == lang, text
        # what detection says without the shortcut: fastText, or the vote when fastText is unsure
        assert answer == _detect_statistically(text, _hits(text, words), words, "xx")[0], text


@pytest.mark.parametrize("text", [
    "Je suis très déçu de la livraison, le colis est arrivé en retard et personne ne répond de la part de la boutique",
    "aku mau refund please, the order is broken",  # mixed: no clear lead, fastText decides
    "Pesanan saya belum sampai padahal sudah seminggu, tolong dibantu ya kak",  # Indonesian: fastText decides
    "ok",
])
def test_settled_leaves_unclear_and_other_languages_to_fasttext(text):
    from guardrails.triage import _function_words, _hits, _settled

    words = _function_words()
    assert _settled(_hits(text, words), words) is None


def test_fast_tokens_are_the_regex_tokens():
    """_tokens() splits ASCII-worded texts as bytes for speed; it must give exactly the words _TOKEN
    finds (hyphens inside words, curly quotes, dashes and emoji as separators, letters of any script)."""
    import random

    from guardrails.triage import _TOKEN, _tokens

    rng = random.Random(7)
    alphabet = "ab -–’é²_1A\nș"
    texts = ["a--b -the the- e-mail mi-ati x_y 3rd a---b- ---", "don't can't we’re – ok 😂", "x² café", "１２ ok și"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 20))) for _ in range(5000)]
    for text in texts:
        fast = [t.decode() if isinstance(t, bytes) else t for t in _tokens(text)]
        assert fast == [t.casefold() for t in _TOKEN.findall(text)], text
