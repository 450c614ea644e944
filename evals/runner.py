"""Run eval cases through the suggest pipeline and score every response.

In-process by default: the same `api.pipeline.suggest` the server runs, on the embedded store,
with the LLM behind `evals.recorder.RecordingLLM` (so reruns are free and CI replays). Or
against a running tactful with `--url`. A run is one JSON file: every case's response and
scores, plus the aggregates per slice; `evals/report.py` renders it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from evals.cases import Case
from evals.metrics import METRICS, score
from evals.recorder import RECORDINGS_DIR, Mode, RecordingLLM, RecordingStore, ReplayMiss

SLICES = ("language", "type", "serious", "action")


class InfraError(Exception):
    """The run could not be made (no LLM, no recording, no knowledge base): exit 2, not a verdict on drafts."""


@dataclass
class RunConfig:
    prompt: str = "suggest"
    model: str | None = None
    n: int = 1
    repeat: int = 1
    llm: Mode = "auto"
    url: str | None = None
    label: str = ""
    recordings: str | None = None  # default evals/recordings
    judge_model: str | None = None  # empathy, tone and grounding by an LLM judge (evals/judge.py); off by default


@dataclass
class Run:
    config: dict
    started: str
    results: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"config": self.config, "started": self.started, "summary": summarise(self.results), "results": self.results}


def _slices(case: Case) -> dict[str, str]:
    return {"language": case.language, "type": case.labels.type, "serious": str(case.labels.serious).lower(),
            "action": case.labels.action}


def _request(case: Case, config: RunConfig) -> dict:
    return {"brand": case.brand, "message": case.message, "channel": case.channel, "visibility": case.visibility,
            "history": [t.model_dump() for t in case.history], "n": config.n, "prompt": config.prompt}


async def run(cases: list[Case], config: RunConfig, on_case: Callable[[Case], None] | None = None, settings=None) -> Run:
    result = Run(config={k: v for k, v in config.__dict__.items()}, started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    suggest_one, close = await (_remote(config) if config.url else _in_process(config, settings))
    judge_one = getattr(suggest_one, "judge", None)
    try:
        for repeat in range(config.repeat):
            for case in cases:
                started = time.perf_counter()
                resp = await suggest_one(case, repeat)
                latency = (time.perf_counter() - started) * 1000
                if judge_one is not None and "error" not in resp:  # after the latency: the judge is not the product
                    resp["judge"] = await judge_one(case, resp, repeat)
                scores = score(case, resp) if "error" not in resp else {name: None for name in METRICS}
                result.results.append({
                    "id": case.id, "repeat": repeat, "slices": _slices(case), "message": case.message,
                    "labels": case.labels.model_dump(), "response": resp, "scores": scores,
                    "latency_ms": round(latency, 1), "tokens": (resp.get("usage") or {}).get("completion_tokens", 0)})
                if on_case:
                    on_case(case)
    finally:
        await close()
    result.config["recording"] = getattr(suggest_one, "recording", None)
    if (store := getattr(suggest_one, "retrieval", None)) is not None:
        # replayed as recorded either way; a count above 0 says this machine would have ranked some FAQs otherwise
        result.config["retrieval"] = {"recording": str(store.path), "searches": store.searches,
                                      "ranked_differently_here": store.ranked_differently}
    return result


async def _in_process(config: RunConfig, settings=None):
    from api.errors import APIError
    from api.llm import LLMClient, LLMUnavailable
    from api.pipeline import Services, suggest
    from api.schemas import SuggestRequest
    from api.settings import get_settings
    from knowledge.store import KnowledgeStore

    # no deadline in an eval: a slow machine must not turn drafts into holding replies,
    # or a replay (instant) would take a different path than the recording
    settings = (settings or get_settings()).model_copy(update={"suggest_deadline": 3600.0})
    model = config.model or settings.llm_model or "local"
    local = None
    inner = None
    if config.llm != "replay":
        if settings.uses_local_llm:
            from api.local_llm import LocalLLMServer

            local = LocalLLMServer(settings.local_model, settings.data_dir, settings.local_llm_port,
                                   threads=settings.local_llm_threads, ctx=settings.local_llm_ctx,
                                   start_timeout=settings.local_llm_start_timeout, models_dir=settings.model_cache)
            await asyncio.to_thread(local.start)
            base_url = local.base_url
        else:
            base_url = settings.llm_base_url
        inner = LLMClient(base_url, settings.llm_api_key, model, timeout=settings.llm_timeout,
                          max_retries=settings.llm_max_retries)
    recordings = Path(config.recordings) if config.recordings else RECORDINGS_DIR
    llm = RecordingLLM(inner, model, mode=config.llm, directory=recordings)
    # the searches' rankings are recorded too: the prompt must not depend on this CPU's rounding (evals/recorder.py)
    store = RecordingStore(KnowledgeStore(settings), mode=config.llm, directory=recordings)
    svc = Services(settings=settings, store=store, llm=llm)

    async def suggest_one(case: Case, repeat: int) -> dict:
        llm.new_case(repeat)
        if case.brand not in store.brands():
            raise InfraError(f"brand {case.brand!r} has no knowledge base in {settings.data_dir}; run `make ingest` first")
        try:
            return (await suggest(SuggestRequest.model_validate(_request(case, config)), svc)).model_dump(mode="json")
        except ReplayMiss as exc:
            raise InfraError(str(exc)) from exc
        except LLMUnavailable as exc:
            raise InfraError(f"the LLM is unavailable: {exc}") from exc
        except APIError as exc:
            return {"error": {"status": exc.status, "code": exc.code, "message": exc.message}}

    suggest_one.recording = str(llm.path)
    suggest_one.retrieval = store
    judge_llm = None
    if config.judge_model:
        from evals.judge import Judge

        judge_inner = None if config.llm == "replay" else LLMClient(
            base_url, settings.llm_api_key, config.judge_model, timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries)
        judge_llm = RecordingLLM(judge_inner, config.judge_model, mode=config.llm, prefix="judge-",
                                 directory=Path(config.recordings) if config.recordings else RECORDINGS_DIR)
        judge = Judge(judge_llm, config.judge_model)

        async def judge_one(case: Case, resp: dict, repeat: int) -> list[dict]:
            knowledge = store.texts(case.brand, [k["id"] for k in resp.get("knowledge", [])])
            try:
                return [(await judge.verdict(case.message, d["text"], resp["triage"]["language"], knowledge, repeat)).model_dump()
                        for d in resp.get("drafts", [])]
            except ReplayMiss as exc:
                raise InfraError(str(exc)) from exc
            except LLMUnavailable as exc:
                raise InfraError(f"the judge model is unavailable: {exc}") from exc

        suggest_one.judge = judge_one

    async def close() -> None:
        await llm.close()
        if judge_llm is not None:
            await judge_llm.close()
        if local is not None:
            local.stop()

    return suggest_one, close


async def _remote(config: RunConfig):
    client = httpx.AsyncClient(base_url=config.url, timeout=120)

    async def suggest_one(case: Case, repeat: int) -> dict:
        try:
            r = await client.post("/v1/suggest", json=_request(case, config))
        except httpx.HTTPError as exc:
            raise InfraError(f"{config.url} is unreachable: {exc}") from exc
        if r.status_code >= 500:
            raise InfraError(f"{config.url} answered {r.status_code}: {r.text[:200]}")
        return r.json()

    return suggest_one, client.aclose


def summarise(results: list[dict]) -> dict:
    """Mean of every metric over the cases it applies to, overall and per slice, with latency and tokens."""
    def means(rows: list[dict]) -> dict:
        out = {}
        for name in METRICS:
            values = [r["scores"][name] for r in rows if r["scores"].get(name) is not None]
            out[name] = {"mean": round(statistics.fmean(values), 4) if values else None, "n": len(values)}
        latencies = sorted(r["latency_ms"] for r in rows)
        out["latency_ms"] = {"p50": _pct(latencies, 50), "p95": _pct(latencies, 95), "n": len(latencies)}
        out["tokens"] = {"mean": round(statistics.fmean([r["tokens"] for r in rows]), 1) if rows else None, "n": len(rows)}
        return out

    by_slice: dict[str, dict[str, dict]] = defaultdict(dict)
    for key in SLICES:
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in results:
            groups[r["slices"][key]].append(r)
        by_slice[key] = {value: means(rows) for value, rows in sorted(groups.items())}
    return {"cases": len({r["id"] for r in results}), "runs": len(results), "errors": sum("error" in r["response"] for r in results),
            "overall": means(results), "by_slice": dict(by_slice)}


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def load_run(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InfraError(f"cannot read the run {path}: {exc}") from exc
