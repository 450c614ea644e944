"""Shared by the benchmarks: the `uvicorn --factory` entry point and the acme ingest."""

from __future__ import annotations

from pathlib import Path

from api.app import create_app
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def create():
    """tactful configured only by the TACTFUL_* variables the benchmark sets for the child
    process; `.env` is ignored so a developer's local settings cannot change what is measured."""
    return create_app(Settings(auth="open", _env_file=None))


def ingest_acme(data_dir: Path) -> None:
    """Load the sample brand; idempotent, so reusing a data dir costs a second or two."""
    from knowledge.ingest import ingest
    from knowledge.store import KnowledgeStore
    from prompts.tokens import seed_tiktoken_cache

    seed_tiktoken_cache(data_dir / "tiktoken")
    settings = Settings(data_dir=data_dir, llm_base_url="http://127.0.0.1:9/v1", auth="open", _env_file=None)
    report = ingest(KnowledgeStore(settings), "acme", ROOT / "knowledge" / "brands" / "acme")
    if report.problems:
        raise SystemExit(f"ingest failed: {report.problems}")
