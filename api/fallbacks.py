"""Replies that are not drafted by the model: the brand's holding reply (the LLM is down or
slow, the response-time target is about to pass, no FAQ answers the question, every draft was
blocked) and no reply at all to a troll. Each is guarded like any draft."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from api.schemas import BlockedDraft, Draft, HoldingReason, KnowledgeRef, PromptRef, SuggestRequest, SuggestResponse, Usage
from api.settings import Settings
from guardrails import CheckContext, check, is_blocking
from guardrails.finding import Finding
from guardrails.policy import Policy, fix
from guardrails.triage import Triage
from knowledge.lexical import content_words
from knowledge.store import Hit
from prompts.holding import holding_reply, load_holding
from prompts.segments import Plan, asks_for_details, complete, join, language_spec, private_language, private_message


NEXT_STEP_MIN_SHARED = 2  # words an FAQ's question shares with the customer's problem before its next step is used

HOLDING_NOTES = {
    "llm_unavailable": "The LLM is unavailable: this is the brand's holding reply.",
    "llm_slow": "The LLM did not answer within the request's deadline: this is the brand's holding reply.",
    "response_target": "The brand's response-time target is about to pass: a holding reply now, the full answer after.",
    "no_knowledge": "Nothing in the knowledge base answers this question: a holding reply rather than a guessed answer.",
    "all_blocked": "Every model draft failed a blocking guardrail (see `blocked`): this reply is made of the brand's own "
                   "sentences for each part.",
}


def holding_response(req: SuggestRequest, triage: Triage, held: Draft, reason: HoldingReason, template, model: str,
                      usage: Usage, blocked: list[BlockedDraft], faqs: list[Hit], timer) -> SuggestResponse:
    return SuggestResponse(
        id=f"sug_{secrets.token_hex(8)}", brand=req.brand, triage=triage, drafts=[held], blocked=blocked,
        knowledge=[KnowledgeRef(id=h.id, kind=h.kind, score=h.score) for h in faqs],
        prompt=PromptRef(name=template.name, version=template.version), model=model, usage=usage,
        timings_ms=timer.total(), holding=True, holding_reason=reason, note=HOLDING_NOTES[reason])


def due_now(req: SuggestRequest, settings: Settings) -> bool:
    """The brand's response-time target for this message passes within the holding margin."""
    if req.received_at is None or (templates_ := load_holding(req.brand)) is None:
        return False
    received = req.received_at if req.received_at.tzinfo else req.received_at.replace(tzinfo=timezone.utc)
    target = received + timedelta(minutes=templates_.response_time_minutes)
    return target - datetime.now(timezone.utc) <= timedelta(minutes=settings.holding_margin_minutes)


def no_reply(req: SuggestRequest, triage: Triage, template, policy: Policy, timer) -> SuggestResponse:
    """`do_not_engage`: no LLM call and no draft, or the brand's one calm line when its policy asks for it."""
    drafts = []
    if policy.troll_reply == "calm_line":
        line = language_spec(triage.language).phrases.calm
        context = CheckContext(language=triage.language, serious=False, message=req.message, channel=req.channel,
                               visibility=req.visibility)
        if not is_blocking(findings := policy.apply(check(line, context))):
            drafts = [Draft(text=line, findings=findings)]
    note = ("Trolling or abuse with no complaint in it: tactful recommends not replying (hide or report only threats "
            "or hate; never delete a genuine complaint)." + (" The brand's policy offers one calm line." if drafts else ""))
    return SuggestResponse(
        id=f"sug_{secrets.token_hex(8)}", brand=req.brand, triage=triage, drafts=drafts, blocked=[], knowledge=[],
        prompt=PromptRef(name=template.name, version=template.version), model="none", usage=Usage(),
        timings_ms=timer.total(), note=note)


def holding(req: SuggestRequest, triage: Triage, context: CheckContext, policy: Policy) -> Draft | None:
    """The brand's holding reply, guarded like any draft; None when the brand has none or it fails a guardrail."""
    templates_ = load_holding(req.brand)
    if templates_ is None:
        return None
    text, lang = holding_reply(templates_, triage.language, req.received_at, req.customer_name)
    # a brand without a template in the customer's language falls back to English on purpose
    findings = policy.apply(check(text, replace(context, language=lang, check_language=lang == triage.language)))
    return None if is_blocking(findings) else Draft(text=text, findings=findings)


def brand_reply(plan: Plan, triage: Triage, req: SuggestRequest, context: CheckContext, policy: Policy,
                next_step: str | None = None) -> Draft | None:
    """A reply made only of the brand's own sentences for each part (prompts/parts/segments.yaml): what
    the agent gets when every model draft was blocked, or for praise when the model is unavailable
    (a thank-you needs no promise to come back later). Guarded like any draft."""
    segments = complete([], plan, triage.language, req.message, triage.categories)
    text = join(segments, language_spec(triage.language).joiner)
    findings = policy.apply(check(text, context))
    if is_blocking(findings):
        return None
    draft = Draft(text=text, segments=segments, findings=findings)
    if plan.private:
        private, private_findings = private_part(None, triage, req, context, policy, [], next_step)
        if private is None:
            return None
        draft.public, draft.private, draft.private_findings = text, private, private_findings
    return draft


def private_part(text: str | None, triage: Triage, req: SuggestRequest, context: CheckContext, policy: Policy,
                  blocked: list[BlockedDraft], next_step: str | None = None, scaffold: str = "",
                  questions: str = "") -> tuple[str | None, list[Finding]]:
    """The direct message (the model's `text`, else the brand's, ending with `next_step`), guarded as a private
    reply: order numbers allowed, blame never. A model message that fails is reported in `blocked` and the
    brand's used instead, as it is for one that asks for nothing we need (not harmful, so not reported); a
    next step that fails in this context gives way to the brand's own ending."""
    private_context = replace(context, visibility="private", channel=None)
    private, source = private_message(text, triage.language, req.message, req.customer_name, next_step, scaffold, questions)
    if source == "model":
        if (passed := _passing(private, private_context, policy)) is None:
            blocked.append(BlockedDraft(text=private, findings=policy.apply(check(private, private_context)), part="private"))
        # one that asks for nothing was, on the embedded model, something else: "Please contact your local postal
        # department..." on the README's request, "They are academic assistants..." in the eval (5 of 12 kept DMs)
        elif asks_for_details(passed[0], triage.language):
            return passed
    findings: list[Finding] = []
    for step in dict.fromkeys([next_step, None]):
        private, _ = private_message(None, triage.language, req.message, req.customer_name, step)
        if (passed := _passing(private, private_context, policy)) is not None:
            return passed
        findings = policy.apply(check(private, private_context))
    return None, findings


def _passing(text: str, context: CheckContext, policy: Policy) -> tuple[str, list[Finding]] | None:
    """The text and its findings when it passes, or passes once fixed ("Just send" -> "Send"); else None."""
    findings = policy.apply(check(text, context))
    if not is_blocking(findings):
        return text, findings
    if policy.repair(findings) == "fix" and (fixed := fix(text, findings, context, policy)):
        return fixed
    return None


def next_step_for(faqs: list[Hit], triage: Triage, message: str) -> Hit | None:
    """The retrieved FAQ whose question names the customer's problem, when one does: its `next_step`
    ends the brand's direct message ("add a photo ... we'll send a replacement"), so the DM says what
    we will do instead of "we'll come back to you". Retrieval alone is not enough: for "My order
    arrived broken and nobody answers my emails" MiniLM ranks the late-delivery FAQ first, and
    promising to chase the courier for a broken item is worse than promising nothing. So the FAQ's
    question must share two words with what triage found ("arrived broken"; the message itself when
    triage found nothing), counting only words not every retrieved question has ("order"). Measured
    on the 40 eval cases that move to a DM: 11 get an FAQ's next step, none the wrong one (one shared
    word: 20, one wrong)."""
    language = private_language(triage.language)
    candidates = [h for h in faqs if h.next_step and h.language == language]
    if not candidates:
        return None
    # what the problem is, not the order number or email the customer posted
    found = " ".join(r.text for r in triage.evidence if r.category in triage.categories and r.category != "details_posted")
    words = content_words(found or message)
    titles = [content_words(h.title) for h in faqs]
    common = frozenset.intersection(*titles) if len(titles) > 1 else frozenset()
    best, best_shared = None, 0
    for h in candidates:  # retrieval order breaks ties
        shared = len((words & content_words(h.title)) - common)
        if shared > best_shared:
            best, best_shared = h, shared
    return best if best_shared >= NEXT_STEP_MIN_SHARED else None
