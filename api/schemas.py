"""Request and response bodies of the HTTP API (the contracts in DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from guardrails.finding import Finding
from guardrails.triage import Triage
from knowledge.documents import BRAND_RE, BRAND_RULE
from prompts.segments import Segment

BRAND_PATTERN = BRAND_RE.pattern  # in the schema so clients see it
# "has some text": one character that is not whitespace. Spelled out because JSON Schema's (ECMA) and
# pydantic's \s leave out U+001C-U+001F, which Python's str.strip() removes: a message of those alone
# passed the schema and was then refused (found by schemathesis).
TEXT_PATTERN = r"[^\s\u001c-\u001f]"
HoldingReason = Literal["llm_unavailable", "llm_slow", "response_target", "no_knowledge", "all_blocked"]
Channel = Literal["twitter", "x", "instagram", "facebook", "email", "chat", "sms", "whatsapp", "other"]


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["customer", "agent"]
    text: str = Field(min_length=1, max_length=4000)


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brand: str = Field(pattern=BRAND_PATTERN, examples=["acme"], description=BRAND_RULE + ".")
    message: str = Field(min_length=1, max_length=4000, pattern=TEXT_PATTERN, description="The customer's message, as they wrote it.",
                         examples=["My order arrived broken and nobody answers my emails. This is the third time!"])
    channel: Channel = "twitter"
    visibility: Literal["public", "private"] = "public"
    language: str | None = Field(None, min_length=2, max_length=8, description="Reply language; detected from the message when null.")
    customer_name: str | None = Field(None, max_length=100)
    history: list[Turn] = Field(default_factory=list, max_length=20)
    n: int = Field(3, ge=1, le=5, description="How many drafts to ask for.")
    tone: str | None = Field(None, max_length=100)
    prompt: str | None = Field(None, max_length=64, description="Prompt template, `name` or `name@version` "
                               "(see GET /v1/prompts). Default: the brand's (guardrails/policies/<brand>.yaml), else `suggest`.")
    received_at: datetime | None = None


class Citation(BaseModel):
    id: str
    title: str
    url: str | None = None


class Draft(BaseModel):
    text: str = Field(description="The reply to post: for `reply_then_private`, the public part.")
    segments: list[Segment] = Field(default_factory=list, description="`text` in its parts: respond, apologise, resolve "
                                    "for complaints; thank for praise (prompts/segments.yaml). Empty for holding replies.")
    public: str | None = Field(None, description="For `reply_then_private`: the public acknowledgement (same as `text`).")
    private: str | None = Field(None, description="For `reply_then_private`: the direct message that asks for the details.")
    private_findings: list[Finding] = Field(default_factory=list, description="Warnings on `private`.")
    citations: list[Citation] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list, description="Non-blocking findings (warnings) only.")
    repaired: bool = Field(False, description="tactful changed the model's text: a deterministic fix or a formatting repair.")
    original: str | None = Field(None, description="The model's text before repairs, when `repaired`.")
    repair: Literal["fix", "reask"] | None = Field(None, description="How blocking findings were resolved: a deterministic "
                                                  "rewrite, or the LLM re-asked with the findings (guardrails/policies/).")
    reask_rounds: int = Field(0, description="LLM re-asks this draft took.")
    fixed: list[Finding] = Field(default_factory=list, description="Blocking findings the repair resolved; spans refer to `original`.")


class BlockedDraft(BaseModel):
    text: str
    findings: list[Finding]
    part: Literal["public", "private"] = Field("public", description="`private`: the model's direct message was blocked; "
                                               "the draft it belonged to carries the brand's instead.")
    reask_round: int = Field(0, description="0: as the model first wrote it; k: its k-th re-ask, still blocking.")


class KnowledgeRef(BaseModel):
    id: str
    kind: str
    score: float


class PromptRef(BaseModel):
    name: str
    version: str


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0

    def add(self, result) -> None:
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        self.llm_calls += result.calls


class SuggestResponse(BaseModel):
    id: str
    brand: str
    triage: Triage
    drafts: list[Draft]
    blocked: list[BlockedDraft]
    knowledge: list[KnowledgeRef]
    prompt: PromptRef
    model: str
    usage: Usage
    timings_ms: dict[str, float]
    note: str | None = Field(None, description="Why `drafts` is empty or unusual, in words an agent reads.")
    holding: bool = Field(False, description="`drafts` holds the brand's holding reply (prompts/holding/<brand>.yaml), "
                                             "guarded like any draft, instead of a drafted answer; see `holding_reason`.")
    holding_reason: HoldingReason | None = Field(None, description="Why: the LLM is down or too slow, the response-time "
                                                 "target is about to pass, no FAQ answers the question, or every draft was blocked.")


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=20000, description="The draft reply to check.")
    message: str | None = Field(None, max_length=4000, description="The customer's message it answers (decides seriousness).")
    language: str | None = Field(None, min_length=2, max_length=8)
    brand: str | None = Field(None, pattern=BRAND_PATTERN)
    channel: Channel | None = Field(None, description="Apply this channel's length limit and shape.")
    visibility: Literal["public", "private"] = Field("public", description="Private replies may carry order numbers and emails.")


class CheckResponse(BaseModel):
    passed: bool
    language: str
    serious: bool
    findings: list[Finding]


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4000)
    language: str | None = Field(None, min_length=2, max_length=8)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
