from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authorize
from api.schemas import ErrorResponse
from prompts import templates

router = APIRouter(tags=["prompts"], responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
                   dependencies=[Depends(authorize("suggest"))])


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variables: dict = Field(default_factory=dict, description="Template variables; a missing one is a 422 naming it.")


@router.get("/v1/prompts", summary="List prompt templates")
def list_prompts() -> dict:
    return {"prompts": [{"name": path.stem, "version": t.version, "purpose": t.purpose, "description": t.description,
                         "problem": templates.problem(path.stem)} for path, t in templates.all_templates()]}


@router.get("/v1/prompts/{name}", summary="Show one prompt template")
def show_prompt(name: str) -> dict:
    # `problem`: why the newest edit of the file was rejected (the version shown keeps serving)
    return {**templates.load(name).model_dump(), "problem": templates.problem(name)}


@router.post("/v1/prompts/{name}/render", summary="Render a template with variables")
def render_prompt(name: str, body: RenderRequest) -> dict:
    return {"messages": templates.load(name).render(body.variables)}
