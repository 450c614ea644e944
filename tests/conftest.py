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
    """A real `chroma run` server (the CLI ships in the chromadb package) on a free port: the
    scale-out path, tested with the same code as the embedded store."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.fail("the chroma CLI is missing: chromadb is a dependency, reinstall with `make install`")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"chroma run did not start on port {port}")
        time.sleep(0.2)
    yield ("127.0.0.1", port)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


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
