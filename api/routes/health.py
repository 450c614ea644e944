from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import get_services
from api.pipeline import Services

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict:  # async: no thread hand-off for a constant
    return {"status": "ok"}


@router.get("/readyz", summary="The LLM and the knowledge store answer")
async def readyz(request: Request, svc: Services = Depends(get_services)) -> JSONResponse:
    local = getattr(request.app.state, "local_llm", None)
    # the embedded model: its supervisor's word (LocalLLMServer.serving), not a ping that would queue
    # behind the generation it is finishing. Asked all the same when the supervisor has not yet seen it
    # answer (a restart it is still polling) or for any other endpoint
    llm_ok = (local is not None and local.serving) or await svc.llm.ping()
    store_ok = await run_in_threadpool(svc.store.ping)
    body = {"status": "ready" if llm_ok and store_ok else "not_ready", "llm": llm_ok, "store": store_ok,
            "model": svc.llm.model}
    return JSONResponse(body, status_code=200 if llm_ok and store_ok else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics() -> Response:
    from api.metrics import exposition

    body, content_type = exposition()
    return Response(body, media_type=content_type)
