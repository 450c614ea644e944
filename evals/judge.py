"""The eval suite's LLM judge: empathy and tone by a rubric (prompts/judge_tone.yaml), and whether
the retrieved knowledge supports each draft's factual claims (prompts/judge_grounding.yaml).

Any OpenAI-compatible model judges, the embedded one included; its name is pinned in the run.
Each question is asked VOTES times and the majority counts (the median for the 1-5 empathy
score), with how far the votes agree, so a split verdict shows instead of swinging between runs.
Judge calls are recorded like the pipeline's (`judge-<model>.jsonl`), so a replay judges nothing
again. A vote that is not the JSON asked for is dropped; with no valid vote there is no verdict.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter

from pydantic import BaseModel, Field, ValidationError

from guardrails.triage import language_name
from prompts import templates

VOTES = 3


class ToneVote(BaseModel):
    empathy: int = Field(ge=1, le=5)
    tone_ok: bool
    reason: str = ""


class GroundingVote(BaseModel):
    supported: bool
    unsupported: list[str] = Field(default_factory=list)


class Verdict(BaseModel):
    """The judge's majority on one draft; `None` fields: that question got no valid vote."""
    empathy: int | None = None
    tone_ok: bool | None = None
    supported: bool | None = None
    agreement: float | None = Field(None, description="Share of valid votes agreeing with the majority, over both questions.")
    reason: str = ""
    unsupported: list[str] = Field(default_factory=list)
    votes: int = 0


def parse_vote(text: str, model: type[BaseModel]) -> BaseModel | None:
    """The first JSON object in the answer, if it is the one asked for (small models add prose around it)."""
    try:
        return model.model_validate(json.loads(text[text.index("{"): text.rindex("}") + 1]))
    except (ValueError, ValidationError):
        return None


class Judge:
    def __init__(self, llm, model: str):
        self.llm, self.model = llm, model

    async def _ask(self, name: str, variables: dict, model: type[BaseModel], repeat: int) -> list:
        template = templates.load(name)
        messages = template.render(variables)
        votes = []
        for vote in range(VOTES):
            self.llm.new_case(f"{repeat}:{vote}")  # each vote its own sample, and its own recording
            result = await self.llm.chat(messages, n=1, max_tokens=template.params.max_tokens or 80,
                                         temperature=template.params.temperature if template.params.temperature is not None else 0.7)
            if result.texts and (parsed := parse_vote(result.texts[0], model)) is not None:
                votes.append(parsed)
        return votes

    async def verdict(self, message: str, draft: str, language: str, knowledge: list[str] | None, repeat: int = 0) -> Verdict:
        tone: list[ToneVote] = await self._ask("judge_tone", {"message": message, "draft": draft,
                                                              "language_name": language_name(language)}, ToneVote, repeat)
        grounded: list[GroundingVote] = (await self._ask("judge_grounding", {"faqs": knowledge, "draft": draft}, GroundingVote, repeat)
                                         if knowledge is not None else [])
        out = Verdict(votes=len(tone) + len(grounded))
        agree: list[float] = []
        if tone:
            out.empathy = int(statistics.median_low(v.empathy for v in tone))
            out.tone_ok, share = _majority([v.tone_ok for v in tone])
            agree += [share, sum(abs(v.empathy - out.empathy) <= 1 for v in tone) / len(tone)]
            out.reason = next(v.reason for v in tone if v.tone_ok == out.tone_ok)
        if grounded:
            out.supported, share = _majority([v.supported for v in grounded])
            agree.append(share)
            out.unsupported = sorted({c for v in grounded if v.supported == out.supported for c in v.unsupported})
        out.agreement = round(statistics.fmean(agree), 3) if agree else None
        return out


def _majority(values: list[bool]) -> tuple[bool, float]:
    """The verdict most votes gave; a tie is the stricter one (not ok, not supported)."""
    counts = Counter(values)
    winner = counts[True] > counts[False]
    return winner, counts[winner] / len(values)
