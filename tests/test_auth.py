"""API keys scoped to brands and roles, through real HTTP on an app in `keys` mode, and the keys CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT
from tests.fake_llm import Step
from tests.test_suggest_api import COMPLAINT, GOOD


@pytest.fixture(scope="module")
def locked(settings, store):
    """tactful in `keys` mode with two brands' keys, an admin key and a writer."""
    from api.app import create_app
    from api.auth import KeyStore
    from tests.servers import ThreadedServer

    keyed = settings.model_copy(update={"auth": "keys"})
    keys = KeyStore(keyed.data_dir / "keys.sqlite3")
    made = {"acme": keys.create(["acme"], ["suggest"])[0], "plain": keys.create(["plain"], ["suggest"])[0],
            "writer": keys.create(["acme"], ["knowledge:write"])[0], "admin": keys.create(["*"], ["admin"])[0]}
    with ThreadedServer(create_app(keyed)) as server:
        yield server.url, made


def _call(url: str, key: str | None, method: str, path: str, header: str = "bearer", **kw) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kw)


# every route that touches a brand, with the brand in the path or the body
ROUTES = [
    ("POST", "/v1/suggest", {"json": {"brand": "{b}", "message": COMPLAINT, "n": 1}}),
    ("POST", "/v1/brands/{b}/search", {"json": {"text": "refund"}}),
    ("GET", "/v1/brands/{b}/documents", {}),
    ("POST", "/v1/guardrails/check", {"json": {"text": "We're sorry.", "brand": "{b}"}}),
]


def _fill(spec: dict, brand: str) -> dict:
    import json

    return json.loads(json.dumps(spec).replace("{b}", brand))


@pytest.mark.parametrize("method,path,spec", ROUTES)
def test_a_key_for_one_brand_is_refused_on_another(locked, fake_llm, method, path, spec):
    url, keys = locked
    fake_llm.reset(Step(content=GOOD))
    mine = _call(url, keys["acme"], method, path.replace("{b}", "acme"), **_fill(spec, "acme"))
    assert mine.status_code == 200, mine.text
    theirs = _call(url, keys["acme"], method, path.replace("{b}", "plain"), **_fill(spec, "plain"))
    assert theirs.status_code == 403 and theirs.json()["error"]["code"] == "forbidden_brand"
    assert _call(url, keys["admin"], method, path.replace("{b}", "plain"), header="x-api-key", **_fill(spec, "plain")).status_code == 200


def test_no_key_a_wrong_key_and_a_missing_role(locked):
    url, keys = locked
    none = _call(url, None, "POST", "/v1/analyze", json={"message": "hi"})
    assert none.status_code == 401 and none.headers["WWW-Authenticate"] == "Bearer" and "X-API-Key" in none.json()["error"]["message"]
    assert _call(url, "tk_wrong", "POST", "/v1/analyze", json={"message": "hi"}).status_code == 401
    doc = {"documents": [{"id": "faq-auth-test", "kind": "faq", "title": "Auth", "text": "A test answer.", "language": "en"}]}
    reader = _call(url, keys["acme"], "POST", "/v1/brands/acme/documents", json=doc)
    assert reader.status_code == 403 and reader.json()["error"]["code"] == "forbidden_role"
    assert _call(url, keys["writer"], "POST", "/v1/brands/plain/documents", json=doc).status_code == 403
    written = _call(url, keys["writer"], "POST", "/v1/brands/acme/documents", json=doc)
    assert written.status_code in (200, 201), written.text
    assert _call(url, keys["writer"], "DELETE", "/v1/brands/acme/documents/faq-auth-test").status_code == 204
    assert httpx.get(url + "/healthz").status_code == 200  # health stays open for load balancers


def test_feedback_on_another_brands_suggestion_is_refused(locked, fake_llm):
    import time

    url, keys = locked
    fake_llm.reset(Step(content=GOOD))
    sid = _call(url, keys["plain"], "POST", "/v1/suggest", json={"brand": "plain", "message": COMPLAINT, "n": 1}).json()["id"]
    for _ in range(50):
        r = _call(url, keys["acme"], "POST", "/v1/feedback", json={"suggestion_id": sid, "draft_index": 0, "outcome": "accepted"})
        if r.status_code != 404:
            break
        time.sleep(0.05)
    assert r.status_code == 403
    ok = _call(url, keys["plain"], "POST", "/v1/feedback", json={"suggestion_id": sid, "draft_index": 0, "outcome": "accepted"})
    assert ok.status_code == 201


def test_the_key_check_and_the_services_lookup_run_on_the_event_loop(locked, fake_llm, monkeypatch):
    """FastAPI runs a plain `def` dependency in its thread pool: a hand-off to a worker thread and back
    on every request, for a dictionary read or an indexed SQLite one (api/deps.py). Only real work goes there."""
    import anyio.to_thread

    sent, real = [], anyio.to_thread.run_sync

    async def recording(func, *args, **kwargs):
        sent.append(getattr(getattr(func, "func", func), "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording)
    url, keys = locked
    fake_llm.reset(Step(content=GOOD))
    assert _call(url, keys["acme"], "POST", "/v1/suggest", json={"brand": "acme", "message": COMPLAINT, "n": 1}).status_code == 200
    assert _call(url, None, "GET", "/healthz").status_code == 200
    assert any("embed_texts" in name for name in sent), sent  # the query embedding does go to a thread
    # real work may (the embedding, a brand mirror's refresh, the stored copy written after the response);
    # the dependencies may not, nor /healthz (a `def` route costs two: the route, then its response's validation)
    hops = {"get_services", "authorize.<locals>.dependency", "healthz", "_run_sync_endpoint", "ModelField.validate"}
    assert not hops & set(sent), sent


def test_keys_cli_creates_lists_and_revokes(locked, settings):
    url, _ = locked
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACTFUL_DATA_DIR": str(settings.data_dir)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "api.cli", "keys", *args], env=env, capture_output=True, text=True, timeout=60)

    made = cli("create", "--brand", "acme", "--role", "suggest", "--name", "helpdesk")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = made.stderr.split()[1]
    assert key.startswith("tk_") and key not in cli("list").stdout and key_id in cli("list").stdout
    assert key not in (settings.data_dir / "keys.sqlite3").read_bytes().decode("latin-1")  # stored hashed
    assert _call(url, key, "POST", "/v1/analyze", json={"message": "hi"}).status_code == 200
    assert cli("revoke", key_id).returncode == 0
    assert _call(url, key, "POST", "/v1/analyze", json={"message": "hi"}).status_code == 401
    assert cli("revoke", key_id).returncode == 1
    assert cli("create", "--brand", "acme", "--role", "root").returncode == 2
