"""Channel rules (guardrails/channels.yaml): count a draft the way the platform does, and report
a draft that breaks the channel's limit (blocking) or its shape (a warning)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import regex
import yaml
from pydantic import BaseModel, ConfigDict

from guardrails.finding import Finding

CHANNELS_FILE = Path(__file__).parent / "channels.yaml"
# X's twitter-text v3 configuration: these code point ranges weigh 1, everything else 2; a URL 23.
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_URL = re.compile(r"(?:https?://|www\.)[^\s]+", re.IGNORECASE)
_URL_WEIGHT = 23
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|halo|hai|selamat|bun[ăa]|salut|stimat|您好|你好|亲爱的)\b",
                       re.IGNORECASE)
_SIGNOFF = re.compile(r"(?:regards|best|thanks|thank\s+you|cheers|sincerely|salam|terima\s+kasih|cu\s+stim[ăa]|mul[țt]umim|祝|此致|谢谢)[^\n]{0,60}(?:\n[^\n]{1,60})?\s*$",
                      re.IGNORECASE)


class ChannelError(Exception):
    """channels.yaml is malformed."""


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_length: int | None
    count: Literal["twitter", "graphemes", "chars"] = "chars"
    greeting: Literal["required", "none", "optional"] = "optional"
    signoff: Literal["required", "optional"] = "optional"
    note: str
    source: str


class ChannelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: dict[str, Channel]


@lru_cache(maxsize=1)
def channels() -> dict[str, Channel]:
    try:
        return ChannelFile.model_validate(yaml.safe_load(CHANNELS_FILE.read_text(encoding="utf-8"))).channels
    except Exception as exc:
        raise ChannelError(f"{CHANNELS_FILE}: {exc}") from exc


def length(text: str, count: str) -> int:
    if count == "chars":
        return len(text)
    if count == "graphemes":
        return len(_GRAPHEME.findall(text))
    total, last = 0, 0
    for url in _URL.finditer(text):
        total += _twitter_weight(text[last:url.start()]) + _URL_WEIGHT
        last = url.end()
    return total + _twitter_weight(text[last:])


_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}")


def _twitter_weight(text: str) -> int:
    if text.isascii():  # every ASCII character weighs 1 and none is an emoji: most English replies
        return len(text)
    total = 0
    for cluster in _GRAPHEME.findall(text):
        if _EMOJI.search(cluster):
            total += 2  # an emoji, with its modifiers and joiners, counts as one wide character
            continue
        total += sum(1 if any(lo <= ord(ch) <= hi for lo, hi in _LIGHT) else 2 for ch in cluster)
    return total


def limit_for(channel: str | None) -> int | None:
    spec = channels().get(channel or "other")
    return spec.max_length if spec else None


def check_channel(text: str, channel: str | None, lang: str) -> list[Finding]:
    spec = channels().get(channel or "other")
    if spec is None or not text.strip():
        return []
    findings: list[Finding] = []
    if spec.max_length is not None:
        size = length(text, spec.count)
        if size > spec.max_length:
            cut = _last_sentence_end_within(text, spec)
            findings.append(Finding(
                rule=f"any.channel_length.{channel}", family="channel_length", severity="block", lang=lang,
                start=cut if cut else 0, end=len(text), match=text[cut:][:80] if cut else text[:80],
                message=f"{size} characters as {channel} counts them; the limit is {spec.max_length}.",
                suggestion="" if cut else None))
    if spec.greeting == "required" and not _GREETING.search(text):
        findings.append(Finding(
            rule=f"any.channel_format.{channel}-greeting", family="channel_format", severity="warn", lang=lang,
            start=0, end=0, match="", message=f"A {channel} reply usually opens with a greeting.", suggestion=None))
    if spec.signoff == "required" and not _SIGNOFF.search(text):
        findings.append(Finding(
            rule=f"any.channel_format.{channel}-signoff", family="channel_format", severity="warn", lang=lang,
            start=len(text), end=len(text), match="", message=f"A {channel} reply usually ends with a sign-off.",
            suggestion=None))
    return findings


# Where a sentence ends, in Latin and Chinese punctuation; the pipeline trims cut-off drafts with it too.
SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)|[。！？]")


def _last_sentence_end_within(text: str, spec: Channel) -> int | None:
    """Where to cut so that whole sentences fit, keeping at least half the limit; None if no such cut.
    The deletion it suggests is a safe fix: what is left is what the draft said first."""
    best = None
    for m in SENTENCE_END.finditer(text):
        if length(text[: m.end()], spec.count) <= spec.max_length:
            best = m.end()
        else:
            break
    if best is None or length(text[:best], spec.count) < (spec.max_length or 0) // 2:
        return None
    return best
