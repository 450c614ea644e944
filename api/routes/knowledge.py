from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, authorize
from api.deps import get_services
from api.pipeline import Services
from api.errors import APIError
from api.schemas import BRAND_PATTERN, TEXT_PATTERN, ErrorResponse
from knowledge.documents import BRAND_RULE, ID_RE, MAX_DOCUMENT_CHARS, Document

Brand = Annotated[str, Path(pattern=BRAND_PATTERN, description=BRAND_RULE + ".")]
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
    next_step: str | None = None


class SearchResponse(BaseModel):
    results: list[SearchResult]


@router.post("/v1/brands/{brand}/search", response_model=SearchResponse, summary="Search a brand's knowledge base")
async def search(brand: Brand, body: SearchRequest, svc: Services = Depends(get_services),
                 caller: Principal = Depends(authorize("suggest"))) -> SearchResponse:
    caller.require_brand(brand)
    hits = await run_in_threadpool(svc.store.search, brand, body.text, body.k, body.kinds, body.language)
    return SearchResponse(results=[SearchResult(id=h.id, kind=h.kind, title=h.title, language=h.language, score=h.score,
                                                text=h.text, next_step=h.next_step) for h in hits])


@router.get("/v1/brands/{brand}/documents", summary="List a brand's documents")
async def documents(brand: Brand, svc: Services = Depends(get_services), caller: Principal = Depends(authorize("suggest"))) -> dict:
    caller.require_brand(brand)
    return {"documents": await run_in_threadpool(svc.store.documents, brand)}


class DocumentIn(BaseModel):
    """A voice guide or an FAQ. An FAQ may be given as question + answer, like the FAQ files."""
    # the schema says what _to_document checks: a title (or question) and a text (or answer), not blank
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        {"anyOf": [{"required": ["title"]}, {"required": ["question"]}]},
        {"anyOf": [{"required": ["text"]}, {"required": ["answer"]}]}]})
    id: str = Field(pattern=ID_RE.pattern, examples=["faq-gift-cards"])
    kind: Literal["faq", "voice"] = "faq"
    title: str | None = Field(None, max_length=500, pattern=TEXT_PATTERN)
    text: str | None = Field(None, max_length=MAX_DOCUMENT_CHARS, pattern=TEXT_PATTERN)
    question: str | None = Field(None, max_length=500, pattern=TEXT_PATTERN, description="FAQ question (instead of title).")
    answer: str | None = Field(None, max_length=MAX_DOCUMENT_CHARS, pattern=TEXT_PATTERN, description="FAQ answer (instead of text).")
    language: str = Field("en", min_length=2, max_length=8)
    url: str | None = Field(None, max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    next_step: str | None = Field(None, max_length=500, pattern=TEXT_PATTERN, description=(
        "FAQs only: what we do for a customer with this problem, the sentence a direct-message draft ends with."))


class DocumentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentIn] = Field(min_length=1, max_length=100)


class DocumentsWritten(BaseModel):
    brand: str
    added: list[str]
    updated: list[str]
    unchanged: list[str]


def _to_document(i: int, d: DocumentIn) -> Document:
    title, text = d.title or d.question, d.text or d.answer
    for name, value in (("title" if d.kind == "voice" or d.title else "question", title),
                        ("text" if d.kind == "voice" or d.text else "answer", text)):
        if not (value or "").strip():
            raise APIError(422, "invalid_document", f"documents[{i}] ({d.id}) has no {name}; "
                           "an FAQ needs question and answer (or title and text)", f"documents.{i}.{name}")
    try:
        return Document(id=d.id, kind=d.kind, title=title.strip(), text=text.strip(), language=d.language, source="api",
                        url=d.url, tags=d.tags, next_step=(d.next_step or "").strip() or None)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(map(str, err["loc"]))
        raise APIError(422, "invalid_document", f"documents[{i}].{loc}: {err['msg'].removeprefix('Value error, ')}",
                       f"documents.{i}.{loc}") from exc


@router.post("/v1/brands/{brand}/documents", response_model=DocumentsWritten,
             summary="Add or update documents (a new brand is created by its first document)")
async def write_documents(brand: Brand, body: DocumentsIn, svc: Services = Depends(get_services),
                          caller: Principal = Depends(authorize("knowledge:write"))) -> DocumentsWritten:
    caller.require_brand(brand)
    ids = [d.id for d in body.documents]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise APIError(422, "duplicate_id", f"document id {dup!r} appears twice in this request", "documents")
    # Every document is validated before any is written: a bad one in the batch writes nothing.
    docs = [_to_document(i, d) for i, d in enumerate(body.documents)]
    written = DocumentsWritten(brand=brand, added=[], updated=[], unchanged=[])
    # each document is all in or all out (KnowledgeStore.upsert_many)
    for doc, outcome in zip(docs, await run_in_threadpool(svc.store.upsert_many, brand, docs)):
        getattr(written, outcome).append(doc.id)
    return written


@router.delete("/v1/brands/{brand}/documents/{doc_id}", status_code=204, response_class=Response,
               summary="Remove one document and all its chunks")
async def delete_document(brand: Brand, doc_id: str, svc: Services = Depends(get_services),
                          caller: Principal = Depends(authorize("knowledge:write"))) -> Response:
    caller.require_brand(brand)
    if not await run_in_threadpool(svc.store.delete, brand, doc_id):
        raise APIError(404, "document_not_found", f"brand {brand!r} has no document {doc_id!r}", "doc_id")
    return Response(status_code=204)
