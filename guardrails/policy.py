"""What to do with a blocking finding, per brand: fix, reask, block or warn.

Policies are data (`guardrails/policies/default.yaml`, overridden per brand by
`guardrails/policies/<brand>.yaml`). This module loads them, downgrades what a brand
accepts to warnings, decides the repair for a draft, and performs the deterministic fix.
The re-ask itself needs the LLM, so the pipeline does it (`api/pipeline.py`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from guardrails.engine import CheckContext, check, is_blocking
from guardrails.finding import Finding

POLICY_DIR = Path(__file__).parent / "policies"
Action = Literal["fix", "reask", "block", "warn"]
Repair = Literal["pass", "fix", "reask", "block"]
_BRAND = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")  # as knowledge.documents.brand_ok: never a path
_ORPHAN_PUNCT = re.compile(r"^[ \t]*[,;:][ \t]*")  # the comma a deleted opener ("Haha, ") leaves
_SENTENCE_START = re.compile(r"(?:^|[.!?。！？]\s*|\n\s*)$")


class PolicyError(Exception):
    """A policy file is malformed: names the file and what is wrong."""


def _chain_ok(actions: list[Action]) -> list[Action]:
    if not actions:
        raise ValueError("an empty action list; use [block] to block without repair")
    if ("warn" in actions or "block" in actions) and len(actions) > 1:
        raise ValueError(f"{actions}: 'warn' and 'block' stand alone")
    if len(set(actions)) != len(actions):
        raise ValueError(f"{actions}: an action is repeated")
    return actions


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brand: str
    reask_rounds: int = Field(1, ge=0, le=3, description="Re-asks per draft at most (each is one LLM call); "
                                "fewer when a re-ask repeats a finding it was sent to fix.")
    families: dict[str, list[Action]] = Field(default_factory=dict)
    prompt: str = Field("suggest", description="The brand's default prompt template (`name` or `name@version`).")
    troll_reply: Literal["none", "calm_line"] = Field(
        "none", description="For `do_not_engage`: no reply (seed 004: don't feed trolls), or one calm line.")
    rules: dict[str, list[Action]] = Field(default_factory=dict, description="Per rule id; wins over its family.")

    @field_validator("families", "rules")
    @classmethod
    def _chains(cls, value: dict[str, list[Action]]) -> dict[str, list[Action]]:
        return {key: _chain_ok(actions) for key, actions in value.items()}

    def actions(self, finding: Finding) -> list[Action]:
        return self.rules.get(finding.rule) or self.families.get(finding.family) or ["block"]

    def apply(self, findings: list[Finding]) -> list[Finding]:
        """The findings with what this brand accepts (`warn`) downgraded to warnings."""
        return [f.model_copy(update={"severity": "warn"}) if f.severity == "block" and self.actions(f) == ["warn"] else f
                for f in findings]

    def repair(self, findings: list[Finding]) -> Repair:
        """The first repair every blocking finding allows: fix (when each has a safe rewrite),
        else reask, else block."""
        blocking = [f for f in findings if f.severity == "block"]
        if not blocking:
            return "pass"
        if all("fix" in self.actions(f) and f.suggestion is not None for f in blocking):
            return "fix"
        return "reask" if self.can_reask(findings) else "block"

    def can_reask(self, findings: list[Finding]) -> bool:
        blocking = [f for f in findings if f.severity == "block"]
        return bool(blocking) and self.reask_rounds > 0 and all("reask" in self.actions(f) for f in blocking)


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return data


@lru_cache(maxsize=256)
def load_policy(brand: str | None = None, policy_dir: Path = POLICY_DIR) -> Policy:
    """The default policy with the brand's file (if any) laid over it."""
    base = _read(policy_dir / "default.yaml")
    path = policy_dir / f"{brand}.yaml"
    if brand and brand != "default" and _BRAND.fullmatch(brand) and path.is_file():
        own = _read(path)
        base = {**base, **{k: v for k, v in own.items() if k not in ("families", "rules")},
                "families": {**base.get("families", {}), **(own.get("families") or {})},
                "rules": {**base.get("rules", {}), **(own.get("rules") or {})}}
    try:
        return Policy.model_validate(base)
    except ValueError as exc:
        raise PolicyError(f"{path if brand else policy_dir / 'default.yaml'}: {exc}") from exc


def apply_fixes(text: str, findings: list[Finding]) -> str:
    """Replace every span whose rule has a suggestion; keep the sentence's capitalisation.
    Where spans overlap, the widest wins: a language's own rule usually covers the whole
    construction ("LOL kak, "), the English one only its core ("LOL")."""
    chosen: list[Finding] = []
    for f in sorted((f for f in findings if f.suggestion is not None and f.severity == "block"),
                    key=lambda f: (f.end - f.start), reverse=True):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    out = text
    for f in sorted(chosen, key=lambda f: f.start, reverse=True):  # right to left keeps offsets valid
        replacement = f.suggestion or ""
        before, after = out[: f.start], out[f.end :]
        at_start = bool(_SENTENCE_START.search(before))
        if not replacement:  # a deletion: don't leave "there , we" or "sorry . We" behind
            after = _ORPHAN_PUNCT.sub("", after) if at_start or before.endswith((" ", "\n")) else after
        if at_start and replacement:
            replacement = replacement[0].upper() + replacement[1:]
        elif at_start and after.lstrip()[:1].islower():  # deleted the sentence's first word: capitalise the next
            stripped = after.lstrip()
            after = after[: len(after) - len(stripped)] + stripped[0].upper() + stripped[1:]
        elif f.match[:1].isupper() and replacement:
            replacement = replacement[0].upper() + replacement[1:]
        out = before + replacement + after
    out = re.sub(r"[ \t]+([,.!?;:])", r"\1", out)  # "refund ." -> "refund."
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def fix(text: str, findings: list[Finding], context: CheckContext, policy: Policy | None = None) -> tuple[str, list[Finding]] | None:
    """The fixed draft and its findings when the fix resolves every blocking finding and the result
    passes; None when it does not (the caller re-asks or blocks)."""
    policy = policy or load_policy()
    if policy.repair(findings) != "fix":
        return None
    fixed = apply_fixes(text, [f for f in findings if f.severity == "block"])
    if not fixed or fixed == text:
        return None
    after = policy.apply(check(fixed, context))
    return None if is_blocking(after) else (fixed, after)
