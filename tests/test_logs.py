"""Structured logs from a real `tactful serve`: JSON lines, request ids, no customer text at INFO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fake_llm import Step
from tests.servers import free_port
from tests.test_suggest_api import GOOD

ROOT = Path(__file__).resolve().parents[1]
SECRET = "My parcel 7731-XQ never came and my neighbour Zsofia saw the courier leave it in the rain."


@pytest.fixture(scope="module")
def served(tmp_path_factory, fake_llm):
    data = tmp_path_factory.mktemp("logs-data")
    env = {**os.environ, "TACTFUL_DATA_DIR": str(data), "TACTFUL_LLM_BASE_URL": f"{fake_llm.url}/v1",
           "TACTFUL_LLM_MODEL": "fake", "TACTFUL_AUTH": "open", "TACTFUL_LOG_FORMAT": "json", "TACTFUL_LOG_LEVEL": "INFO"}
    tactful = [sys.executable, "-m", "api.cli"]
    subprocess.run([*tactful, "ingest", str(ROOT / "knowledge/brands/acme"), "--brand", "acme"], env=env, cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    port = free_port()
    log = data / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([*tactful, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", log
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def records(log: Path, predicate, timeout: float = 10) -> list[dict]:
    """Every stderr line must be a JSON object; the ones matching `predicate` (waits for them to be written)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        parsed = [json.loads(line) for line in lines]
        found = [r for r in parsed if predicate(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_every_log_line_is_json_with_the_request_id_and_no_customer_text(served, fake_llm):
    base, log = served
    fake_llm.reset(Step(content=GOOD))
    r = httpx.post(f"{base}/v1/suggest", json={"brand": "acme", "message": SECRET, "n": 1},
                   headers={"X-Request-ID": "trace-42"}, timeout=30)
    assert r.status_code == 200, r.text
    suggestion = records(log, lambda rec: rec.get("message") == "suggestion" and rec.get("request_id") == "trace-42")
    request = records(log, lambda rec: rec.get("message") == "request" and rec.get("request_id") == "trace-42")
    assert suggestion and request, log.read_text()[-3000:]
    assert suggestion[0]["suggestion_id"] == r.json()["id"] and suggestion[0]["drafts"] == len(r.json()["drafts"])
    assert suggestion[0]["level"] == "INFO" and suggestion[0]["language"] == "en"
    assert request[0]["route"] == "/v1/suggest" and request[0]["status"] == 200 and request[0]["duration_ms"] > 0
    text = log.read_text()
    for secret in ("7731-XQ", "Zsofia", "courier leave it in the rain"):
        assert secret not in text  # the customer's words stay out of INFO logs
    assert records(log, lambda rec: "tactful ready" in rec.get("message", ""))  # startup lines are JSON too
