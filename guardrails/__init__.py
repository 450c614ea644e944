"""Tone guardrails: rules as data (rules/<lang>/<family>.yaml), a small generic engine, triage."""

from guardrails.engine import CheckContext, check, is_blocking
from guardrails.finding import Finding

__all__ = ["CheckContext", "Finding", "check", "is_blocking"]
