"""The generic rule engine: load rules/<lang>/<family>.yaml, match, report spans.

Rules are data: each entry names a regex `pattern` plus optional context
conditions, and carries its own must-flag / must-not-flag examples (checked by
tests). The engine knows nothing about any particular word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from guardrails.anchors import SplitMatcher, text_kind
from guardrails.channels import check_channel
from guardrails.finding import Finding, Severity
from guardrails.trigger_index import TriggerIndex
from guardrails.triggers import split_alternatives

RULES_DIR = Path(__file__).parent / "rules"
TRIAGE_FAMILIES = frozenset({"seriousness", "sentiment", "troll"})

# Length-preserving normalisation, so spans found on the normalised text are
# spans of the original: Romanian cedilla forms to comma-below, curly quotes to straight.
_CHAR_MAP = str.maketrans({"ş": "ș", "Ş": "Ș", "ţ": "ț", "Ţ": "Ț", "’": "'", "‘": "'", "ʼ": "'"})
# A customer's words quoted back ("you said it was 'just a scratch'") are not the brand minimising.
_QUOTE_CHARS = re.compile("[\"“«„「『]")  # one C scan; most drafts quote nothing
_QUOTED = re.compile(r"\"[^\"\n]{1,200}\"|“[^”\n]{1,200}”|«[^»\n]{1,200}»|„[^”“\n]{1,200}[”“]|「[^」\n]{1,200}」|『[^』\n]{1,200}』")


class RuleError(Exception):
    """A rule file is malformed: names the file and the entry."""


class RuleExamples(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flag: list[str] = Field(default_factory=list, description="Texts this rule must flag.")
    ok: list[str] = Field(default_factory=list, description="Texts this rule must not flag.")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    pattern: str = Field(description="Regex, matched case-insensitively on normalised text.")
    triggers: list[str] = Field(default_factory=list, description="Substrings of which every match contains one. Normally "
                                "derived from the pattern (guardrails/triggers.py); used only when none can be derived.")
    unless_before: str | None = Field(None, description="Skip when this regex matches the text just before the match.")
    requires_before: str | None = Field(None, description="Flag only when this regex matches the text just before the match "
                                        "(a variable-width lookbehind: the span can then be just the word to fix).")
    unless_after: str | None = Field(None, description="Skip when this regex matches the text right after the match.")
    when: Literal["serious", "public"] | None = Field(
        None, description="'serious': blocking only when the customer's message is serious, a warning otherwise; "
                          "'public': only in a public reply (a private message may carry an order number).")
    category: str | None = Field(None, description="Triage cue files only: the category (or polarity) this cue signals.")
    skip_quoted: bool = True
    severity: Severity | None = None
    message: str
    suggestion: str | None = None
    note: str
    source: str
    examples: RuleExamples = Field(default_factory=RuleExamples)

    @field_validator("pattern", "unless_before", "unless_after", "requires_before")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str
    family: str
    severity: Severity = "block"
    description: str = ""
    rules: list[Rule]


class CompiledRule:
    __slots__ = ("rule", "lang", "family", "severity", "rx", "before", "after", "required_before", "full_id", "triggers",
                 "trigger_sets", "search", "finditer")

    def __init__(self, rule: Rule, file: RuleFile):
        self.rule, self.lang, self.family = rule, file.lang, file.family
        self.severity: Severity = rule.severity or file.severity
        self.full_id = f"{file.lang}.{file.family}.{rule.id}"
        self.rx = re.compile(rule.pattern, re.IGNORECASE)
        self.before = re.compile(f"(?:{rule.unless_before})$", re.IGNORECASE) if rule.unless_before else None
        self.after = re.compile(rule.unless_after, re.IGNORECASE) if rule.unless_after else None
        self.required_before = re.compile(f"(?:{rule.requires_before})$", re.IGNORECASE) if rule.requires_before else None
        given = frozenset(t.casefold() for t in rule.triggers)
        # the pattern's own words; failing those, the hand-written triggers; failing those, single characters
        derived, parts = split_alternatives(rule.pattern)
        if not derived and not given:
            derived, parts = split_alternatives(rule.pattern, loose=True)
        self.trigger_sets = derived or (((given,),) if given else ())
        # one set every match needs (the union over alternatives of each one's best set): tests and docs
        self.triggers = frozenset().union(*(alt[0] for alt in self.trigger_sets)) if self.trigger_sets else None
        # search/finditer(norm, folded, text_kind(norm, folded), which): rx's matches, found faster, running
        # only the alternatives `which` that the trigger index woke (guardrails/anchors.py)
        matcher = SplitMatcher(self.rx, parts if derived else ())
        self.search, self.finditer = matcher.search, matcher.finditer


@dataclass(slots=True)
class CheckContext:
    """What the engine needs to know about the conversation a draft answers. A plain dataclass, not a
    pydantic model: one is built for every draft checked, and validating it cost four times as much.
    Derive a variant with dataclasses.replace(); never change one in place (check() keys its memo on it)."""

    language: str = "en"
    serious: bool = False
    message: str | None = None  # the customer's message, when known: a draft must not parrot it
    check_language: bool = False  # block a draft confidently in another language than `language`
    channel: str | None = None  # the channel's length limit and shape (guardrails/channels.yaml)
    visibility: str = "public"  # rules with `when: public` apply to public replies only
    prompt: str | None = None  # the system prompt the draft was written under: reciting it is a leak


def normalise(text: str) -> str:
    if text.isascii():  # already NFC, and nothing in _CHAR_MAP is ASCII
        return text
    out = unicodedata.normalize("NFC", text)
    if len(out) != len(text):  # NFC can change length for decomposed input; only keep it when it did not
        out = text
    # str.translate looks every character of a non-ASCII text up in the map (7 us for a tweet); the
    # few characters to replace are found faster by a regex
    return _TO_MAP.sub(_mapped, out)


_TO_MAP = re.compile("[" + "".join(map(chr, _CHAR_MAP)) + "]")


def _mapped(m: re.Match) -> str:
    return _CHAR_MAP[ord(m.group())]


# libyaml's parser when PyYAML was built with it (its wheels are): the pure-Python one took ~40 % of
# start-up reading the rule files
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_rule_file(path: Path) -> RuleFile:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
        return RuleFile.model_validate(data)
    except Exception as exc:  # yaml, pydantic and re errors all mean "fix this file"
        raise RuleError(f"{path}: {exc}") from exc


@lru_cache(maxsize=None)
def rules_for(lang: str, rules_dir: Path = RULES_DIR) -> tuple[CompiledRule, ...]:
    compiled: list[CompiledRule] = []
    for path in sorted((rules_dir / lang).glob("*.yaml")):
        file = load_rule_file(path)
        if file.family in TRIAGE_FAMILIES:  # cues about the customer's message, not rules for drafts
            continue
        compiled.extend(CompiledRule(rule, file) for rule in file.rules)
    return tuple(compiled)


@lru_cache(maxsize=None)
def _index_for(lang: str) -> TriggerIndex:
    rules = rules_for(lang)
    return TriggerIndex((cr.trigger_sets for cr in rules), examples_folded(rules))


def examples_folded(rules: Iterable[CompiledRule]) -> list[str]:
    """The rules' own examples, normalised and case-folded: they stand for the texts to come when a
    trigger index judges which words are common."""
    return [normalise(x).casefold() for cr in rules for x in (*cr.rule.examples.flag, *cr.rule.examples.ok)]


def available_languages(rules_dir: Path = RULES_DIR) -> list[str]:
    return sorted(p.name for p in rules_dir.iterdir() if p.is_dir())


# One suggestion judges the same text under the same context several times: a draft, then the same
# draft made whole by the brand's sentences, and the brand's private message once per draft. Within
# `one_suggestion()`, each is checked once. Scoped to a request, so nothing outlives it.
_MEMO: ContextVar[dict | None] = ContextVar("tactful_check_memo", default=None)


@contextmanager
def one_suggestion() -> Iterator[None]:
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def check(text: str, context: CheckContext | None = None, languages: list[str] | None = None) -> list[Finding]:
    """All findings for one draft, ordered by position."""
    context = context or CheckContext()
    if (memo := _MEMO.get()) is None:
        return _check(text, context, languages)
    key = (text, tuple(map(context.__getattribute__, CheckContext.__slots__)), tuple(languages or ()))
    if key not in memo:
        memo[key] = _check(text, context, languages)
    return list(memo[key])  # callers get their own list; Findings are never changed in place


def _check(text: str, context: CheckContext, languages: list[str] | None) -> list[Finding]:
    if not text.strip():
        return [Finding(rule="any.format.empty", family="format", severity="block", lang=context.language, start=0, end=0,
                        match="", message="The model returned an empty draft.", suggestion=None)]
    norm = normalise(text)
    findings: list[Finding] = []
    if context.message and echoes(norm, normalise(context.message)):
        findings.append(Finding(rule="any.format.echo", family="not_a_reply", severity="block", lang=context.language,
                                start=0, end=len(text), match=text[:80], suggestion=None,
                                message="The draft repeats the customer's message back instead of answering it."))
    if context.prompt and (leak := _leaks(norm, context.prompt)):
        findings.append(Finding(rule="any.format.prompt-leak", family="not_a_reply", severity="block", lang=context.language,
                                start=leak[0], end=leak[1], match=text[leak[0]:leak[1]][:80], suggestion=None,
                                message="The draft recites tactful's own instructions to the model; a customer must never see them."))
    wrong = _wrong_language(text, context.language) if context.check_language else None
    if wrong:
        findings.append(Finding(rule="any.format.wrong-language", family="not_a_reply", severity="block",
                                lang=context.language, start=0, end=len(text), match=text[:80], suggestion=None,
                                message=f"The draft is in {wrong}, not in the customer's language ({context.language})."))
    quoted = [m.span() for m in _QUOTED.finditer(norm)] if _QUOTE_CHARS.search(norm) else []
    langs = languages or _languages_for(context.language)
    folded = norm.casefold()
    kind = text_kind(norm, folded)
    for lang in langs:
        rules = rules_for(lang)
        for i, which in _index_for(lang).woken(folded):  # only the rules, and alternatives, whose required words are in the text
            cr = rules[i]
            if cr.rule.when == "public" and context.visibility != "public":
                continue
            for m in cr.finditer(norm, folded, kind, which):
                start, end = m.span()
                if start == end:
                    continue
                if cr.rule.skip_quoted and any(qs <= start and end <= qe for qs, qe in quoted):
                    continue
                if cr.before and cr.before.search(norm, max(0, start - 60), start):
                    continue
                if cr.after and cr.after.match(norm, end):
                    continue
                if cr.required_before and not cr.required_before.search(norm, max(0, start - 60), start):
                    continue
                severity = cr.severity
                if cr.rule.when == "serious" and not context.serious:
                    severity = "warn"
                # validated: pydantic-core's validator is faster than model_construct's Python loop
                findings.append(Finding(
                    rule=cr.full_id, family=cr.family, severity=severity, lang=cr.lang, start=start, end=end,
                    match=text[start:end], message=cr.rule.message, suggestion=cr.rule.suggestion))
    if context.channel:
        findings.extend(check_channel(text, context.channel, context.language))
    findings.sort(key=lambda f: (f.start, f.end, f.rule))
    return findings


_WORD = re.compile(r"[\u4e00-\u9fff]|[^\W_]+")


def echoes(draft: str, message: str, share: float = 0.5) -> bool:
    """Small models often answer by restating the complaint in the first person ("You charged
    my card twice... Fix this now."). Flag drafts whose words mostly come, in order, from the message."""
    mine = _trigram_list(draft)
    if len(mine) < 4 or len(_trigram_list(message)) < 4:  # fewer than six words in either
        return False
    grams = _trigram_set(message)
    copied = sum(1 for gram in mine if gram in grams)
    return copied / len(mine) >= share


@lru_cache(maxsize=512)  # one draft is compared with the message, the prompt and each part's instruction
def _trigram_list(text: str) -> tuple[tuple[str, ...], ...]:
    words = _WORD.findall(text.lower())
    return tuple(tuple(words[i:i + 3]) for i in range(len(words) - 2))


LEAK_WORDS = 8  # this many words in a row from the system prompt is reciting it, not a coincidence


def _leaks(draft: str, prompt: str) -> tuple[int, int] | None:
    """The span of the first run of LEAK_WORDS consecutive words the draft shares with the prompt."""
    found = list(_WORD.finditer(draft))
    if len(found) < LEAK_WORDS:
        return None
    words = [m.group(0).lower() for m in found]
    grams, vocabulary = _prompt_grams(prompt)
    run = 0  # how many words up to here are all prompt words: only such a run can be a recited n-gram
    for end, word in enumerate(words):
        run = run + 1 if word in vocabulary else 0
        if run >= LEAK_WORDS and tuple(words[end - LEAK_WORDS + 1:end + 1]) in grams:
            return found[end - LEAK_WORDS + 1].start(), found[end].end()
    return None


# The message, the prompt and the instructions a draft is compared with are the same for every draft
# of a request (and the prompt for every request): split into n-grams once, not once per check.
@lru_cache(maxsize=256)
def _trigram_set(text: str) -> frozenset[tuple[str, ...]]:
    return frozenset(_trigram_list(text))


@lru_cache(maxsize=64)
def _prompt_grams(prompt: str) -> tuple[frozenset[tuple[str, ...]], frozenset[str]]:
    p = [w.lower() for w in _WORD.findall(prompt)]
    return frozenset(tuple(p[i:i + LEAK_WORDS]) for i in range(len(p) - LEAK_WORDS + 1)), frozenset(p)


def _wrong_language(text: str, expected: str) -> str | None:
    """The draft's language when it is confidently not `expected`; short drafts are not judged."""
    if len(_WORD.findall(text)) < 6:
        return None
    from guardrails.triage import detect_language_scored  # triage imports this module

    lang, score = detect_language_scored(text)
    return lang if lang != expected and score >= 0.8 else None


@lru_cache(maxsize=64)
def _languages_for(language: str) -> tuple[str, ...]:
    """Rules of the context language, plus English: drafts from small models drift into English."""
    langs = [language] if (RULES_DIR / language).is_dir() else []
    if "en" not in langs:
        langs.append("en")
    return tuple(langs)


def is_blocking(findings: list[Finding]) -> bool:
    return any(f.severity == "block" for f in findings)
