"""Every rule's own must-flag / must-not-flag examples, and the engine's contract."""

from __future__ import annotations

import pytest

from guardrails import CheckContext, check, is_blocking
from guardrails.engine import RULES_DIR, TRIAGE_FAMILIES, CompiledRule, available_languages, load_rule_file


def _entries():
    for lang in available_languages():
        for path in sorted((RULES_DIR / lang).glob("*.yaml")):
            file = load_rule_file(path)
            for rule in file.rules:
                yield file, rule


ENTRIES = list(_entries())


def _fires(file, rule, text: str) -> bool:
    cr = CompiledRule(rule, file)
    if file.family in TRIAGE_FAMILIES:
        return cr.rx.search(text) is not None
    return any(f.rule == cr.full_id for f in check(text, CheckContext(language=file.lang, serious=True)))


@pytest.mark.parametrize("file,rule", ENTRIES, ids=[f"{f.lang}.{f.family}.{r.id}" for f, r in ENTRIES])
def test_rule_examples(file, rule):
    assert rule.examples.flag, "every rule needs at least one must-flag example"
    assert rule.examples.ok, "every rule needs at least one must-not-flag example"
    assert rule.note and rule.source
    missed = [t for t in rule.examples.flag if not _fires(file, rule, t)]
    false = [t for t in rule.examples.ok if _fires(file, rule, t)]
    assert not missed, f"should flag: {missed}"
    assert not false, f"should not flag: {false}"


def test_spans_point_into_the_original_text():
    text = "Hi Ana! “Sorry” — just click Reset, it’s easy 😂"
    for f in check(text, CheckContext(serious=True)):
        assert text[f.start:f.end] == f.match
    rules = {f.rule for f in check(text, CheckContext(serious=True))}
    assert {"en.minimising.just-imperative", "en.minimising.its-easy", "en.humour.laughing-emoji"} <= rules


def test_humour_blocks_only_on_serious_messages():
    light = check("Glad you liked it lol", CheckContext(serious=False))
    serious = check("Glad you liked it lol", CheckContext(serious=True))
    assert [f.severity for f in light] == ["warn"] and not is_blocking(light)
    assert [f.severity for f in serious] == ["block"]


def test_words_that_merely_contain_just_or_easy_pass():
    for text in ["We adjusted the invoice.", "Justice matters to us.", "We can justify the delay: a storm.",
                 "Easyjet flights are not affected.", "We just shipped your order."]:
        assert not is_blocking(check(text)), text


def test_quoted_customer_words_are_not_the_brands():
    assert not is_blocking(check('You said the fix was "just restart it" and it did not work; we are sorry.'))


def test_empty_draft_is_blocking():
    findings = check("   ")
    assert is_blocking(findings) and findings[0].rule == "any.format.empty"


def test_a_draft_that_parrots_the_customer_is_blocked():
    message = "You charged my card twice for the same order and my rent is due tomorrow. Fix this now."
    parrot = "You charged my card twice for the same order and my rent is due tomorrow. Fix this now."
    reply = "We're sorry we charged you twice for the same order. We're refunding the second payment today."
    assert [f.rule for f in check(parrot, CheckContext(serious=True, message=message))] == ["any.format.echo"]
    assert not is_blocking(check(reply, CheckContext(serious=True, message=message)))


def test_a_draft_in_the_wrong_language_is_blocked():
    english = "We're sorry your parcel is late. We'll check with the courier and reply today."
    indonesian = "Mohon maaf paket Anda terlambat. Kami akan cek ke kurir dan membalas hari ini."
    assert "any.format.wrong-language" in {f.rule for f in check(english, CheckContext(language="id", check_language=True))}
    assert not is_blocking(check(indonesian, CheckContext(language="id", check_language=True)))
    assert not is_blocking(check(english, CheckContext(language="en", check_language=True)))
    assert not is_blocking(check("OK, thanks!", CheckContext(language="id", check_language=True))), "too short to judge"


@pytest.mark.parametrize("file,rule", ENTRIES, ids=[f"{f.lang}.{f.family}.{r.id}" for f, r in ENTRIES])
def test_triggers_are_a_safe_prefilter(file, rule):
    """Every text in which the regex matches (the must-flag examples) contains one of the triggers."""
    if not rule.triggers:
        return
    cr = CompiledRule(rule, file)
    for text in rule.examples.flag:
        for m in cr.rx.finditer(text):
            assert any(t in text.lower() for t in cr.triggers), (text, m.group(0))


def test_triggers_are_written_only_where_the_pattern_says_nothing():
    """Hand-written triggers are a fallback; where the pattern's own requirements can be read, they are
    not used, and a list kept there would only mislead whoever edits the rule."""
    from guardrails.triggers import split_alternatives

    unused = [f"{f.lang}.{f.family}.{r.id}" for f, r in ENTRIES if r.triggers and split_alternatives(r.pattern)[0]]
    assert unused == []


def test_one_suggestion_checks_each_text_and_context_once(monkeypatch):
    """Inside one_suggestion() a repeated (text, context) is judged once; a changed context is judged
    again; outside it nothing is remembered; every caller gets its own list."""
    from guardrails import engine

    calls = []
    real = engine._check
    monkeypatch.setattr(engine, "_check", lambda *a: calls.append(a[0]) or real(*a))
    joke = "Haha, that's a funny one 😂 we'll look into it."
    with engine.one_suggestion():
        first = engine.check(joke, CheckContext(serious=True))
        first.append("changed by the caller")
        again = engine.check(joke, CheckContext(serious=True))
        light = engine.check(joke, CheckContext(serious=False))
    assert len(calls) == 2
    assert "changed by the caller" not in again and is_blocking(again) and not is_blocking(light)
    engine.check(joke, CheckContext(serious=True))
    engine.check(joke, CheckContext(serious=True))
    assert len(calls) == 4
