from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.fake_llm import FakeLLM
from tests.servers import ThreadedServer

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "knowledge" / "brands" / "acme"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def fake_llm():
    fake = FakeLLM()
    with ThreadedServer(fake.app()) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="session")
def settings(data_dir, fake_llm) -> Settings:
    return Settings(data_dir=data_dir, llm_base_url=f"{fake_llm.url}/v1", llm_model="fake", llm_timeout=2.0,
                    llm_max_retries=1, retry_after_seconds=7, _env_file=None)


@pytest.fixture(scope="session")
def store(settings):
    from knowledge.ingest import ingest
    from knowledge.store import KnowledgeStore
    from prompts.tokens import seed_tiktoken_cache

    seed_tiktoken_cache(settings.data_dir / "tiktoken")
    store = KnowledgeStore(settings)
    report = ingest(store, "acme", ACME)
    assert not report.problems, report.problems
    return store


@pytest.fixture(scope="session")
def tactful(settings, store):
    """tactful itself, under a real uvicorn on a free port, talking to the fake LLM."""
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def client(tactful, fake_llm):
    fake_llm.reset()
    with httpx.Client(base_url=tactful, timeout=30) as c:
        yield c
