"""Channel rules: counted the way each platform counts, enforced on every draft."""

from __future__ import annotations

import pytest

from guardrails import CheckContext, check, is_blocking
from guardrails.channels import channels, check_channel, length
from guardrails.policy import fix
from tests.fake_llm import Step
from tests.test_suggest_api import GOOD, suggest


@pytest.mark.parametrize("text,count,expected", [
    ("hello", "twitter", 5),
    ("😀" * 10, "twitter", 20),  # an emoji weighs 2
    ("👍🏽", "twitter", 2),  # with its skin tone: still one emoji
    ("你好" * 100, "twitter", 400),  # CJK weighs 2
    ("see https://example.com/a/very/long/path/that/goes/on/and/on", "twitter", 4 + 23),  # every URL is 23
    ("Mulțumim!", "twitter", 9),
    ("👍🏽", "graphemes", 1),
    ("👍🏽", "chars", 2),
])
def test_lengths_as_the_platform_counts(text, count, expected):
    assert length(text, count) == expected


def test_every_channel_has_a_note_and_source():
    for name, spec in channels().items():
        assert spec.note and spec.source, name


def test_too_long_for_twitter_blocks_and_the_fix_keeps_whole_sentences():
    draft = "We're so sorry your parcel arrived damaged. " * 8  # 352 characters
    findings = check(draft.strip(), CheckContext(channel="twitter", serious=True))
    assert is_blocking(findings) and findings[-1].family == "channel_length"
    fixed, after = fix(draft.strip(), findings, CheckContext(channel="twitter", serious=True))
    assert length(fixed, "twitter") <= 280 and fixed.endswith("damaged.") and not is_blocking(after)
    assert not check_channel(draft, "email", "en") or all(f.severity == "warn" for f in check_channel(draft, "email", "en"))


def test_chinese_counts_double_on_twitter():
    draft = "非常抱歉给您带来不便，我们会尽快为您处理退款。" * 8
    assert len(draft) < 280 and length(draft, "twitter") > 280
    assert is_blocking(check(draft, CheckContext(language="zh", channel="twitter")))
    assert not is_blocking(check(draft, CheckContext(language="zh", channel="facebook")))


def test_email_expects_a_greeting_and_a_sign_off():
    bare = check_channel("Your refund is on its way.", "email", "en")
    assert {f.rule for f in bare} == {"any.channel_format.email-greeting", "any.channel_format.email-signoff"}
    assert all(f.severity == "warn" for f in bare)
    assert check_channel("Hi Ana,\n\nYour refund is on its way.\n\nBest regards,\nacme", "email", "en") == []


def test_a_long_draft_comes_back_trimmed_to_the_channel(client, fake_llm):
    long_draft = GOOD + " " + "We will keep you posted every step of the way until this is fully resolved. " * 3
    fake_llm.reset(Step(content=long_draft.strip()))
    body = suggest(client, n=1, channel="twitter").json()
    draft = body["drafts"][0]
    # the longest part the model wrote (its resolve, with the repeated sentence) gives way to the brand's
    # sentence, so the reply fits and still has all three parts
    assert length(draft["text"], "twitter") <= 280
    assert [(s["kind"], s["source"]) for s in draft["segments"]] == [("respond", "model"), ("apologise", "model"),
                                                                     ("resolve", "brand")]
    assert "280 characters" in fake_llm.requests[0]["messages"][1]["content"]
    fake_llm.reset(Step(content=long_draft.strip()))
    body = suggest(client, n=1, channel="facebook").json()
    assert body["drafts"][0]["text"] == long_draft.strip()
