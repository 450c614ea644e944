"""The suggest pipeline, top to bottom:

    triage -> plan -> retrieve -> budget -> render -> generate -> shape -> guard -> repair -> respond

Every draft that leaves this function has passed every blocking guardrail;
every draft that did not is returned under `blocked` with its findings.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from functools import partial

from pydantic import BaseModel

from api.errors import APIError
from api.fallbacks import brand_reply, due_now, holding, holding_response, next_step_for, no_reply, private_part
from api.llm import LLMClient, LLMUnavailable
from api.prompting import budget, instructions, render, retrieve
from api.schemas import BlockedDraft, Citation, Draft, KnowledgeRef, PromptRef, SuggestRequest, SuggestResponse, Usage
from api.settings import Settings
from guardrails import CheckContext, Finding, check, is_blocking
from guardrails.engine import one_suggestion
from guardrails.channels import SENTENCE_END
from guardrails.policy import Policy, fix, load_policy
from guardrails.triage import Triage, analyze, is_unclear, language_name, with_judgement
from knowledge.embeddings import QueryEmbedder
from knowledge.lexical import content_words
from knowledge.store import Hit, KnowledgeStore
from prompts import templates
from prompts.segments import Parsed, Plan, complete, fit_channel, join, language_spec, parse, plan_for, prompt_parts, remap

MIN_ROUND_SECONDS = 3.0  # an LLM round (regenerate or re-ask) is not started with less time than this left
CITATION_MIN_SHARED = 2  # words a draft must share with one FAQ and none of the other retrieved ones
# more LLM rounds while no draft has a part the model wrote (all blocked or all replaced), time allowing.
# On the README's request (embedded model, fresh server): with one more round, 13 of 16 runs had a model-written
# draft (9 of 16 first rounds gave one, 4 of 7 second ones); with two more, 19 of 20
REGENERATE_ROUNDS = 2


@dataclass
class Services:
    settings: Settings
    store: KnowledgeStore
    llm: LLMClient
    embed_query: QueryEmbedder = field(init=False)

    def __post_init__(self) -> None:
        self.embed_query = QueryEmbedder(self.store.embed.embed_texts)


class _Timer:
    def __init__(self):
        self.t0 = self.last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.ms[name] = round(self.ms.get(name, 0.0) + (now - self.last) * 1000, 2)
        self.last = now

    def total(self) -> dict[str, float]:
        self.ms["total"] = round((time.perf_counter() - self.t0) * 1000, 2)
        return self.ms


Emit = Callable[[str, BaseModel], Awaitable[None]]


async def suggest(req: SuggestRequest, svc: Services, emit: Emit | None = None) -> SuggestResponse:
    """`emit`, when given, hears the triage and then each draft the moment it has passed the
    guardrails (for streaming); the returned response is the whole answer either way."""
    with one_suggestion():  # a text is judged once per request, however many steps look at it
        return await _suggest(req, svc, emit)


async def _suggest(req: SuggestRequest, svc: Services, emit: Emit | None) -> SuggestResponse:
    timer = _Timer()
    policy = load_policy(req.brand)
    prompt = req.prompt or policy.prompt
    template = templates.load(prompt)  # unknown template: 404 before any work
    if template.purpose != "suggest":
        raise APIError(422, "wrong_prompt", f"prompt {prompt!r} is a {template.purpose} template; "
                       "use a suggest template (GET /v1/prompts)", "prompt")

    # triage; the message's embedding is asked for first and starts when triage yields the loop. Handing it to
    # its thread before triage was measured slower here: the model's two threads and triage then share two cores
    embedding = asyncio.ensure_future(svc.embed_query(req.message))
    triage = analyze(req.message, language=req.language)
    if svc.settings.triage_judge and is_unclear(triage):  # off by default: never on the fast path
        triage = await judge(svc, triage, req.message)
    timer.lap("triage")
    if emit:
        await emit("triage", triage)

    # plan: the reply's parts from the recommended action; a troll gets no drafted reply (seed 004)
    plan = plan_for(triage, req.visibility)
    if plan is None:
        embedding.cancel()
        return no_reply(req, triage, template, policy, timer)
    context = CheckContext(language=triage.language, serious=triage.serious, message=req.message, check_language=True,
                           channel=req.channel, visibility=req.visibility)
    # the brand's response-time target is about to pass: a holding reply now beats a full one too late
    if due_now(req, svc.settings) and (held := holding(req, triage, context, policy)):
        embedding.cancel()
        return holding_response(req, triage, held, "response_target", template, svc.llm.model, Usage(), [], [], timer)

    # retrieve: the best FAQs above the relevance cut-off, and the voice rules closest to this message
    faqs, voice = await retrieve(req, triage, template, svc, embedding)
    timer.lap("retrieve")
    # a question nothing in the knowledge base answers: the model would guess, so hold instead
    if plan.mode == "question" and not faqs and (held := holding(req, triage, context, policy)):
        return holding_response(req, triage, held, "no_knowledge", template, svc.llm.model, Usage(), [], [], timer)

    # budget: best first, whole items only; render
    faqs, voice = budget(template, faqs, voice)
    messages = render(template, req, triage, plan, faqs, voice)
    timer.lap("render")

    # generate -> guard -> repair (fix / reask / block, by the brand's policy), one more round if nothing passed,
    # all within the request's deadline: a slow model gets the holding reply, not a 60-second wait
    deadline = time.monotonic() + svc.settings.suggest_deadline
    shape = partial(_shape, plan=plan, language=triage.language)
    # the prompt's own words, minus the facts and the customer's: a part that reads them back is not an answer
    scaffold = instructions(template, req, triage, plan)
    # a draft reciting the system prompt is blocked (prompt injection); not the part instructions: they are
    # worded like replies ("send us a direct message so we can look into it")
    context = replace(context, prompt=messages[0]["content"])
    # the FAQ for the customer's problem says what we will do: the brand's direct message ends with it
    matched = next_step_for(faqs, triage, req.message) if plan.private else None
    next_step = matched.next_step if matched else None
    # the FAQs' titles are customers' questions: a part that reads one back speaks as the customer
    dress = partial(_dress, plan=plan, triage=triage, req=req, context=context, policy=policy, scaffold=scaffold,
                    questions="\n".join(h.title for h in faqs if h.title), next_step=next_step)
    # the model's own words are judged without the channel's length: a long part gives way to the brand's
    # sentence when the parts are put together (fit_channel), rather than the cut dropping the next step
    words_only = replace(context, channel=None)
    params = template.params
    drafts: dict[str, Draft] = {}  # by text: the same draft twice is one draft
    blocked: list[BlockedDraft] = []
    usage = Usage()
    model = svc.llm.model
    max_tokens = min(params.max_tokens or svc.settings.llm_max_tokens, svc.settings.llm_max_tokens)
    temperature = params.temperature if params.temperature is not None else svc.settings.llm_temperature
    # the first part's label again means the model has begun the reply over (the first of a repeated part
    # counts): measured, 38 of 189 recorded drafts went on that way, up to max_tokens. The template's own
    # stops (its fence around the customer's words) end an echo of the prompt: 18 of 220 calls, 7 % of the
    # tokens written in a fresh eval run
    stop = [f"\n{prompt_parts(plan)[0]['label']}:", *params.stop]
    async def keep(outcome: Draft | BlockedDraft) -> None:
        if (kept := _keep(outcome, drafts, blocked)) is not None:
            kept.citations = cite(kept.text, faqs, kept.private)  # respond: the FAQs this draft actually draws on
            # streamed only now: it has passed every guardrail and will not change. The brand's sentences alone
            # wait for the end: the next round may bring the model's own draft, which takes their place
            if emit and model_wrote(kept):
                await emit("draft", kept)

    for attempt in range(1 + REGENERATE_ROUNDS):
        # a draft made only of the brand's sentences is safe but is not a suggestion: the model gets another go
        if attempt and (any(map(model_wrote, drafts.values())) or _left(deadline) < MIN_ROUND_SECONDS):
            break
        to_reask: list[tuple[str, str, list[Finding]]] = []
        try:
            # each completion is guarded as it arrives, so the first draft can go out while the next is written
            completions = svc.llm.chat_each(messages, n=req.n, max_tokens=max_tokens, temperature=temperature, stop=stop)
            async with asyncio.timeout(_left(deadline)), aclosing(completions):
                async for result in completions:
                    timer.lap("generate")
                    usage.add(result)
                    model = result.model
                    for raw, finish in zip(result.texts, result.finish_reasons):
                        said, text, parts = shape(raw, cut_off=finish == "length")  # what is checked is what is returned
                        outcome = guard(said, text, words_only, policy)
                        if isinstance(outcome, list):
                            to_reask.append((said, text, outcome))
                        else:
                            await keep(dress(outcome, parts, blocked=blocked))
                    timer.lap("guard")
        except (LLMUnavailable, TimeoutError) as exc:
            timer.lap("generate")
            # drafts that came back before the failure are kept; those waiting for a re-ask are reported blocked
            blocked.extend(BlockedDraft(text=text, findings=findings) for _, text, findings in to_reask)
            if drafts:
                break
            # the brand's holding reply ("we've seen this, we'll answer by ...") instead of an error
            slow = isinstance(exc, TimeoutError)
            held = brand_reply(plan, triage, req, context, policy, next_step) if plan.mode == "praise" else None
            if (held := held or holding(req, triage, context, policy)) is None:
                if blocked:
                    break
                raise LLMUnavailable(f"the LLM did not answer within {svc.settings.suggest_deadline:.0f}s") if slow else exc
            held.citations = cite(held.text, faqs, held.private)
            return holding_response(req, triage, held, "llm_slow" if slow else "llm_unavailable", template, model,
                                     usage, blocked, faqs, timer)
        if to_reask:
            repair_vars = {"language_name": language_name(triage.language), "serious": triage.serious,
                           "categories": triage.categories, "message": req.message}
            outcomes = await asyncio.gather(*(reask(svc, repair_vars, raw, text, findings, words_only, policy, usage, shape,
                                                    deadline) for raw, text, findings in to_reask))
            for outcome, parts in [o for group in outcomes for o in group]:
                await keep(dress(outcome, parts, blocked=blocked))
            timer.lap("repair")

    # every model draft blocked: the brand's own sentences for each part (or its holding reply), the drafts reported
    if not drafts and (held := (brand_reply(plan, triage, req, context, policy, next_step) if plan.mode != "question" else None)
                       or holding(req, triage, context, policy)):
        held.citations = cite(held.text, faqs, held.private)  # the brand's DM may end with an FAQ's next step
        return holding_response(req, triage, held, "all_blocked", template, model, usage, blocked, faqs, timer)
    # the model's drafts first; one of the brand's sentences alone only where the model's did not fill all n
    ranked = sorted(drafts.values(), key=lambda d: not model_wrote(d))[:req.n]
    return SuggestResponse(
        id=f"sug_{secrets.token_hex(8)}", brand=req.brand, triage=triage, drafts=ranked, blocked=blocked,
        knowledge=[KnowledgeRef(id=h.id, kind=h.kind, score=h.score) for h in faqs],
        prompt=PromptRef(name=template.name, version=template.version), model=model, usage=usage,
        timings_ms=timer.total())


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _shape(raw: str, cut_off: bool, plan: Plan, language: str) -> tuple[str, str, Parsed]:
    """The model's own words with the label lines stripped (what it said, and what is kept of it:
    a reply cut at max_tokens loses its half sentence). The guardrails judge these first."""
    joiner = language_spec(language).joiner
    whole = parse(raw, plan, language)
    said = whole.text(joiner)
    if not cut_off:
        return said, tidy(said), whole
    parts = parse(trim_to_sentence(raw), plan, language)
    return said, tidy(parts.text(joiner)), parts


def _dress(outcome: Draft | BlockedDraft, parts: Parsed | None, plan: Plan, triage: Triage, req: SuggestRequest,
           context: CheckContext, policy: Policy, scaffold: str, questions: str, next_step: str | None,
           blocked: list[BlockedDraft]) -> Draft | BlockedDraft:
    """A draft that passed, made whole: each part the plan asks for (the brand's sentence where the
    model left one out or got it wrong), and the private message for `reply_then_private`. Whatever
    tactful adds is guarded again, so the finished reply passes like any draft."""
    if not isinstance(outcome, Draft) or parts is None:
        return outcome
    joiner = language_spec(triage.language).joiner
    spoken = parts.text(joiner)
    mine = remap(parts.segments, spoken, outcome.text, joiner) if outcome.text != spoken else parts.segments
    segments = complete(mine, plan, triage.language, req.message, triage.categories, scaffold, questions)
    segments = fit_channel(segments, plan, triage.language, triage.categories, req.channel)
    text = join(segments, joiner)
    if text != outcome.text:
        checked = guard(text, text, context, policy)
        if not isinstance(checked, Draft):
            return BlockedDraft(text=text, findings=checked if isinstance(checked, list) else checked.findings)
        if checked.text != text:  # e.g. cut to the channel's limit
            segments = remap(segments, text, checked.text, joiner)
        outcome.text, outcome.findings = checked.text, checked.findings
    outcome.segments = segments
    if plan.private:
        private, outcome.private_findings = private_part(parts.private, triage, req, context, policy, blocked, next_step,
                                                         scaffold, questions)
        if private is None:
            return BlockedDraft(text=outcome.text, findings=outcome.private_findings, part="private")
        outcome.public, outcome.private = outcome.text, private
    return outcome


async def judge(svc: Services, triage: Triage, message: str) -> Triage:
    """The optional LLM second opinion on seriousness (prompts/triage_judge.yaml). Any failure or
    unparsable answer keeps the cue-based triage: the judge is advice, never a dependency."""
    template = templates.load("triage_judge")
    try:
        result = await svc.llm.chat(template.render({"message": message}), n=1, max_tokens=template.params.max_tokens or 40,
                                    temperature=template.params.temperature or 0.0)
        verdict = json.loads(result.texts[0][result.texts[0].index("{"): result.texts[0].rindex("}") + 1])
        return with_judgement(triage, verdict.get("serious") is True, str(verdict.get("category")))
    except (LLMUnavailable, ValueError, AttributeError):
        return triage


def guard(raw: str, text: str, context: CheckContext, policy: Policy) -> Draft | BlockedDraft | list[Finding]:
    """A passing (possibly fixed) draft, a blocked draft, or the findings to re-ask the LLM about."""
    findings = policy.apply(check(text, context))
    if not is_blocking(findings):
        return Draft(text=text, findings=findings, repaired=text != raw, original=raw if text != raw else None)
    if policy.repair(findings) == "fix" and (fixed := fix(text, findings, context, policy)):
        # e.g. "Just click Reset" -> "Click Reset"; re-checked inside fix()
        return Draft(text=fixed[0], findings=fixed[1], repaired=True, original=raw, repair="fix",
                     fixed=[f for f in findings if f.severity == "block"])
    if policy.can_reask(findings):
        return findings
    return BlockedDraft(text=text, findings=findings)


async def reask(svc: Services, variables: dict, raw: str, text: str, findings: list[Finding], context: CheckContext,
                policy: Policy, usage: Usage, shape, deadline: float) -> list[tuple[Draft | BlockedDraft, Parsed | None]]:
    """Send a blocked draft back to the LLM with its span-level findings, at most
    `policy.reask_rounds` times, and no more once a re-ask repeats a finding it was sent to fix
    (the model was told exactly this and wrote it again). Every failed attempt is reported under
    `blocked`."""
    template = templates.load("repair")
    attempts: list[tuple[Draft | BlockedDraft, Parsed | None]] = [(BlockedDraft(text=text, findings=findings), None)]
    first_findings = [f for f in findings if f.severity == "block"]
    for round_ in range(1, policy.reask_rounds + 1):
        if _left(deadline) < MIN_ROUND_SECONDS:
            return attempts
        messages = template.render({**variables, "draft": text, "findings": [f for f in findings if f.severity == "block"],
                                    "max_words": template.params.max_words})
        try:
            result = await asyncio.wait_for(svc.llm.chat(
                messages, n=1, max_tokens=min(template.params.max_tokens or 120, svc.settings.llm_max_tokens),
                temperature=template.params.temperature or 0.3, stop=template.params.stop or None), _left(deadline))
        except (LLMUnavailable, asyncio.TimeoutError):
            return attempts  # the original stays blocked; the other drafts of this request still count
        usage.add(result)
        _, new, parts = shape(result.texts[0], cut_off=result.finish_reasons[0] == "length")
        outcome = guard(raw, new, context, policy)
        if isinstance(outcome, Draft):
            outcome.repair, outcome.reask_rounds = "reask", round_
            outcome.repaired, outcome.original = True, raw
            outcome.fixed = first_findings + outcome.fixed
            # the model's first text is in `original` with the findings in `fixed`; failed re-asks stay reported
            return [(outcome, parts), *attempts[1:]]
        if isinstance(outcome, BlockedDraft):  # a finding the policy does not let us re-ask about
            outcome.reask_round = round_
            return [*attempts, (outcome, parts)]
        # in the recorded eval (embedded model) every failed first re-ask, 98 of them, repeated a rule it was
        # sent to fix; 52 returned the draft unchanged, and of the other 46 not one second re-ask passed.
        # Each is a whole LLM call (~3 s on 2 cores)
        repeated = _blocking_rules(outcome) & _blocking_rules(findings)
        text, findings = new, outcome
        attempts.append((BlockedDraft(text=new, findings=findings, reask_round=round_), parts))
        if repeated:
            break
    return attempts


def model_wrote(draft: Draft) -> bool:
    """Some part of the draft is the model's own words, not only the brand's sentences standing in for its parts."""
    return not draft.segments or any(s.source == "model" for s in draft.segments)


def _blocking_rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings if f.severity == "block"}


def _keep(outcome: Draft | BlockedDraft, drafts: dict[str, Draft], blocked: list[BlockedDraft]) -> Draft | None:
    """The draft when it is new; blocked drafts and repeats are recorded, not returned."""
    if isinstance(outcome, BlockedDraft):
        blocked.append(outcome)
    elif outcome.text not in drafts:
        drafts[outcome.text] = outcome
        return outcome
    elif outcome.fixed and outcome.original is not None:
        # its repair duplicates a draft we already have: the model's blocked text is still reported
        blocked.append(BlockedDraft(text=outcome.original, findings=outcome.fixed, reask_round=outcome.reask_rounds))
    return None


def tidy(text: str) -> str:
    """Deterministic repairs of the model's formatting, never of its tone (that is the guardrails')."""
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'“”":  # the whole reply in quotes
        text = text[1:-1].strip()
    if text[:1].islower():  # small models sometimes start mid-sentence: "we'll report it..."
        text = text[0].upper() + text[1:]
    return text


def trim_to_sentence(text: str) -> str:
    """Drop a trailing half sentence; keep the text when no earlier sentence ends."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends and ends[-1] >= len(text) * 0.3 else text


def cite(draft: str, faqs: list[Hit], private: str | None = None) -> list[Citation]:
    """FAQs the reply (public part and direct message) draws on: one whose next step it quotes, or
    whose distinctive words it reuses: a draft that says "photo", "courier" and "replacement" is
    drawing on the damaged-item answer. Words every retrieved FAQ has ("order", "days") prove
    nothing, so only words that set an FAQ apart from the others in the prompt count. Lexical on
    purpose: microseconds, and the agent can find the words."""
    whole = f"{draft}\n{private}" if private else draft
    words = content_words(whole)
    vocab = [content_words(f"{h.title} {h.text} {h.next_step or ''}") for h in faqs]
    out = []
    for i, h in enumerate(faqs):
        others = set().union(*(v for j, v in enumerate(vocab) if j != i))
        distinctive = words & (vocab[i] - others)
        if (h.next_step and h.next_step in whole) or len(distinctive) >= CITATION_MIN_SHARED:
            out.append(Citation(id=h.id, title=h.title, url=h.url))
    return out
