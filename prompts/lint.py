"""`tactful prompts check`: lint every template before it reaches a customer.

For each template: it loads (YAML, schema, Jinja syntax, no unknown variables); it renders with
the variables the pipeline passes; the rendered prompt plus the template's knowledge, voice and
history budgets plus the reply (max_tokens) fit the model's context window; and the template's
own wording passes the guardrails, so an example that says "just click" is caught here.
"""

from __future__ import annotations

from pathlib import Path

from guardrails import CheckContext, check, is_blocking
from prompts.templates import TEMPLATE_DIR, PromptError, PromptTemplate, load_file
from prompts.tokens import count_tokens

SAMPLE = {
    "suggest": {"brand": "acme", "channel": "twitter", "visibility": "public", "language_name": "English", "serious": True,
                "categories": ["financial"], "voice": [], "faqs": [], "history": [], "customer_name": "Ana",
                "message": "You charged me twice!", "max_words": 60, "tone": "warm", "max_chars": 280, "escalated_to": None,
                "parts": [{"label": "RESPOND", "instruction": "acknowledge"}, {"label": "RESOLVE", "instruction": "next step"}]},
    "repair": {"language_name": "English", "serious": True, "categories": ["financial"], "message": "You charged me twice!",
               "draft": "Just check your bank.", "findings": [], "max_words": 60},
    "triage_judge": {"message": "You charged me twice!"},
    "judge_tone": {"message": "You charged me twice!", "draft": "We're sorry. Send us a DM and we'll refund you.",
                   "language_name": "English"},
    "judge_grounding": {"faqs": ["Refunds: money back within 5 working days."], "draft": "We'll refund you within 5 days."},
}
TONE_FAMILIES = ("minimising", "blame", "humour")  # a prompt is not a reply: only its tone is judged
MESSAGE_TOKENS = 1000  # a 4000-character customer message, the API's limit


def lint_template(path: Path, context_window: int) -> tuple[PromptTemplate | None, list[str]]:
    try:
        template = load_file(path)
    except PromptError as exc:
        return None, [str(exc)]
    problems = []
    try:
        messages = template.render(SAMPLE[template.purpose])
    except PromptError as exc:
        return template, [str(exc)]
    fixed = sum(count_tokens(m["content"]) for m in messages) - count_tokens(SAMPLE[template.purpose].get("message", ""))
    worst = (fixed + MESSAGE_TOKENS + template.knowledge_budget + template.voice_budget + template.history_budget
             + (template.params.max_tokens or 0))
    if worst > context_window:
        problems.append(f"{path.name}: up to {worst} tokens (prompt {fixed} + message {MESSAGE_TOKENS} + knowledge "
                        f"{template.knowledge_budget} + voice {template.voice_budget} + history {template.history_budget} + reply "
                        f"{template.params.max_tokens}) do not fit a {context_window}-token context; lower a budget")
    for field in ("system", "user"):
        findings = [f for f in check(getattr(template, field), CheckContext(serious=True))
                    if f.severity == "block" and f.family in TONE_FAMILIES]
        if is_blocking(findings):
            problems += [f"{path.name}: {field}: {f.rule}: \"{f.match}\": {f.message}" for f in findings]
    return template, problems


def lint_all(directory: Path = TEMPLATE_DIR, context_window: int = 2048) -> dict[str, list[str]]:
    return {path.name: lint_template(path, context_window)[1] for path in sorted(directory.glob("*.yaml"))}
