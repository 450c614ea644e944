"""Matching only where a match can start (guardrails/anchors.py) must find exactly what a plain
search finds: the same matches, the same spans, for every rule and cue."""

from __future__ import annotations

import random
import re

import pytest

from guardrails.anchors import _UNFOLDED, Matcher, SplitMatcher, start_anchors, text_kind
from guardrails.engine import RULES_DIR, available_languages, load_rule_file, normalise
from guardrails.trigger_index import TriggerIndex
from guardrails.triggers import split_alternatives

# Texts where case folding and `re` disagree, or offsets shift: they must fall back, not miss.
ODD = ["ı", "İ", "ß", "ẞ", "ſ", "K", "µ", "ς", "ﬁ", "\u0301", "😂", "12", "+40 712 345 678", "@", "\n",
       "\"", "„"]


def _patterns():
    out = []
    for lang in available_languages():
        for path in sorted((RULES_DIR / lang).glob("*.yaml")):
            file = load_rule_file(path)
            out.extend((f"{lang}.{file.family}.{r.id}", r.pattern, [*r.examples.flag, *r.examples.ok]) for r in file.rules)
    return out


PATTERNS = _patterns()
EXAMPLES = [text for _, _, texts in PATTERNS for text in texts]


def _variants(text: str, rng: random.Random) -> list[str]:
    at = rng.randrange(len(text) + 1)
    return [text, text.upper(), f"Hi there. {text} Thanks!", text[:at] + rng.choice(ODD) + text[at:],
            text.replace("i", "ı", 1), text + " " + rng.choice(EXAMPLES), "ă " + text,
            " ".join([text] * 17)]  # more places to try than Matcher tries one by one


def _prepared(text: str) -> tuple[str, str, int]:
    norm = normalise(text)
    folded = norm.casefold()
    return norm, folded, text_kind(norm, folded)


def _assert_as_re(rx: re.Pattern, norm: str, first, every, text: str) -> None:
    """`first` and `every` (a search's and a finditer's results) are what `re` itself finds."""
    plain = rx.search(norm)
    assert (first.span() if first else None) == (plain.span() if plain else None), text
    assert [m.span() for m in every] == [m.span() for m in rx.finditer(norm)], text


@pytest.mark.parametrize("rule_id,pattern,examples", PATTERNS, ids=[p[0] for p in PATTERNS])
def test_same_matches_as_a_plain_search(rule_id, pattern, examples):
    rng = random.Random(rule_id)
    rx = re.compile(pattern, re.IGNORECASE)
    matcher = Matcher(rx)
    texts = [v for text in examples for v in _variants(text, rng)] + rng.sample(EXAMPLES, 40)
    for text in texts:
        norm, folded, kind = _prepared(text)
        _assert_as_re(rx, norm, matcher.search(norm, folded, kind), matcher.finditer(norm, folded, kind), text)


@pytest.mark.parametrize("pattern,text,starts", [
    (r"\b(?:paid|charged)\s+\d+", "unpaid, paid 5; Charged", [8, 16]),  # at a word start, as \b says
    (r"(?<=\byou can )(?:easily|simply)\s+", "simply: you can EASILY", [0, 16]),
    (r"\br[aă]nit\b", "ranit, rănit, pranit", [0, 7]),
    (r"(?:\+\d{1,3}\s?)?\d{3}", "call +40 712", [5, 6, 7, 9, 10, 11]),
    (r"\b\d{3,}|\bRO\d{2}", "a1 22 RO12 pro", [3, 6]),
    (r"^\s*#+", "# x #", [0]),
    (r"(?:^|(?<=[.!?]\s))lol+", "lol. LOL", [0, 5]),  # "l+" is a repeat: the literal run is "lo"
    (r"[😂🤣]|haha", "haha 😂 ahaha", [0, 5, 8]),
    (r"\^x", "^x ^y", [0]),  # a literal caret is not the start of the text
    (r"(?a)\bab", "éab ab", [1, 4]),  # an ASCII \b is not the finder's Unicode one: no word start there
    (r"aa", "aaa", [0, 1]),  # overlapping occurrences
    (r"(?<![\w/.])\d{3}", "a123 456 7/890 (123", [5, 9, 11, 16]),  # no word character before: a word start
    (r"(?<![/.])\d{3}", "a123", [1, 2, 3]),  # a class without \w says nothing about word starts
])
def test_start_anchors(pattern, text, starts):
    anchors = start_anchors(pattern)
    assert anchors is not None
    assert anchors.positions(text, text.casefold()) == starts


@pytest.mark.parametrize("pattern", [r"\w+@\w+", r"(?:a|b)?", r"x*", r"[^a]b", r".ab", r"(?m)^\s*x|\s+y", r"\u0131x"])
def test_no_anchors_when_a_match_can_start_anywhere(pattern):
    assert start_anchors(pattern) is None


def test_a_costly_lookahead_is_only_a_hint():
    rx = re.compile(r"(?<![\w.])(?![\w.]*(?:support|help)[\w.]*@)[\w.]+@\w+\.\w+", re.IGNORECASE)
    matcher = Matcher(rx)
    assert matcher.relaxed is not None
    for text in ["mail help@acme.com or ana@mail.com", "@123 no mail here", "ana@mail.com, bo@x.io"]:
        kind = text_kind(text, text.casefold())
        assert [m.span() for m in matcher.finditer(text, text.casefold(), kind)] == [m.span() for m in rx.finditer(text)]


def test_a_pattern_that_cannot_be_anchored_is_searched_only_when_its_literal_core_is_there():
    rx = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", re.IGNORECASE)
    matcher = Matcher(rx)
    assert matcher.anchors is None and matcher.core is not None
    assert matcher.core.search("@acme thanks") is None and matcher.core.search("ana@mail.com") is not None
    for text in ["@acme we're on it", "write to ana.b@mail.co.uk or bo@x.io", "a@b", "x@y.z@w.v"]:
        norm, folded, kind = _prepared(text)
        _assert_as_re(rx, norm, matcher.search(norm, folded, kind), matcher.finditer(norm, folded, kind), text)
    assert Matcher(re.compile(r"(\w+)@\1")).core is None  # a back-reference needs what comes before


def test_case_folding_agrees_with_re_where_offsets_are_kept():
    """The assumptions behind finding starts in the folded text, for every code point whose fold is one
    character: two characters `re` matches case-insensitively fold alike, and folding keeps \\w and \\d."""
    import _sre

    word, digit = re.compile(r"\w"), re.compile(r"\d")
    folds: dict[int, str] = {}
    for cp in range(0x110000):
        c = chr(cp)
        f = c.casefold()
        if len(f) != 1 or c in _UNFOLDED:
            continue
        assert folds.setdefault(_sre.unicode_tolower(cp), f) == f, hex(cp)
        assert bool(word.match(c)) == bool(word.match(f)) and bool(digit.match(c)) == bool(digit.match(f)), hex(cp)


@pytest.mark.parametrize("rule_id,pattern,examples", PATTERNS, ids=[p[0] for p in PATTERNS])
def test_running_only_the_woken_alternatives_finds_the_same_matches(rule_id, pattern, examples):
    # what the engine does: the trigger index names the alternatives that can match, only those run
    rng = random.Random(rule_id)
    rx = re.compile(pattern, re.IGNORECASE)
    requirements, parts = split_alternatives(pattern)
    index, matcher = TriggerIndex([requirements]), SplitMatcher(rx, parts)
    texts = [v for text in examples for v in _variants(text, rng)] + rng.sample(EXAMPLES, 40)
    for text in texts:
        norm, folded, kind = _prepared(text)
        woken = index.woken(folded)
        if not woken:
            assert rx.search(norm) is None, text  # the index may only skip what cannot match
            continue
        which = woken[0][1]
        _assert_as_re(rx, norm, matcher.search(norm, folded, kind, which), matcher.finditer(norm, folded, kind, which), text)


def test_alternatives_are_split_only_where_re_would_try_them_in_the_same_order():
    # `qqa*(?:ab|b\s*)` on "qqab " is "qqab ": re takes a* as "a", fails "ab", takes "b " and is done.
    # `qqa*ab|qqa*b\s*` gives "qqab": its first alternative gives a* back before the second is tried.
    # An alternation behind something that can backtrack stays whole
    rx = r"qqa*(?:ab|b\s*)"
    assert re.search(rx, "qqab ").span() != re.search(r"qqa*ab|qqa*b\s*", "qqab ").span()
    assert len(split_alternatives(rx)[1]) <= 1
    assert len(split_alternatives(r"qqa*(?:ab\s+cc|b\s+cc)")[1]) == 1
    assert len(split_alternatives(r"\bxy(?:ab\s+c|bb\s+c)")[1]) == 2
    # a repeat followed by what it cannot take, or an optional word followed by what it cannot start
    # with, matches one way only: what comes after them can still be split
    assert len(split_alternatives(r"xy*(?:ab\s+c|bb\s+c)")[1]) == 2
    # ("is|was" are plain words: they stay one literal run, "is" or "was", in both alternatives)
    assert len(split_alternatives(r"\b(?:is|was)\s+(?:entirely\s+|solely\s+)?(?:down\s+to|on)\s+you")[1]) == 2


def test_split_alternatives_match_as_the_whole_pattern_on_random_patterns():
    # property check of the ordered-choice claim: every alternative run, merged, is the whole pattern
    atoms = ["ab", "ba", "aab", "a", "b", r"\s+", r"\s*", "a*", "a*?", "(?:ab|a)", "(?:ab)?", "b+", "(?:aa|ab|ba)",
             "(?:a|b)*", r"\b", "(?:ab|ba)", "(?:b|ab)", "(?=a)", "(?:ab\\s+|ba\\s+)?", "[ab]{2}"]
    rng = random.Random(11)
    tried = 0
    for _ in range(4000):
        def seq() -> str:
            return "".join(rng.choice(atoms) for _ in range(rng.randint(1, 4)))
        pattern = "|".join(seq() for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.5:
            pattern = f"{seq()}(?:{pattern}){seq()}"
        rx = re.compile(pattern, re.IGNORECASE)
        _, parts = split_alternatives(pattern)
        if len(parts) < 2:
            continue
        tried += 1
        matcher, every = SplitMatcher(rx, parts), tuple(range(len(parts)))
        for _ in range(12):
            text = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 12)))
            norm, folded, kind = _prepared(text)
            _assert_as_re(rx, norm, matcher.search(norm, folded, kind, every), matcher.finditer(norm, folded, kind, every),
                          f"{pattern!r} on {text!r}")
    assert tried > 500  # the generator does produce patterns that split
