"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, logs
from api.llm import LLMClient
from api.local_llm import LocalLLMServer
from api.pipeline import Services
from api.auth import KeyStore
from api.feedback import FeedbackStore
from api.middleware import Gatekeeper, IdempotencyStore
from api.routes import feedback, guardrails, health, knowledge, prompts, suggest
from api.settings import Settings, get_settings
from knowledge.store import KnowledgeStore
from prompts.tokens import seed_tiktoken_cache

log = logging.getLogger("tactful")


def _warm_up(services: Services) -> None:
    """Load the embedding model, language detector, rules and templates now, so the first
    customer request does not pay ~0.8 s for it."""
    from guardrails import CheckContext, check
    from guardrails.triage import analyze
    from prompts.templates import list_templates

    from prompts.tokens import count_tokens

    services.store.embed(["warm up"])
    count_tokens("warm up")
    for brand in services.store.brands():  # build each brand's in-memory index now
        services.store.search(brand, "warm up", k=1)
    analyze("warm up")
    check("warm up", CheckContext(serious=True, message="warm up"))
    list_templates()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        seed_tiktoken_cache(settings.data_dir / "tiktoken")
        local = None
        if settings.uses_local_llm:
            local = LocalLLMServer(settings.local_model, settings.data_dir, settings.local_llm_port,
                                   threads=settings.local_llm_threads, ctx=settings.local_llm_ctx,
                                   start_timeout=settings.local_llm_start_timeout, models_dir=settings.model_cache)
            local.start()  # raises LocalLLMError with what to fix; uvicorn prints it and exits
            base_url, model = local.base_url, settings.llm_model or LocalLLMServer.ALIAS
        else:
            base_url, model = settings.llm_base_url, settings.llm_model or "gpt-4o-mini"
        llm = LLMClient(base_url, settings.llm_api_key, model, timeout=settings.llm_timeout,
                        max_retries=settings.llm_max_retries)
        services = Services(settings=settings, store=KnowledgeStore(settings), llm=llm)
        _warm_up(services)
        app.state.services = services
        app.state.feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
        app.state.keys = KeyStore(settings.data_dir / "keys.sqlite3")
        if settings.auth == "open":
            log.warning("open mode (TACTFUL_AUTH=open): no API key is required; set TACTFUL_AUTH=keys before exposing tactful")
        app.state.local_llm = local
        # What start-up loaded (models, rules, the brands' mirrors: ~370k objects) lives as long as the
        # process. Left in the collector's reach, every full collection walked all of it (~240 ms,
        # measured; one landed in a 60-s load run, a pause that every request in flight waited out).
        # Frozen, a full collection walks only what requests allocated since (~0.4 ms).
        gc.collect()
        gc.freeze()
        log.info("tactful ready: LLM %s at %s", model, base_url)
        try:
            yield
        finally:
            await llm.close()
            if local:
                local.stop()

    app = FastAPI(title="tactful", version="0.1.0", lifespan=lifespan,
                  description="Guarded, grounded reply drafts for customer-support and social-media teams.")
    app.state.settings = settings
    errors.install(app)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.add_middleware(Gatekeeper, rate_per_minute=settings.rate_limit_per_minute,
                       idempotency=IdempotencyStore(settings.data_dir / "idempotency.sqlite3"),
                       max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes)
    for module in (suggest, guardrails, knowledge, prompts, feedback):
        app.include_router(module.router, responses=errors.GATE_RESPONSES)
    app.include_router(health.router)  # open to probes and scrapers: no key, no limit
    return app
