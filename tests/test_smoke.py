"""Smoke test against the real embedded model (llama.cpp server started by tactful).

Runs in `make test`. The joined Qwen GGUF is cached under the repo's data/models
so only the first run pays for joining and verifying 491 MB.
"""

from __future__ import annotations

import time

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from guardrails import CheckContext, check, is_blocking
from tests.conftest import ROOT
from tests.servers import ThreadedServer, free_port

pytestmark = pytest.mark.smoke

COMPLAINT = "My order arrived broken and nobody answers my emails. This is the third time!"


def test_real_local_model_drafts_guarded_replies(data_dir, store):
    settings = Settings(data_dir=data_dir, models_dir=ROOT / "data" / "models", llm_base_url=None, auth="open",
                        local_llm_port=free_port(), llm_timeout=90, _env_file=None)
    app = create_app(settings)
    with ThreadedServer(app) as server:
        r = httpx.post(f"{server.url}/v1/suggest", timeout=300, json={
            "brand": "acme", "message": COMPLAINT, "channel": "twitter", "visibility": "public", "n": 3})
        ready = httpx.get(f"{server.url}/readyz", timeout=30).json()
        local = app.state.local_llm
        # supervision: a crashed model server is restarted and answers again
        first_pid = local.proc.pid
        local.proc.kill()
        deadline = time.monotonic() + 120
        while not (local.proc.pid != first_pid and local.is_ready()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert local.proc.pid != first_pid and local.restarts == 1
        assert httpx.get(f"{server.url}/readyz", timeout=30).json()["llm"] is True
    assert local.proc.poll() is not None, "the model server must stop with tactful"
    assert r.status_code == 200, r.text
    body = r.json()
    assert ready["llm"] is True and ready["store"] is True
    assert body["usage"]["completion_tokens"] > 0
    assert body["drafts"] or body["blocked"], "the model produced nothing"
    assert body["drafts"], f"every draft of the real model was blocked: {body['blocked']}"
    serious = CheckContext(language="en", serious=True)
    for draft in body["drafts"]:
        assert draft["text"].strip()
        assert not is_blocking(check(draft["text"], serious)), draft["text"]
    assert any(k["id"] == "faq-damaged-item" for k in body["knowledge"])
    print("\nreal draft:", body["drafts"][0]["text"], "\ntimings:", body["timings_ms"])
