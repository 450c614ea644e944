"""Prompt templates: YAML files in this folder, rendered with Jinja2 (strict).

A template is data a support lead edits; this module only loads, validates and
renders it. Each way it can go wrong has its own exception so the API and CLI
can say exactly what to fix.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import jinja2
import yaml
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TEMPLATE_DIR = Path(__file__).parent
log = logging.getLogger("tactful.prompts")


class PromptError(Exception):
    """Base class for template problems."""


class PromptNotFound(PromptError):
    pass


class PromptInvalid(PromptError):
    pass


class PromptRenderError(PromptError):
    pass


# What the pipeline passes to each kind of template (api/pipeline.py); anything else is a typo.
VARIABLES = {
    "suggest": frozenset({"brand", "channel", "visibility", "language_name", "serious", "categories", "voice", "faqs",
                          "history", "customer_name", "message", "max_words", "tone", "max_chars", "parts", "escalated_to"}),
    "repair": frozenset({"language_name", "serious", "categories", "message", "draft", "findings", "max_words"}),
    "triage_judge": frozenset({"message"}),
    # the eval suite's judges (evals/judge.py)
    "judge_tone": frozenset({"message", "draft", "language_name"}),
    "judge_grounding": frozenset({"faqs", "draft"}),
}


class PromptParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float | None = None
    max_tokens: int | None = None
    max_words: int = 60
    # text of the template's own that a reply never contains, such as the fence around the customer's
    # words: a model that writes it is reading the prompt back, and everything after is paid-for waste.
    # At most 3: OpenAI takes 4 stop sequences and the suggest pipeline adds one.
    stop: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, max_length=3)


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    description: str
    system: str
    user: str
    params: PromptParams = Field(default_factory=PromptParams)
    purpose: Literal["suggest", "repair", "triage_judge", "judge_tone", "judge_grounding"] = Field(
        "suggest", description="What the pipeline uses it for; only `suggest` templates can be asked for in /v1/suggest.")
    knowledge_budget: int = Field(600, ge=0, description="Tokens of retrieved FAQs the prompt may carry.")
    voice_budget: int = Field(0, ge=0, description="Tokens of brand-voice guide sections the prompt may carry (0: none).")
    history_budget: int = Field(300, ge=0, description="Tokens of the conversation so far the prompt may carry, most recent first.")

    @cached_property
    def _compiled(self) -> tuple[jinja2.Template, jinja2.Template]:
        return _ENV.from_string(self.system), _ENV.from_string(self.user)

    def render(self, variables: dict) -> list[dict]:
        """Return OpenAI chat messages; a variable the template uses but was not given is an error."""
        try:
            system_t, user_t = self._compiled
            system = system_t.render(variables)
            user = user_t.render(variables)
        except jinja2.UndefinedError as exc:
            raise PromptRenderError(f"prompt {self.name!r} v{self.version}: {exc.message}; pass it in the render variables") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise PromptInvalid(f"prompt {self.name!r} v{self.version}: template syntax error at line {exc.lineno}: {exc.message}") from exc
        return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]


# autoescape off: these are prompts, not HTML; customer text is fenced in the template instead.
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)


def load_file(path: Path) -> PromptTemplate:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptInvalid(f"{path}: cannot read YAML: {exc}") from exc
    try:
        template = PromptTemplate.model_validate(data)
    except ValidationError as exc:
        raise PromptInvalid(f"{path}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    try:  # syntax errors and unknown variables surface at load time, not on the first customer request
        used = meta.find_undeclared_variables(_ENV.parse(template.system)) | meta.find_undeclared_variables(_ENV.parse(template.user))
    except jinja2.TemplateSyntaxError as exc:
        raise PromptInvalid(f"{path}: template syntax error at line {exc.lineno}: {exc.message}") from exc
    if unknown := sorted(used - VARIABLES[template.purpose]):
        raise PromptInvalid(f"{path}: undefined variable(s) {', '.join(unknown)}; a {template.purpose} template can use "
                            f"{', '.join(sorted(VARIABLES[template.purpose]))}")
    return template


# name, or name@version for a kept older version (prompts/suggest@1.yaml)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}(?:@[A-Za-z0-9_.-]{1,16})?")


@dataclass
class _Loaded:
    mtime_ns: int
    template: PromptTemplate
    error: str | None = None  # the newest edit's problem, while the last good version keeps serving


_LOADED: dict[Path, _Loaded] = {}
_LOCK = threading.Lock()


def load(name: str, directory: Path = TEMPLATE_DIR) -> PromptTemplate:
    """The template, re-read when its file changed: edits apply to the next request without a restart.
    An edit that does not load is rejected: the last good version keeps serving, and `problem()`
    (shown in GET /v1/prompts/{name} and the log) says why."""
    path = directory / f"{name}.yaml"
    if not _NAME.fullmatch(name) or not path.is_file():
        available = ", ".join(t.name + ("" if t.name == p.stem else f" ({p.stem})") for p, t in all_templates(directory)) or "none"
        raise PromptNotFound(f"no prompt template named {name!r}; available: {available}")
    mtime = path.stat().st_mtime_ns
    loaded = _LOADED.get(path)
    if loaded is not None and loaded.mtime_ns == mtime:
        return loaded.template
    with _LOCK:
        loaded = _LOADED.get(path)
        if loaded is not None and loaded.mtime_ns == mtime:
            return loaded.template
        try:
            template = load_file(path)
        except PromptInvalid as exc:
            if loaded is None:
                raise
            log.error("prompt %s: edit rejected, still serving v%s: %s", name, loaded.template.version, exc)
            _LOADED[path] = _Loaded(mtime, loaded.template, str(exc))
            return loaded.template
        if loaded is not None:
            log.info("prompt %s: reloaded v%s from %s", name, template.version, path)
        _LOADED[path] = _Loaded(mtime, template)
        return template


def problem(name: str, directory: Path = TEMPLATE_DIR) -> str | None:
    """Why the newest edit of a template was rejected, if it was."""
    load(name, directory)
    loaded = _LOADED.get(directory / f"{name}.yaml")
    return loaded.error if loaded else None


def all_templates(directory: Path = TEMPLATE_DIR) -> list[tuple[Path, PromptTemplate]]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            out.append((path, load(path.stem, directory)))
        except PromptError:
            continue  # a broken new file is reported when it is asked for, not in every listing
    return out


def list_templates(directory: Path = TEMPLATE_DIR) -> list[PromptTemplate]:
    return [t for _, t in all_templates(directory)]


def render(name: str, variables: dict) -> list[dict]:
    return load(name).render(variables)
