"""Eval cases: one customer message each, with a senior agent's labels and what a good reply must do.

Authored cases live in `evals/cases/*.jsonl` (`social_<lang>` for the reply-strategy set,
`golden_<lang>` for the rest of the golden set). Each line is one `Case`; unknown keys are an
error, so a typo in a label cannot pass silently.

    python -m evals.cases                 # action accuracy of triage, per set and language
    python -m evals.cases --set social --errors
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardrails.triage import Action, MessageType, analyze

CASES_DIR = Path(__file__).parent / "cases"
Category = Literal["safety_health", "financial", "security_privacy", "legal", "bereavement", "discrimination_harassment",
                   "service_outage", "repeated_contact", "data_breach", "media_risk", "product_failure", "delivery",
                   "details_posted"]
Team = Literal["safety", "legal", "security", "trust_and_safety", "communications", "customer_care_lead"]
Intent = Literal["acknowledge", "apology", "next_step", "thanks", "private_channel"]


class CaseError(Exception):
    """A case file is malformed: names the file and line."""


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["customer", "agent"]
    text: str


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: MessageType
    serious: bool
    category: Category | None
    action: Action
    escalate_to: Team | None


class Expectations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    must_cite: list[str] = Field(default_factory=list, description="FAQ ids a good reply draws on.")
    must_not: list[str] = Field(default_factory=list, description="Phrases a good reply never contains (case-insensitive).")
    must_include: list[Intent] = Field(default_factory=list)
    max_chars: int | None = None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    set: str
    brand: str
    channel: Literal["twitter", "x", "instagram", "facebook", "email", "chat", "sms", "whatsapp", "other"]
    visibility: Literal["public", "private"]
    language: str
    message: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    labels: Labels
    expect: Expectations
    source: str
    licence: str


def load_cases(directory: Path = CASES_DIR, sets: set[str] | None = None, pattern: str = "*.jsonl") -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob(pattern)):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                case = Case.model_validate_json(line)
            except ValidationError as exc:
                err = exc.errors()[0]
                raise CaseError(f"{path}:{number}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
            if sets is None or case.set in sets:
                cases.append(case)
    seen = Counter(c.id for c in cases)
    if dupes := [i for i, n in seen.items() if n > 1]:
        raise CaseError(f"{directory}: duplicate case ids: {', '.join(dupes[:5])}")
    return cases


def action_accuracy(cases: list[Case]) -> dict:
    """How often triage recommends the action the senior agent chose, overall and per language,
    with the misses (and the escalation team when both say `escalate`)."""
    by_lang: dict[str, list[bool]] = defaultdict(list)
    misses = []
    for case in cases:
        triage = analyze(case.message)  # detected, as in production: the label's language is not given
        right = triage.action == case.labels.action and (
            triage.action != "escalate" or triage.escalate_to == case.labels.escalate_to)
        by_lang[case.language].append(right)
        if not right:
            misses.append({"id": case.id, "expected": case.labels.action, "expected_team": case.labels.escalate_to,
                           "got": triage.action, "got_team": triage.escalate_to, "categories": triage.categories,
                           "message": case.message})
    every = [ok for oks in by_lang.values() for ok in oks]
    return {"n": len(every), "accuracy": sum(every) / len(every) if every else 0.0,
            "by_language": {lang: {"n": len(oks), "accuracy": sum(oks) / len(oks)} for lang, oks in sorted(by_lang.items())},
            "misses": misses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.cases", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", help="only these sets (social, golden); default all")
    parser.add_argument("--lang", help="only this language")
    parser.add_argument("--errors", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    cases = [c for c in load_cases(sets=set(args.set) if args.set else None) if not args.lang or c.language == args.lang]
    report = action_accuracy(cases)
    print(f"action accuracy: {report['accuracy']:.3f} on {report['n']} cases")
    for lang, row in report["by_language"].items():
        print(f"  {lang}: {row['accuracy']:.3f} ({row['n']})")
    if args.errors:
        for m in report["misses"]:
            print(f"{m['id']}: expected {m['expected']}/{m['expected_team']} got {m['got']}/{m['got_team']} "
                  f"{m['categories']} | {m['message'][:110]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
