"""The prefilter derived from each rule's pattern: it may only ever skip rules that cannot match."""

from __future__ import annotations

import random
import re

import pytest

from guardrails.trigger_index import TriggerIndex
from guardrails.triggers import required_alternatives, required_literal_sets, required_literals


@pytest.mark.parametrize("pattern,expected", [
    (r"\bjust\s+(?=click|tap)", {"just"}),
    (r"\b(?:cukup|tinggal)\s+klik", {"cukup", "tinggal"}),  # longest guaranteed words win
    (r"\b(?:simply|merely)\s+", {"simply", "merely"}),
    (r"!{2,}|😡", {"!!", "😡"}),
    (r"只需|很简单", {"只需", "很简单"}),
    (r"\bpur\s+[sș]i\s+simplu\b", {"simplu"}),
    (r"\bLOL+\b", {"lo"}),
    (r"(?:a|\w+)\s+deal", {"deal"}),
])
def test_required_literals(pattern, expected):
    assert required_literals(pattern) == expected


@pytest.mark.parametrize("pattern", [r"\w+", r"(?:a|b)c?", r"(?:foo|\d+)", r"x*y?"])
def test_no_prefilter_when_nothing_is_guaranteed(pattern):
    assert required_literals(pattern) is None


def test_index_never_skips_a_rule_that_matches():
    # property check over random texts: every rule whose regex matches is among the candidates
    patterns = [r"\bjust\s+(?:click|tap)\b", r"\byou\s+should\s+have\b(?!\s+received)", r"(?:哈哈|😂)",
                r"\bif\s+you(?:\s+had|'d)\s+read", r"\b(?:it'?s|that'?s)\s+(?:so\s+)?easy\b", r"\w+@\w+", r"!{2,}"]
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    index = TriggerIndex(required_alternatives(p) for p in patterns)
    words = ["Just", "click", "JUST", "tap", "you", "should", "have", "received", "哈哈", "😂", "If", "you'd",
             "read", "it's", "That's", "so", "EASY", "a@b", "!", "!!", "ſ", "Justice", "adjust"]
    rng = random.Random(7)
    for _ in range(3000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        candidates = set(index.candidates(text.casefold()))
        for i, rx in enumerate(compiled):
            if rx.search(text):
                assert i in candidates, (patterns[i], text)


@pytest.mark.parametrize("pattern,expected", [
    (r"[赞棒]|👍", {"赞", "棒", "👍"}),
    (r"[!！]{2,}", {"!!", "!！", "！!", "！！"}),
    (r"[a-z]x", None),
    (r"[^ab]", None),
])
def test_small_character_classes(pattern, expected):
    assert required_literals(pattern) == (frozenset(expected) if expected else None)


def test_classes_inside_words_multiply_the_literal():
    assert required_literals(r"\br[aă]nit\b") == {"ranit", "rănit"}
    assert required_literals(r"(?:it|i[tț]i)") == {"it", "iti", "iți"}


def test_a_rule_needs_every_required_set():
    assert set(required_literal_sets(r"\byou\s+should\s+have\s+(?:read|checked)")) == {
        frozenset({"should"}), frozenset({"have"}), frozenset({"you"}), frozenset({"read", "checked"})}
    index = TriggerIndex([required_alternatives(r"\byou\s+should\s+have\s+(?:read|checked)")])
    assert index.candidates("you should have read it") == [0]
    assert index.candidates("you should have received it") == []  # "read" missing: the regex is not run


def test_alternatives_each_carry_their_own_requirement():
    alts = required_alternatives(r"\b(?:it\s+is|that'?s)\s+your\s+fault\b|\buser\s+error\b")
    assert {frozenset().union(*a) for a in alts} >= {frozenset({"user", "error"})}
    index = TriggerIndex([alts])
    assert index.candidates("a user error") == [0]
    assert index.candidates("your order had an error") == []  # "your" and "error", but from different alternatives
    assert required_alternatives(r"foo|\w+") == ()  # an alternative that needs nothing: always run


def test_lookarounds_and_digit_runs_are_required_too():
    """A positive lookaround's words are in the text, if not in the match; "\\d{4}" needs three digits in
    a row, written in any script (the index reads other digits as ASCII ones)."""
    index = TriggerIndex([required_alternatives(r"\bjust\s+(?=need\s+to\b)"), required_alternatives(r"\b\d{4}\b")])
    assert index.candidates("you just need to wait") == [0]
    assert index.candidates("just wait, we need it") == [0]  # the words are there: the regex decides
    assert index.candidates("just wait") == []
    assert index.candidates("order 1234") == [1] and index.candidates("订单１２３４") == [1]
    assert index.candidates("in 2 days, 24/7") == []
    assert re.search(r"\b\d{4}\b", "订单 １２３４") is not None  # what the index must not miss


def test_a_character_class_is_judged_under_its_own_patterns_flags():
    """`\\w` under (?a) stops before "é"; without it, "é" is a word character that `\\w+` can give back.
    The compiled-class cache must not hand the ASCII class to the Unicode pattern (or the reverse)."""
    from guardrails.triggers import _rigid_sequence, parser

    def rigid(pattern: str) -> bool:
        parsed = parser.parse(pattern, re.IGNORECASE)
        return _rigid_sequence(list(parsed), parsed.state)

    assert rigid(r"(?a)x\w+é")  # nothing to backtrack into: \w+ cannot take the é
    assert not rigid(r"x\w+é")  # \w+ takes the é and must give it back
