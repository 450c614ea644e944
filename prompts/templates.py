"""Prompt templates: YAML files in this folder, rendered with Jinja2 (strict).

A template is data a support lead edits; this module only loads, validates and
renders it. Each way it can go wrong has its own exception so the API and CLI
can say exactly what to fix.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Literal
from pathlib import Path

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TEMPLATE_DIR = Path(__file__).parent


class PromptError(Exception):
    """Base class for template problems."""


class PromptNotFound(PromptError):
    pass


class PromptInvalid(PromptError):
    pass


class PromptRenderError(PromptError):
    pass


class PromptParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float | None = None
    max_tokens: int | None = None
    max_words: int = 60


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    description: str
    system: str
    user: str
    params: PromptParams = Field(default_factory=PromptParams)
    purpose: Literal["suggest", "repair", "triage_judge"] = Field(
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
    try:  # syntax errors surface at load time, not on the first customer request
        _ENV.parse(template.system)
        _ENV.parse(template.user)
    except jinja2.TemplateSyntaxError as exc:
        raise PromptInvalid(f"{path}: template syntax error at line {exc.lineno}: {exc.message}") from exc
    return template


@lru_cache(maxsize=64)
def load(name: str, directory: Path = TEMPLATE_DIR) -> PromptTemplate:
    path = directory / f"{name}.yaml"
    if not name.replace("-", "").replace("_", "").isalnum() or not path.is_file():
        available = ", ".join(t.name for t in list_templates(directory)) or "none"
        raise PromptNotFound(f"no prompt template named {name!r}; available: {available}")
    return load_file(path)


def list_templates(directory: Path = TEMPLATE_DIR) -> list[PromptTemplate]:
    return [load_file(p) for p in sorted(directory.glob("*.yaml"))]


def render(name: str, variables: dict) -> list[dict]:
    return load(name).render(variables)
