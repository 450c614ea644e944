"""A tactful server killed with SIGKILL in the middle of a big ingest loses no acknowledged document."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import ROOT

DOCS_PER_REQUEST = 25  # each FAQ is two chunks (its question, its answer): 10k chunks = 200 requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir, port) -> subprocess.Popen:
    env = {**os.environ, "TACTFUL_DATA_DIR": str(data_dir), "TACTFUL_LLM_BASE_URL": "http://127.0.0.1:9/v1", "TACTFUL_AUTH": "open",
           "TACTFUL_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("tactful did not start")


def _faq(i: int) -> dict:
    return {"id": f"faq-{i:05d}", "question": f"Question number {i}: what about widget model W{i:05d}?",
            "answer": f"Widget W{i:05d} ships in {i % 7 + 1} days and comes with a {i % 3 + 1} year warranty."}


@pytest.mark.timeout(600)
def test_sigkill_during_a_10k_chunk_ingest_keeps_every_acknowledged_document(tmp_path):
    port = _free_port()
    proc = _start(tmp_path, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for start in range(0, 5000, DOCS_PER_REQUEST):
                if stop.is_set():
                    return
                batch = [_faq(i) for i in range(start, start + DOCS_PER_REQUEST)]
                try:
                    r = client.post("/v1/brands/bulk/documents", json={"documents": batch})
                except httpx.HTTPError:
                    return  # the server died mid-request: this batch was never acknowledged
                if r.status_code == 200:
                    acknowledged.extend(r.json()["added"])

    loader = threading.Thread(target=load)
    loader.start()
    while len(acknowledged) < 300 and loader.is_alive():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-ingest: no shutdown, no flush
    proc.wait()
    stop.set()
    loader.join()
    assert 300 <= len(acknowledged) < 5000, "the kill should land in the middle of the ingest"

    proc = _start(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            listed = {d["id"] for d in client.get("/v1/brands/bulk/documents").json()["documents"]}
            assert set(acknowledged) <= listed
            for doc_id in [acknowledged[0], acknowledged[len(acknowledged) // 2], acknowledged[-1]]:
                i = int(doc_id.split("-")[1])
                hits = client.post("/v1/brands/bulk/search", json={"text": f"widget model W{i:05d}", "k": 1}).json()
                assert hits["results"][0]["id"] == doc_id
            # every stored document is whole: its question and its answer chunk
            sample = client.post("/v1/brands/bulk/search", json={"text": "widget warranty", "k": 20}).json()["results"]
            assert all("warranty" in h["text"] for h in sample)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
