"""Configuration: every knob is a `TACTFUL_` environment variable (or `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TACTFUL_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Address tactful listens on.")
    auth: Literal["keys", "open"] = Field("keys", description="`keys`: every API call needs a key (`tactful keys create`), scoped to brands and roles. `open`: no keys at all, for a laptop; `make run` sets it and says so.")
    port: int = Field(8000, description="Port tactful listens on.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes (more than 1 needs TACTFUL_LLM_BASE_URL: each worker would start its own embedded model).")
    data_dir: Path = Field(Path("data"), description="Where the vector store, joined model files and caches live.")

    # LLM: any OpenAI-compatible endpoint. Unset base URL = the embedded llama.cpp server.
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL (e.g. https://api.openai.com/v1). Unset: start the embedded local model.")
    llm_api_key: str = Field("not-needed", description="API key sent to the LLM endpoint.")
    llm_model: str | None = Field(None, description="Model name sent to the endpoint. Default: the local model's alias.")
    llm_timeout: float = Field(60.0, description="Seconds one LLM request may take before it counts as failed.")
    llm_max_retries: int = Field(2, description="Retries on 429/5xx/connection errors (exponential backoff with jitter).")
    llm_max_tokens: int = Field(256, description="Upper bound on tokens per draft (the template may ask for fewer).")
    llm_temperature: float = Field(0.7, description="Sampling temperature when the prompt template sets none.")
    suggest_deadline: float = Field(45.0, gt=0, description="Seconds /v1/suggest may spend on LLM calls (drafts, regeneration, re-asks); past it, the brand's holding reply (or what passed so far).")
    holding_margin_minutes: float = Field(5.0, ge=0, description="With `received_at`: when the brand's response-time target passes within this many minutes, answer with the holding reply at once.")
    rate_limit_per_minute: int = Field(600, ge=0, description="Requests per minute per API key (per client address in open mode), in bursts up to the same number; 0 turns the limit off. Answered with RateLimit/RateLimit-Policy headers, and 429 with Retry-After past it.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted (413 past it), except knowledge uploads.")
    max_upload_bytes: int = Field(16_777_216, ge=1024, description="Largest body of a knowledge upload (POST /v1/brands/{brand}/documents).")
    log_format: Literal["json", "text"] = Field("json", description="`json`: one object per line with the request id (no customer text at INFO). `text`: for reading on a terminal.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="DEBUG also logs the customer's message of each suggestion.")
    retry_after_seconds: int = Field(15, description="Retry-After sent with a 503 when the LLM is down.")

    # The embedded model, used only when llm_base_url is unset.
    local_model: str = Field("qwen2.5-coder-0.5b-q4_0", description="Embedded model: qwen2.5-coder-0.5b-q4_0, qwen2.5-coder-0.5b (the file as shipped) or smollm2-135m.")
    local_llm_port: int = Field(8088, description="Loopback port of the embedded llama.cpp server.")
    local_llm_threads: int = Field(2, description="CPU threads for the embedded model.")
    local_llm_ctx: int = Field(2048, description="Context window of the embedded model.")
    models_dir: Path | None = Field(None, description="Where derived model files are cached: the joined GGUF of a chunked model, the dynamic-int8 embedding model. Default: data_dir/models.")
    local_llm_start_timeout: float = Field(120.0, description="Seconds to wait for the embedded model to become ready.")

    # Triage.
    triage_judge: bool = Field(False, description="Ask the LLM for a second opinion on seriousness when the cues leave it unclear (a negative message with no serious cue). One extra LLM call for those messages only; it can only make a message serious.")

    # Knowledge.
    chroma_host: str | None = Field(None, description="Chroma server host. Unset: embedded store under data_dir/chroma.")
    chroma_port: int = Field(8000, description="Chroma server port.")
    knowledge_k: int = Field(3, description="How many FAQs to retrieve per message.")
    knowledge_exact_max_chunks: int = Field(20000, description="Brands up to this many chunks are searched exactly in memory; larger ones through Chroma's ANN index.")
    knowledge_min_score: float = Field(0.35, description="Hybrid relevance score below which an FAQ is too weak to reach the prompt.")

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def model_cache(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def uses_local_llm(self) -> bool:
        return not self.llm_base_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
