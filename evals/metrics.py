"""What the eval suite measures, one small function per metric.

Each takes the case and the `/v1/suggest` response (as JSON) and returns a score in [0, 1], or
None when it does not apply to this case (a praise has no apology to look for). The runner
averages them per slice; `evals/gates.yaml` sets the floors. Hard metrics re-check the returned
drafts independently of the pipeline, so a pipeline bug cannot mark its own homework.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from evals.cases import Case
from guardrails import CheckContext, check, is_blocking
from guardrails.channels import channels, length
from guardrails.triage import detect_language_scored
from prompts.segments import language_spec

Metric = Callable[[Case, dict], float | None]
METRICS: dict[str, Metric] = {}
HARD = ("guardrail_pass", "within_channel", "no_private_data_public")  # must be 1.0 on every case


def metric(fn: Metric) -> Metric:
    METRICS[fn.__name__] = fn
    return fn


def _drafts(resp: dict) -> list[dict]:
    return resp.get("drafts") or []


def _model_drafts(resp: dict) -> list[dict]:
    """Drafts the model wrote (a holding reply is the brand's template)."""
    return [] if resp.get("holding") else _drafts(resp)


@metric
def guardrail_pass(case: Case, resp: dict) -> float | None:
    """Share of returned drafts that pass every blocking guardrail when checked again from scratch. Must be 1."""
    drafts = _drafts(resp)
    if not drafts:
        return None
    serious = resp["triage"]["serious"]
    ok = 0
    for d in drafts:
        public = CheckContext(language=resp["triage"]["language"], serious=serious, message=case.message,
                              channel=case.channel, visibility=case.visibility)
        passed = not is_blocking(check(d["text"], public))
        if d.get("private"):
            passed = passed and not is_blocking(check(d["private"], replace(public, visibility="private", channel=None)))
        ok += passed
    return ok / len(drafts)


@metric
def clean_first_time(case: Case, resp: dict) -> float | None:
    """Share of the model's drafts that passed as written: no fix, no re-ask, not blocked, and not made
    of the brand's sentences alone (every part the model wrote was wrong or read the prompt back).
    Falls when a prompt or model starts writing "just click" or blame, even though the guardrails catch it."""
    drafts = _model_drafts(resp)
    clean = sum(1 for d in drafts if not d.get("repair") and not _brand_only(d))
    first_blocked = sum(1 for b in resp.get("blocked") or [] if b.get("reask_round", 0) == 0 and b.get("part") != "private")
    total = len(drafts) + first_blocked
    return clean / total if total else None


def _brand_only(draft: dict) -> bool:
    """Every part is the brand's sentence: `not api.pipeline.model_wrote`, read again from the JSON so the
    pipeline does not judge its own drafts (see the module's docstring)."""
    segments = draft.get("segments") or []
    return bool(segments) and all(s.get("source") == "brand" for s in segments)


@metric
def blocked_rate(case: Case, resp: dict) -> float | None:
    """Share of the model's first drafts that a guardrail blocked (lower is better; informational)."""
    first_blocked = sum(1 for b in resp.get("blocked") or [] if b.get("reask_round", 0) == 0)
    total = first_blocked + len(_model_drafts(resp))
    return first_blocked / total if total else None


@metric
def repaired_rate(case: Case, resp: dict) -> float | None:
    """Share of returned model drafts that needed a fix or a re-ask (informational)."""
    drafts = _model_drafts(resp)
    return sum(1 for d in drafts if d.get("repair")) / len(drafts) if drafts else None


@metric
def action_correct(case: Case, resp: dict) -> float | None:
    """Triage recommended the senior agent's action (and, to escalate, the same team)."""
    t = resp["triage"]
    right = t["action"] == case.labels.action and (t["action"] != "escalate" or t.get("escalate_to") == case.labels.escalate_to)
    return float(right)


@metric
def serious_correct(case: Case, resp: dict) -> float | None:
    """Triage's serious yes/no matches the label."""
    return float(resp["triage"]["serious"] == case.labels.serious)


@metric
def type_correct(case: Case, resp: dict) -> float | None:
    """Triage's message type (complaint, question, praise, troll) matches the label."""
    return float(resp["triage"].get("type") == case.labels.type)


@metric
def rsr_complete(case: Case, resp: dict) -> float | None:
    """For a message triage took as a complaint: share of drafted replies with all three parts, respond,
    apologise and resolve. (Whether triage typed the message right is `type_correct`.)"""
    if resp.get("triage", {}).get("type") != "complaint" or resp.get("triage", {}).get("action") == "do_not_engage":
        return None
    drafts = _model_drafts(resp)
    if not drafts:
        return None
    return sum(1 for d in drafts if {"respond", "apologise", "resolve"} <= {s["kind"] for s in d.get("segments") or []}) / len(drafts)


@metric
def language_match(case: Case, resp: dict) -> float | None:
    """Share of drafts written in the customer's language (drafts too short to judge are skipped)."""
    judged = []
    for d in _drafts(resp):
        for text in filter(None, [d["text"], d.get("private")]):
            if len(text.split()) >= 6 or case.language == "zh":
                lang, score = detect_language_scored(text)
                judged.append(lang == case.language or score < 0.5)
    return sum(judged) / len(judged) if judged else None


@metric
def within_channel(case: Case, resp: dict) -> float | None:
    """Share of drafts within the channel's length, counted as the platform counts. Must be 1."""
    spec = channels().get(case.channel)
    drafts = _drafts(resp)
    if not drafts or spec is None or spec.max_length is None:
        return None
    return sum(1 for d in drafts if length(d["text"], spec.count) <= spec.max_length) / len(drafts)


@metric
def no_private_data_public(case: Case, resp: dict) -> float | None:
    """For a public conversation: share of public drafts that neither ask for nor reveal order numbers,
    emails, phones, addresses, card digits or account ids. Must be 1."""
    if case.visibility != "public" or not _drafts(resp):
        return None
    context = CheckContext(language=resp["triage"]["language"], visibility="public")
    ok = [not any(f.family == "private_data_in_public" and f.severity == "block" for f in check(d["text"], context))
          for d in _drafts(resp)]
    return sum(ok) / len(ok)


@metric
def avoids_must_not(case: Case, resp: dict) -> float | None:
    """Share of drafts that contain none of the case's must-not phrases (case-insensitive)."""
    drafts = _drafts(resp)
    if not drafts or not case.expect.must_not:
        return None
    bad = [p.lower() for p in case.expect.must_not]
    return sum(1 for d in drafts if not any(p in (d["text"] + " " + (d.get("private") or "")).lower() for p in bad)) / len(drafts)


@metric
def intents_covered(case: Case, resp: dict) -> float | None:
    """Share of the case's must-include intents the best draft covers: acknowledge, apology, next step,
    thanks (from its parts) and a move to a private channel (a private message, or a DM in the text)."""
    drafts = _model_drafts(resp)
    if not drafts or not case.expect.must_include:
        return None
    cues = language_spec(case.language).rx

    def covered(d: dict) -> float:
        kinds = {s["kind"] for s in d.get("segments") or []}
        have = {"acknowledge": "respond" in kinds, "apology": "apologise" in kinds or bool(cues["apologise"].search(d["text"])),
                "next_step": "resolve" in kinds, "thanks": "thank" in kinds or bool(cues["thank"].search(d["text"])),
                "private_channel": bool(d.get("private")) or bool(cues["private_channel"].search(d["text"]))}
        return sum(have[i] for i in case.expect.must_include) / len(case.expect.must_include)

    return max(covered(d) for d in drafts)


@metric
def cites_expected_faq(case: Case, resp: dict) -> float | None:
    """Share of the FAQs a good reply draws on (must_cite) that retrieval put in front of the model."""
    if not case.expect.must_cite:
        return None
    retrieved = {_same_faq(k["id"]) for k in resp.get("knowledge") or []}
    return sum(1 for i in case.expect.must_cite if _same_faq(i) in retrieved) / len(case.expect.must_cite)


def _same_faq(faq_id: str) -> str:
    """acme's id/ro/zh FAQs are translations of its English ones (faq-lost-parcel-id): either one answers."""
    return re.sub(r"-(?:id|ro|zh)$", "", faq_id)


@metric
def citations_grounded(case: Case, resp: dict) -> float | None:
    """Every FAQ a draft cites was retrieved for this message (no invented sources)."""
    cited = [c["id"] for d in _drafts(resp) for c in d.get("citations") or []]
    if not cited:
        return None
    retrieved = {k["id"] for k in resp.get("knowledge") or []}
    return sum(1 for c in cited if c in retrieved) / len(cited)


def _verdicts(resp: dict, field: str) -> list:
    return [v[field] for v in resp.get("judge") or [] if v.get(field) is not None]


@metric
def empathy_judged(case: Case, resp: dict) -> float | None:
    """The LLM judge's empathy score (prompts/judge_tone.yaml rubric, median of 3 votes), 1-5 scaled to
    0-1 and averaged over the drafts. None when the run had no judge (`--judge-model`)."""
    scores = _verdicts(resp, "empathy")
    return sum((e - 1) / 4 for e in scores) / len(scores) if scores else None


@metric
def tone_judged(case: Case, resp: dict) -> float | None:
    """Share of drafts whose tone the judge's majority found right: nothing trivialised, no blame, no joke
    on a serious matter, no sarcasm, the customer's language."""
    verdicts = _verdicts(resp, "tone_ok")
    return sum(verdicts) / len(verdicts) if verdicts else None


@metric
def claims_supported(case: Case, resp: dict) -> float | None:
    """Share of drafts whose every factual claim the retrieved knowledge supports, by the judge's majority
    (entailment; prompts/judge_grounding.yaml)."""
    verdicts = _verdicts(resp, "supported")
    return sum(verdicts) / len(verdicts) if verdicts else None


@metric
def judge_agreement(case: Case, resp: dict) -> float | None:
    """How far the judge's 3 votes agreed with their majority (informational: low means a split verdict)."""
    shares = _verdicts(resp, "agreement")
    return sum(shares) / len(shares) if shares else None


QUALITY = ("clean_first_time", "action_correct", "rsr_complete", "language_match", "avoids_must_not",
           "intents_covered", "cites_expected_faq", "empathy_judged", "tone_judged", "claims_supported")  # what "better" means in a paired comparison


def score(case: Case, resp: dict) -> dict[str, float | None]:
    return {name: fn(case, resp) for name, fn in METRICS.items()}
