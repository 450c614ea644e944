"""Knowledge documents and how they are cut into chunks for the vector store."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from guardrails import CheckContext, check
from prompts.tokens import count_tokens

MAX_CHUNK_TOKENS = 300
MAX_DOCUMENT_CHARS = 200_000
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# the brand is part of a Chroma collection name, which must end with a letter or digit ("shop_" was a 503)
BRAND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,61}[a-z0-9]$")
BRAND_RULE = "2-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit"


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable id, e.g. an FAQ's own id.", examples=["faq-refund-timing"])
    kind: Literal["voice", "faq"]
    title: str
    text: str = Field(max_length=MAX_DOCUMENT_CHARS)
    language: str = "en"
    source: str = ""
    url: str | None = None
    tags: list[str] = Field(default_factory=list)
    next_step: str | None = Field(None, max_length=500, description=(
        "FAQs only: what we do for a customer with this problem, one or two sentences a direct message ends with "
        "(\"Please add a photo of the item, and we'll send a replacement free of charge.\"). Drawn from the answer."))
    updated_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError("ids are 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("text", "title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("next_step")
    @classmethod
    def _next_step_passes(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The next step goes to customers word for word (the DM ends with it), so it must pass the
        guardrails as a reply to a serious complaint would: caught when written, not on a customer's request."""
        if value:
            context = CheckContext(language=info.data.get("language") or "en", serious=True, visibility="private")
            if blocking := [f for f in check(value, context) if f.severity == "block"]:
                f = blocking[0]
                raise ValueError(f"it is sent to customers as written and fails {f.rule} at \"{f.match}\": {f.message}")
        return value

    @property
    def content_hash(self) -> str:
        # updated_at is left out on purpose: re-ingesting unchanged content must write nothing.
        fields = [self.kind, self.title, self.text, self.language, self.url or "", ",".join(self.tags)]
        if self.next_step:  # appended only when set: documents without one keep the hash they were stored under
            fields.append(self.next_step)
        payload = "\x1f".join(fields)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def chunks(self) -> list[str]:
        """Structure first (headings, then paragraphs), then a token bound per chunk."""
        sections = [s.strip() for s in re.split(r"(?m)^(?=#{1,6}\s)", self.text) if s.strip()]
        out: list[str] = []
        for section in sections or [self.text.strip()]:
            if count_tokens(section) <= MAX_CHUNK_TOKENS:
                out.append(section)
                continue
            current = ""
            for para in re.split(r"\n\s*\n", section):
                candidate = f"{current}\n\n{para}".strip()
                if current and count_tokens(candidate) > MAX_CHUNK_TOKENS:
                    out.append(current)
                    current = para
                else:
                    current = candidate
            while count_tokens(current) > MAX_CHUNK_TOKENS:  # one giant paragraph: cut on words
                words = current.split()
                half = len(words) // 2
                out.append(" ".join(words[:half]))
                current = " ".join(words[half:])
            if current:
                out.append(current)
        return out


def brand_ok(brand: str) -> bool:
    return bool(BRAND_RE.match(brand))
