"""What the LLM is told for a suggestion: the brand's knowledge retrieved for the message, fitted to
the template's token budgets, and rendered into chat messages. The suggest pipeline and
`tactful prompts render --message` both go through here, so what the CLI shows is what the model gets.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from api.schemas import SuggestRequest
from guardrails.channels import limit_for
from guardrails.triage import Triage, language_name
from knowledge.glossary import expand_query
from knowledge.store import Hit
from prompts import templates
from prompts.segments import Plan, prompt_parts
from prompts.tokens import fit_recent, fit_to_budget

if TYPE_CHECKING:
    from api.pipeline import Services


async def retrieve(req: SuggestRequest, triage: Triage, template: templates.PromptTemplate, svc: Services,
                   embedding: asyncio.Future | None = None) -> tuple[list[Hit], list[Hit]]:
    """The brand's best FAQs above the relevance cut-off, and (when the template has a voice budget)
    the voice-guide sections closest to the message. `embedding` is the message's, already asked for."""
    query = expand_query(req.message, triage.language)  # + English words for id/ro/zh support terms
    if query == req.message and embedding is not None:
        vector = await embedding
    else:  # the expanded query is what must be embedded
        if embedding is not None:
            embedding.cancel()
        vector = await svc.embed_query(query)
    search = partial(svc.store.search, req.brand, query, svc.settings.knowledge_k, ["faq"], None,
                     svc.settings.knowledge_min_score, vector)
    voices = partial(svc.store.search_chunks, req.brand, query, 2, ["voice"], None, vector)
    # sub-millisecond on the brand's in-memory mirror; a thread when it must ask Chroma (first load, ANN)
    if svc.store.in_memory(req.brand):
        return search(), voices() if template.voice_budget else []
    faqs = await run_in_threadpool(search)
    return faqs, await run_in_threadpool(voices) if template.voice_budget else []


def budget(template: templates.PromptTemplate, faqs: list[Hit], voice: list[Hit]) -> tuple[list[Hit], list[Hit]]:
    """What fits the template's token budgets, best first, whole items only."""
    return (fit_to_budget(faqs, template.knowledge_budget, lambda h: f"{h.title}: {h.text}"),
            fit_to_budget(voice, template.voice_budget, lambda h: h.text))


def render(template: templates.PromptTemplate, req: SuggestRequest, triage: Triage, plan: Plan, faqs: list[Hit],
           voice: list[Hit]) -> list[dict]:
    """The chat messages the LLM gets (`tactful prompts render --message` prints the same)."""
    return template.render({
        "brand": req.brand, "channel": req.channel, "visibility": req.visibility,
        "language_name": language_name(triage.language), "serious": triage.serious, "categories": triage.categories,
        "voice": voice, "faqs": faqs,
        "history": [t.model_dump() for t in fit_recent(req.history, template.history_budget, lambda t: t.text)],
        "customer_name": req.customer_name, "message": req.message, "max_words": max_words(template, req.channel),
        "tone": req.tone, "max_chars": limit_for(req.channel), "parts": prompt_parts(plan),
        "escalated_to": (triage.escalate_to or "").replace("_", " ") if plan.mode == "escalate" else None,
    })


CHARS_PER_WORD = 6  # a word and its space in en/id/ro, rounded up


def max_words(template: templates.PromptTemplate, channel: str | None) -> int:
    """The template's word limit, or fewer when the channel holds fewer: "at most 60 words and 280
    characters" asked for more than a tweet holds, and what the model wrote past the limit was paid
    for, then cut (about 46 words fit in 280 characters)."""
    limit = limit_for(channel)
    return min(template.params.max_words, limit // CHARS_PER_WORD) if limit else template.params.max_words


def instructions(template: templates.PromptTemplate, req: SuggestRequest, triage: Triage, plan: Plan) -> str:
    """The prompt's own wording: the template rendered for this request with no customer words,
    conversation or facts. Whatever a template says ("One short apology, once.", "This is a serious
    matter (media_risk)"), a draft that reads it back is not answering."""
    bare = req.model_copy(update={"message": "", "history": [], "customer_name": None})
    return "\n".join(m["content"] for m in render(template, bare, triage, plan, [], []))
