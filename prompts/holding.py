"""Holding replies: a brand's safe first response for when no drafted answer can be had.

Brands keep them in `prompts/holding/<brand>.yaml` (a template per language, Jinja2, strict). The
pipeline uses one when the LLM is unavailable, so the agent gets a reply that says "we've seen this
and will answer by …" instead of an error; it still goes through every guardrail.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field

HOLDING_DIR = Path(__file__).parent / "holding"
_BRAND = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")
PROMISE_AT_LEAST = timedelta(minutes=15)
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


class HoldingError(Exception):
    """A holding-reply file is malformed: names the file."""


class HoldingTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brand: str
    response_time_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    templates: dict[str, str] = Field(min_length=1, description="Language code -> template.")


@lru_cache(maxsize=256)
def load_holding(brand: str, directory: Path = HOLDING_DIR) -> HoldingTemplates | None:
    path = directory / f"{brand}.yaml"
    if not _BRAND.fullmatch(brand) or not path.is_file():
        return None
    try:
        holding = HoldingTemplates.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for template in holding.templates.values():
            _ENV.parse(template)
    except Exception as exc:
        raise HoldingError(f"{path}: {exc}") from exc
    return holding


def holding_reply(holding: HoldingTemplates, language: str, received_at: datetime | None,
                  customer_name: str | None) -> tuple[str, str]:
    """The reply in the customer's language (English when the brand has none for it), and its language."""
    lang = language if language in holding.templates else "en" if "en" in holding.templates else next(iter(holding.templates))
    start = received_at or datetime.now(timezone.utc)
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    target = timedelta(minutes=holding.response_time_minutes)
    reply_by = start + target
    now = datetime.now(timezone.utc)
    if reply_by < now + PROMISE_AT_LEAST:  # the target (nearly) passed: promise a time we can still keep
        reply_by = now + target
    reply_by = reply_by.astimezone(timezone.utc).strftime("%H:%M UTC")
    text = _ENV.from_string(holding.templates[lang]).render(reply_by=reply_by, customer_name=customer_name)
    return " ".join(text.split()), lang
