"""The one Finding type used by the API, the CLI and the evals."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["block", "warn"]


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str = Field(description="Rule id, `<lang>.<family>.<name>`.", examples=["en.minimising.just-imperative"])
    family: str = Field(examples=["minimising"])
    severity: Severity
    lang: str
    start: int = Field(description="Character offset where the match starts in the checked text.")
    end: int = Field(description="Character offset just past the match.")
    match: str
    message: str = Field(description="Why this hurts the customer.")
    suggestion: str | None = Field(None, description="Replacement text for the span, when a safe one exists ('' = delete).")
