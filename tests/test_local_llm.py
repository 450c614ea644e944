"""The embedded-model manager's failure modes, without starting a model."""

from __future__ import annotations

import hashlib
import socket

import pytest

from api import local_llm
from api.local_llm import LocalLLMError, LocalLLMServer, LocalModel, resolve_model


def test_unknown_model_name_lists_the_choices(tmp_path):
    with pytest.raises(LocalLLMError, match="qwen2.5-coder-0.5b, qwen2.5-coder-0.5b-q4_0, smollm2-135m"):
        resolve_model("gpt-5", tmp_path)


def test_missing_model_package_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(local_llm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LocalLLMError, match="not installed; run `make install`"):
        resolve_model("smollm2-135m", tmp_path)


def test_port_taken_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(local_llm, "resolve_model", lambda name, data_dir: tmp_path / "m.gguf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = LocalLLMServer("smollm2-135m", tmp_path, port)
        with pytest.raises(LocalLLMError, match=f"port {port} .* already taken.*TACTFUL_LOCAL_LLM_PORT"):
            server.start()
    assert server.proc is None


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free():
    """Restarting tactful right after stopping it must not report the model's port as taken."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    assert not local_llm.port_is_free("127.0.0.1", port)  # listening: taken
    accepted.close()  # the server side closes first, so its end of the connection sits in TIME_WAIT
    listener.close()
    client.close()
    assert local_llm.port_is_free("127.0.0.1", port)


def _chunked(tmp_path, monkeypatch, payload: bytes, sha: str) -> LocalModel:
    dirs = {}
    for i, piece in enumerate((payload[:10], payload[10:]), 1):
        d = tmp_path / f"pkg{i}"
        (d / "data").mkdir(parents=True)
        (d / "data" / f"part0{i}.bin").write_bytes(piece)
        dirs[f"pkg{i}"] = d
    monkeypatch.setattr(local_llm, "_package_dir", lambda module: dirs[module])
    return LocalModel(name="t", description="", packages=("pkg1", "pkg2"), filename="t.gguf", architecture="x",
                      sha256=sha, size=len(payload))


def test_joined_chunks_are_verified(tmp_path, monkeypatch):
    payload = b"GGUF" + bytes(range(40))
    model = _chunked(tmp_path, monkeypatch, payload, hashlib.sha256(payload).hexdigest())
    target = tmp_path / "out" / "t.gguf"
    local_llm._join_chunks(model, target)
    assert target.read_bytes() == payload


def test_corrupt_chunks_leave_no_model_behind(tmp_path, monkeypatch):
    model = _chunked(tmp_path, monkeypatch, b"GGUF" + bytes(40), "0" * 64)
    target = tmp_path / "out" / "t.gguf"
    with pytest.raises(LocalLLMError, match="does not match its pinned sha256"):
        local_llm._join_chunks(model, target)
    assert not target.exists() and not target.with_suffix(".partial").exists()


def _derived(tmp_path, monkeypatch, quantize_exit: int = 0) -> tuple[LocalModel, list]:
    """A chunked source model and a model re-quantized from it, with llama.cpp's quantizer and the
    GGUF reader replaced by stand-ins that count their calls."""
    payload = b"GGUF" + bytes(range(40))
    source = _chunked(tmp_path, monkeypatch, payload, hashlib.sha256(payload).hexdigest())
    derived = LocalModel(name="t-q4_0", description="", packages=source.packages, filename="t-q4_0.gguf",
                         architecture="x", size=30, derived_from="t", file_type=2)
    monkeypatch.setitem(local_llm.MODELS, "t", source)
    monkeypatch.setitem(local_llm.MODELS, "t-q4_0", derived)
    calls = []

    def quantize(cmd, **kw):
        calls.append("quantize")
        if quantize_exit == 0:
            local_llm.Path(cmd[4]).write_bytes(b"GGUF" + bytes(26))
        return local_llm.subprocess.CompletedProcess(cmd, quantize_exit)

    monkeypatch.setattr(local_llm.subprocess, "run", quantize)
    monkeypatch.setattr(local_llm, "gguf_metadata", lambda path: calls.append("read") or ("x", 2))
    return derived, calls


def test_a_requantized_model_is_built_once_then_trusted_from_its_marker(tmp_path, monkeypatch):
    _, calls = _derived(tmp_path, monkeypatch)
    models = tmp_path / "models"
    path = resolve_model("t-q4_0", models)
    assert path == models / "t-q4_0.gguf" and path.stat().st_size == 30
    assert calls == ["read", "quantize", "read"]  # the source's join checked, then the derived file
    assert resolve_model("t-q4_0", models) == path and calls == ["read", "quantize", "read"]  # no 8 s re-read
    path.write_bytes(b"GGUF")  # truncated: the marker no longer vouches for it
    resolve_model("t-q4_0", models)
    assert calls[3:] == ["quantize", "read"] and path.stat().st_size == 30


def test_a_failed_requantize_leaves_no_model_and_names_the_fallback(tmp_path, monkeypatch):
    _, calls = _derived(tmp_path, monkeypatch, quantize_exit=1)
    models = tmp_path / "models"
    with pytest.raises(LocalLLMError, match="TACTFUL_LOCAL_MODEL=t to use the original"):
        resolve_model("t-q4_0", models)
    assert not (models / "t-q4_0.gguf").exists() and not (models / "t-q4_0.partial").exists()
    assert not (models / "t-q4_0.verified").exists()


def test_shipped_smollm2_is_a_llama_gguf(tmp_path):
    path = resolve_model("smollm2-135m", tmp_path)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and local_llm.gguf_metadata(path)[0] == "llama"


def test_server_runs_without_logits_all_and_with_the_prefix_cache(tmp_path, monkeypatch):
    """The speed settings reach llama_cpp.server and its own parser reads them as meant."""
    import argparse
    import subprocess

    pytest.importorskip("llama_cpp.server")
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.settings import ModelSettings, Settings

    seen = {}
    monkeypatch.setattr(subprocess, "Popen", lambda cmd, **kw: seen.setdefault("cmd", cmd))
    server = LocalLLMServer("smollm2-135m", tmp_path, 18099)
    server.model_path = tmp_path / "model.gguf"
    server._spawn()
    server._log_file.close()
    parser = argparse.ArgumentParser()
    add_args_from_model(parser, Settings)
    settings = parse_model_from_args(ModelSettings, parser.parse_args(seen["cmd"][3:]))
    assert settings.logits_all is False
    assert settings.cache is True and settings.cache_type == "ram"
    assert settings.n_batch == settings.n_ubatch == 64
    assert settings.n_threads == 2


def test_the_server_does_not_outlive_a_killed_tactful(tmp_path):
    """SIGKILL (or an unhandled SIGTERM) skips stop(): the child must notice and end by itself, or it
    keeps the port and the next start fails with "port taken"."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("llama_cpp.server")
    from tests.servers import free_port

    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from api.local_llm import LocalLLMServer\n"
         f"s = LocalLLMServer('smollm2-135m', Path({str(tmp_path)!r}), {port}); s.start()\n"
         "print(s.proc.pid, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=local_llm.Path(__file__).resolve().parents[1])
    try:
        child = int(parent.stdout.readline())
        assert LocalLLMServer("smollm2-135m", tmp_path, port).is_ready()
        assert _listening(port)  # the check below can see a listener
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:  # gone, or a zombie its new parent has not reaped yet
            if open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the embedded LLM kept running after tactful was killed")
    # nothing listens there any more. Not port_is_free(): binding also fails while some other process's outbound
    # connection happens to use this (ephemeral-range) port, which failed this test once in a full run
    assert not _listening(port), f"something still listens on {port} after the embedded LLM ended"


def _listening(port: int) -> bool:
    """A server accepts connections on 127.0.0.1:port. A connect to a port of the ephemeral range that
    nothing listens on can succeed anyway: the kernel may pick that same port as the source and join the
    socket to itself (TCP simultaneous open), which once failed the test above. That is not a listener."""
    import socket

    for _ in range(3):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.getsockname() != sock.getpeername():
                    return True
        except ConnectionRefusedError:
            return False
    return False


def test_the_embedded_model_is_ready_while_busy_and_not_once_dead(tmp_path):
    """/readyz asks the supervisor, not the server: llama.cpp serves one request at a time, and a ping queued
    behind a generation the pipeline gave up on called a busy model down (the smoke test met it)."""
    import subprocess
    import sys

    from tests.servers import free_port

    server = LocalLLMServer("qwen2.5-coder-0.5b-q4_0", tmp_path, port=free_port())
    server.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # up, answering nothing
    try:
        assert not server.serving  # started, has not answered yet
        server._answered = True  # what wait_ready() records when /v1/models first answers
        assert server.serving and not server.is_ready()  # busy (or here: silent), still serving
        server.proc.kill()
        server.proc.wait()
        assert not server.serving
    finally:
        server.proc.kill()
