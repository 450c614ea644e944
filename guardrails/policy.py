"""What to do with a blocking finding. v0: `fix` deterministic rewrites where the rule offers a
safe replacement ("Just click Settings" -> "Click Settings"); everything else blocks.
Per-brand policy files and `reask` come with the guardrails issue."""

from __future__ import annotations

import re

from guardrails.engine import CheckContext, check, is_blocking
from guardrails.finding import Finding

_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)$")
# Deleting "just" keeps the reply's meaning; deleting "lol" from a reply to a serious complaint
# leaves a reply written in the wrong spirit, so humour and blame always block.
FIXABLE_FAMILIES = frozenset({"minimising", "not_a_reply"})


def apply_fixes(text: str, findings: list[Finding]) -> str:
    """Replace every span whose rule has a suggestion; keep the sentence's capitalisation."""
    out = text
    done_from = len(text) + 1  # start of the leftmost span replaced so far
    for f in sorted(findings, key=lambda f: (f.start, f.end), reverse=True):  # right to left keeps offsets valid
        if f.suggestion is None or f.severity != "block" or f.end > done_from:
            continue  # two rules on one span: the first replacement wins
        done_from = f.start
        replacement = f.suggestion
        before, after = out[: f.start], out[f.end :]
        at_start = bool(_SENTENCE_START.search(before))
        if at_start and replacement:
            replacement = replacement[0].upper() + replacement[1:]
        elif at_start and after[:1].islower():  # deleted the sentence's first word: capitalise the next
            after = after[0].upper() + after[1:]
        elif f.match[:1].isupper() and replacement:
            replacement = replacement[0].upper() + replacement[1:]
        out = before + replacement + after
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def fix(text: str, findings: list[Finding], context: CheckContext) -> tuple[str, list[Finding]] | None:
    """The fixed draft and its findings when every blocking finding was fixable and the result
    passes; None when the draft has to stay blocked."""
    blocking = [f for f in findings if f.severity == "block"]
    if not blocking or any(f.suggestion is None or f.family not in FIXABLE_FAMILIES for f in blocking):
        return None
    fixed = apply_fixes(text, blocking)
    if not fixed or fixed == text:
        return None
    after = check(fixed, context)
    return None if is_blocking(after) else (fixed, after)
