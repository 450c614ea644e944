from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.fake_llm import FakeLLM
from tests.servers import ThreadedServer

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "knowledge" / "brands" / "acme"
# Derived models (the dynamic-int8 embedding model, ~4 s to build) are made once for the whole run, not
# once per temporary data dir; tactful processes the tests start inherit this.
os.environ.setdefault("TACTFUL_MODELS_DIR", str(ROOT / "data" / "models"))


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
    return Settings(data_dir=data_dir, llm_base_url=f"{fake_llm.url}/v1", llm_model="fake", llm_timeout=2.0, auth="open", rate_limit_per_minute=0,
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
    plain = ingest(store, "plain", ROOT / "tests" / "data" / "plain")  # no holding replies
    assert not plain.problems, plain.problems
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


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server: the scale-out path, tested with the same code as the embedded store."""
    from tests.servers import ChromaServer

    try:
        server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield ("127.0.0.1", server.port)
    server.stop()


@pytest.fixture(params=["embedded", "chroma-server"])
def fresh_store(request, tmp_path):
    """An empty knowledge store: embedded (PersistentClient) or a real Chroma server."""
    from knowledge.store import KnowledgeStore

    if request.param == "embedded":
        return KnowledgeStore(Settings(data_dir=tmp_path, _env_file=None))
    host, port = request.getfixturevalue("chroma_server")
    store = KnowledgeStore(Settings(data_dir=tmp_path, chroma_host=host, chroma_port=port, _env_file=None))
    for col in store.client.list_collections():  # a clean server for every test
        store.client.delete_collection(col if isinstance(col, str) else col.name)
    return store
