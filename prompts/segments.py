"""Replies built from parts: respond, apologise, resolve (RSR) for complaints, thanks for praise,
and a private-message draft when the conversation moves to DMs.

The model is asked for labelled lines (RESPOND: … APOLOGISE: … RESOLVE: …). Small models
follow the shape but not always the content: they restate the customer's message, forget a
part, or "apologise" without an apology. So each part is checked against the language's cues in
`prompts/parts/segments.yaml`, and a part that is missing or wrong is replaced by the brand-safe
sentence from the same file, marked `source: brand` so the agent sees what tactful wrote.
A model that ignores the labels has its sentences sorted into parts by the same cues.
"""

from __future__ import annotations

import difflib
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from guardrails.channels import channels, length
from guardrails.engine import echoes
from guardrails.triage import Triage
from prompts.read_back import INSTRUCTION_ECHO, SENTENCE as _SENTENCE, from_scaffold, without_read_back

SEGMENTS_FILE = Path(__file__).parent / "parts" / "segments.yaml"
Kind = Literal["respond", "apologise", "resolve", "thank"]
_LABELS = {"respond": "RESPOND", "apologise": "APOLOGISE", "resolve": "RESOLVE", "thank": "THANK", "private": "PRIVATE"}
_LABEL_LINE = re.compile(r"^[ \t*#>-]*(RESPOND|APOLOGI[SZ]E|RESOLVE|THANKS?|PRIVATE)[ \t*]*[:：][ \t*]*",
                         re.IGNORECASE | re.MULTILINE)


class SegmentsError(Exception):
    """segments.yaml is malformed: names what is wrong."""


class Segment(BaseModel):
    kind: Kind
    text: str
    source: Literal["model", "brand"] = Field("model", description="`brand`: the model left this part out or got it "
                                                                   "wrong, so tactful used the brand's sentence.")


class _Cues(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apologise: str
    private_channel: str
    thank: str
    resolve: str
    details: str  # what a direct message asks for: order number, email, a photo


class _Phrases(BaseModel):
    model_config = ConfigDict(extra="forbid")
    respond: dict[str, str] = Field(description="By triage category; `default` for the rest.")
    apologise: str
    resolve: dict[Literal["default", "private", "escalate"], str]
    thank: str
    private: str = Field(description="The brand's direct message: `{name}`, then `{next_step}` at the end.")
    next_step: str = Field(description="How the direct message ends when no FAQ gives a next step for this problem.")
    calm: str = Field(description="The one calm line for a troll, when the brand's policy wants any reply at all.")


class _Language(BaseModel):
    model_config = ConfigDict(extra="forbid")
    joiner: str
    cues: _Cues
    phrases: _Phrases

    @cached_property
    def rx(self) -> dict[str, re.Pattern]:
        return {name: re.compile(pattern, re.IGNORECASE) for name, pattern in self.cues.model_dump().items()}


class SegmentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plans: dict[Literal["complaint", "question", "praise"], list[Kind]]
    instructions: dict[Literal["respond", "apologise", "resolve", "thank", "private"], dict[str, str]]
    languages: dict[str, _Language]


class Plan(BaseModel):
    """What one reply is made of, decided from the triage."""
    kinds: list[Kind]
    private: bool = False  # reply_then_private: a public acknowledgement plus a private-message draft
    mode: Literal["complaint", "question", "praise", "escalate"] = "complaint"
    team: str | None = None


class Parsed(BaseModel):
    """What the model wrote, by part, before any part is checked or completed."""
    segments: list[Segment]
    private: str | None = None

    def text(self, joiner: str) -> str:
        return joiner.join(s.text for s in self.segments)


def join(segments: list[Segment], joiner: str) -> str:
    """The parts as one reply; a part without closing punctuation gets a full stop."""
    out = []
    for s in segments:
        text = s.text.strip()
        if text and text[-1].isalnum():
            text += "." if joiner else "。"
        out.append(text)
    return joiner.join(t for t in out if t).strip()


@lru_cache(maxsize=1)
def load_segments(path: Path = SEGMENTS_FILE) -> SegmentsFile:
    try:
        spec = SegmentsFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for lang in spec.languages.values():
            lang.rx  # noqa: B018 - a bad regex fails at load time, not on a customer's request
    except (OSError, yaml.YAMLError, ValueError, re.error) as exc:
        raise SegmentsError(f"{path}: {exc}") from exc
    if "en" not in spec.languages:
        raise SegmentsError(f"{path}: English is the fallback language and must be present")
    return spec


def language_spec(language: str) -> _Language:
    spec = load_segments()
    return spec.languages.get(language) or spec.languages["en"]


def plan_for(triage: Triage, visibility: str = "public") -> Plan | None:
    """None for `do_not_engage`: no drafted reply to a troll. In a conversation that is already
    private (email, chat, a DM), `reply_then_private` needs no public part."""
    if triage.action == "do_not_engage":
        return None
    plans = load_segments().plans
    if triage.action == "escalate":
        return Plan(kinds=plans["complaint"], mode="escalate", team=triage.escalate_to)
    if triage.action == "reply_then_private":
        return Plan(kinds=plans["complaint"], private=visibility == "public")
    mode = triage.type if triage.type in plans else "question"
    return Plan(kinds=plans[mode], mode=mode)


def prompt_parts(plan: Plan) -> list[dict[str, str]]:
    """The labelled lines the prompt asks for, each with its instruction."""
    instructions = load_segments().instructions
    parts = []
    for kind in [*plan.kinds, *(["private"] if plan.private else [])]:
        options = instructions[kind]
        key = "private" if plan.private and kind == "resolve" else plan.mode
        text = options.get(key) or options.get("complaint" if plan.mode == "escalate" else "") or options["default"]
        parts.append({"label": _LABELS[kind], "instruction": text.replace("{team}", _team_words(plan.team))})
    return parts


def parse(raw: str, plan: Plan, language: str) -> Parsed:
    """The model's parts, in the plan's order: labelled lines when it used them, else its sentences
    sorted by the language's cues. Only what the model wrote; nothing is added here."""
    lang = language_spec(language)
    found = _labelled(raw) or _sorted(raw, lang, plan.kinds)
    segments = [Segment(kind=kind, text=found[kind].strip()) for kind in plan.kinds if found.get(kind, "").strip()]
    if not segments and raw.strip() and not _LABEL_LINE.search(raw):
        segments = [Segment(kind=plan.kinds[0], text=raw.strip())]
    return Parsed(segments=segments, private=found.get("private", "").strip() or None if plan.private else None)


def complete(segments: list[Segment], plan: Plan, language: str, message: str, categories: list[str],
             scaffold: str = "", questions: str = "") -> list[Segment]:
    """Every part the plan asks for: the model's when it fits (an apology that apologises, a public
    resolve that moves to a DM, nothing parroted from the customer or read back from the prompt's
    instructions, `scaffold`; sentences reading back those instructions or a retrieved FAQ's
    question, `questions`, are taken out of it), else the brand's sentence."""
    lang = language_spec(language)
    mine = {s.kind: s for s in segments}
    asked = {p["label"]: p["instruction"] for p in prompt_parts(plan)}
    out: list[Segment] = []
    for kind in plan.kinds:
        seg = mine.get(kind)
        if seg is not None and (answer := without_read_back(seg.text, questions, scaffold)) != seg.text:
            seg = Segment(kind=kind, text=answer, source=seg.source)
        if (seg is not None and _fits(kind, seg.text, plan, lang, message)
                and not echoes(seg.text, asked[_LABELS[kind]], INSTRUCTION_ECHO) and not from_scaffold(seg.text, scaffold)):
            out.append(seg)
        else:
            out.append(Segment(kind=kind, text=_phrase(kind, plan, lang, categories), source="brand"))
    if "apologise" in plan.kinds and len(out) > 1:
        _apologise_once(out, lang)
    return out


def fit_channel(segments: list[Segment], plan: Plan, language: str, categories: list[str], channel: str | None) -> list[Segment]:
    """Parts that fit the channel together: while the reply is too long, the longest part the model
    wrote gives way to the brand's (shorter) sentence, so a cut never drops the apology or the next step."""
    spec = channels().get(channel or "other")
    if spec is None or spec.max_length is None:
        return segments
    lang = language_spec(language)
    out = list(segments)
    while length(join(out, lang.joiner), spec.count) > spec.max_length:
        mine = [i for i, seg in enumerate(out) if seg.source == "model"]
        if not mine:
            break
        i = max(mine, key=lambda i: len(out[i].text))
        out[i] = Segment(kind=out[i].kind, text=_phrase(out[i].kind, plan, lang, categories), source="brand")
    return out


def private_message(text: str | None, language: str, message: str, customer_name: str | None,
                    next_step: str | None = None, scaffold: str = "", questions: str = "") -> tuple[str, Literal["model", "brand"]]:
    """The model's direct message when it wrote a real one (not the customer's words, not our
    instructions or an FAQ's question read back: those sentences are taken out, as from the public
    parts), else the brand's, ending with `next_step` (the matching FAQ's own "what we do" sentence)
    or the brand's promise to come back."""
    if text:
        text = without_read_back(text, questions, scaffold)
    if (text and not echoes(text, message) and not echoes(text, load_segments().instructions["private"]["default"], INSTRUCTION_ECHO)
            and not from_scaffold(text, scaffold)):
        return text, "model"
    name = f" {customer_name}" if customer_name else ""
    phrases = language_spec(language).phrases
    return phrases.private.replace("{name}", name).replace("{next_step}", next_step or phrases.next_step), "brand"


def asks_for_details(text: str, language: str) -> bool:
    """A direct message asks for something we need to act on: the order number, an email, a photo. A language
    the brand has no sentences in is not judged by another language's cues."""
    languages = load_segments().languages
    return language not in languages or bool(languages[language].rx["details"].search(text))


def private_language(language: str) -> str:
    """The language the brand's direct message is written in (English when the file has none for `language`)."""
    return language if language in load_segments().languages else "en"


def remap(segments: list[Segment], before: str, after: str, joiner: str) -> list[Segment]:
    """The parts of `after`, a repaired version of `before` (the parts joined): each part keeps
    its share of the text through the edit. A part the repair emptied is dropped."""
    bounds, pos = [], 0
    for s in segments:
        start = before.find(s.text, pos)
        if start < 0:
            return [Segment(kind=segments[0].kind, text=after, source=segments[0].source)]
        bounds.append((start, start + len(s.text)))
        pos = start + len(s.text)
    ops = _edits(before, after)

    def moved(offset: int) -> int:
        for tag, i1, i2, j1, j2 in ops:
            if i1 <= offset < i2 or (offset == i2 and tag == "equal" and offset == len(before)):
                return j1 + (offset - i1 if tag == "equal" else 0)
        return len(after)

    cuts = [0] + [moved(start) for start, _ in bounds[1:]] + [len(after)]
    out = []
    for s, a, b in zip(segments, cuts, cuts[1:]):
        text = after[a:b].strip()
        if text:
            out.append(s.model_copy(update={"text": text}))
    return out


REMAP_MAX_CELLS = 250_000  # difflib is quadratic or worse: a 6,000-character reply took 33 s before this bound


def _edits(before: str, after: str) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes from `before` to `after`, computed only on what lies between their common
    prefix and suffix (a repair is a local edit or a cut); a middle too big to diff in
    microseconds counts as one replacement."""
    limit = min(len(before), len(after))
    head = next((i for i in range(limit) if before[i] != after[i]), limit)
    tail = 0
    while tail < limit - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    b_end, a_end = len(before) - tail, len(after) - tail
    if (b_end - head) * (a_end - head) > REMAP_MAX_CELLS:
        middle = [("replace", head, b_end, head, a_end)]
    else:
        middle = [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in
                  difflib.SequenceMatcher(None, before[head:b_end], after[head:a_end], autojunk=False).get_opcodes()]
    return [("equal", 0, head, 0, head), *middle, ("equal", b_end, len(before), a_end, len(after))]


def _labelled(raw: str) -> dict[str, str]:
    marks = list(_LABEL_LINE.finditer(raw))
    found: dict[str, str] = {}
    for m, nxt in zip(marks, [*marks[1:], None]):
        label = m.group(1).upper()
        kind = next(k for k, v in _LABELS.items() if label.startswith(v[:5]))
        body = raw[m.end(): nxt.start() if nxt else len(raw)].strip().strip("<>").strip()
        if body and kind not in found:  # the first of a repeated part counts
            found[kind] = body
    return found


def _sorted(raw: str, lang: _Language, kinds: list[Kind]) -> dict[str, str]:
    """Unlabelled text, in the order RSR is written: what comes before the apology responds, the
    apology apologises, what follows resolves. Without an apology, the first sentence responds."""
    if len(kinds) == 1:
        return {kinds[0]: raw.strip()}
    sentences = [m.group(0).strip() for m in _SENTENCE.finditer(raw) if m.group(0).strip()]
    apology = next((i for i, s in enumerate(sentences) if lang.rx["apologise"].search(s)), None)
    parts: dict[str, list[str]] = {}
    for i, sentence in enumerate(sentences):
        if apology is None:
            kind = "respond" if i == 0 else "resolve"
        else:
            kind = "respond" if i < apology else "apologise" if i == apology else "resolve"
        parts.setdefault(kind, []).append(sentence)
    return {k: lang.joiner.join(v) for k, v in parts.items() if k in kinds}


def _fits(kind: str, text: str, plan: Plan, lang: _Language, message: str) -> bool:
    if not text or echoes(text, message):
        return False
    if kind == "apologise":
        return bool(lang.rx["apologise"].search(text))
    if kind == "thank":
        return bool(lang.rx["thank"].search(text)) and not lang.rx["apologise"].search(text)
    if kind == "resolve" and plan.private:  # the public part sends the details to a DM
        return bool(lang.rx["private_channel"].search(text))
    return True


def _phrase(kind: str, plan: Plan, lang: _Language, categories: list[str]) -> str:
    phrases = lang.phrases
    if kind == "respond":
        return next((phrases.respond[c] for c in categories if c in phrases.respond), phrases.respond["default"])
    if kind == "resolve":
        key = "private" if plan.private else "escalate" if plan.mode == "escalate" and plan.team else "default"
        return phrases.resolve[key]
    return getattr(phrases, kind)


def _apologise_once(segments: list[Segment], lang: _Language) -> None:
    """Drop apologies from the other parts when there is an apology part: once, not three times."""
    for s in segments:
        if s.kind in ("respond", "resolve") and lang.rx["apologise"].search(s.text):
            kept = [m.group(0).strip() for m in _SENTENCE.finditer(s.text)
                    if m.group(0).strip() and not lang.rx["apologise"].search(m.group(0))]
            if kept:
                s.text = lang.joiner.join(kept)


def _team_words(team: str | None) -> str:
    return (team or "specialist").replace("_", " ")
