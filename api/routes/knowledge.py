from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import get_services
from api.pipeline import Services
from api.schemas import ErrorResponse

router = APIRouter(tags=["knowledge"], responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)
    k: int = Field(3, ge=1, le=50)
    kinds: list[Literal["faq", "voice"]] | None = None
    language: str | None = Field(None, min_length=2, max_length=8)


class SearchResult(BaseModel):
    id: str
    kind: str
    title: str
    language: str
    score: float
    text: str


class SearchResponse(BaseModel):
    results: list[SearchResult]


@router.post("/v1/brands/{brand}/search", response_model=SearchResponse, summary="Search a brand's knowledge base")
async def search(brand: str, body: SearchRequest, svc: Services = Depends(get_services)) -> SearchResponse:
    hits = await run_in_threadpool(svc.store.search, brand, body.text, body.k, body.kinds, body.language)
    return SearchResponse(results=[SearchResult(id=h.id, kind=h.kind, title=h.title, language=h.language, score=h.score,
                                                text=h.text) for h in hits])


@router.get("/v1/brands/{brand}/documents", summary="List a brand's documents")
async def documents(brand: str, svc: Services = Depends(get_services)) -> dict:
    return {"documents": await run_in_threadpool(svc.store.documents, brand)}
