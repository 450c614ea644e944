"""Which embedded model should be tactful's default?

Runs the same customer messages through the real /v1/suggest pipeline (triage,
retrieval, prompt, guardrails, one regenerate round) once per embedded model in
api.local_llm.MODELS, each started by tactful's own lifespan, and compares what
a support agent would get: drafts that pass the guardrails, drafts blocked (and
by which rule families), draft length against the prompt's 60-word limit,
latency and generation speed. Quality decides; latency only has to stay inside
the 60 s LLM budget.

Passing the guardrails is a weak quality bar for tiny models, so passed drafts
are also screened here (benchmark only, not tactful's rules) for the failures
seen in practice: echoing the customer, template placeholders or prompt
scaffolding, the word "just", and answering in the wrong language.

    .venv/bin/python benchmarks/local_models.py [--samples 2] [--messages 8]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from api.app import create_app  # noqa: E402
from api.local_llm import MODELS  # noqa: E402
from api.settings import Settings  # noqa: E402
from benchmarks._support import ingest_acme  # noqa: E402
from tests.servers import ThreadedServer, free_port  # noqa: E402

# Serious complaints first: they are where a bad draft hurts most and the guardrails are strictest.
MESSAGES = [
    ("broken-order", "My order arrived broken and nobody answers my emails. This is the third time!"),
    ("double-charge", "You charged my card twice for the same order and my rent is due tomorrow. Fix this now."),
    ("hacked-account", "Someone hacked my account, changed my password and placed orders I never made. Help!"),
    ("late-delivery", "My parcel was supposed to arrive last Monday and it still isn't here. Where is it?"),
    ("safety", "The phone charger I bought from you started smoking and melted next to my kid's bed. This is dangerous."),
    ("praise", "My new kettle arrived a day early and your support team was lovely. Thank you!"),
    ("question", "Do you ship to Canada, and how long does delivery take?"),
    ("indonesian", "Pesanan saya belum sampai padahal sudah seminggu, tolong dibantu"),
]
MAX_WORDS = 60  # the suggest prompt's own limit (prompts/suggest.yaml)
SCAFFOLD = re.compile(r"\[[^\]\n]{2,40}\]|^#+ |```|\"\"\"|^(Subject|To|From|Sender):", re.M)
RESULTS = ROOT / "benchmarks" / "results" / "local_models.json"
console = Console(width=None if sys.stdout.isatty() else 120)  # logs and pipes: no 80-column wrapping


def run_model(name: str, data_dir: Path, args) -> dict:
    """Start tactful with the embedded `name`, send every message, collect raw results."""
    settings = Settings(data_dir=data_dir, local_model=name, local_llm_port=free_port(), llm_base_url=None, auth="open",
                        _env_file=None)
    out = {"model": name, "description": MODELS[name].description, "responses": [], "errors": [], "skipped": []}
    t0 = time.perf_counter()
    try:
        server = ThreadedServer(create_app(settings)).__enter__()
    except Exception as exc:  # the lifespan's LocalLLMError is logged by uvicorn above
        out["errors"].append({"stage": "startup", "error": str(exc)})
        return out
    out["startup_s"] = round(time.perf_counter() - t0, 1)
    try:
        with httpx.Client(base_url=server.url, timeout=args.timeout) as client:
            deadline = time.monotonic() + args.budget
            for key, message in MESSAGES[: args.messages]:
                if time.monotonic() > deadline:  # keep the run bounded; say what was left out
                    out["skipped"].append(key)
                    continue
                body = {"brand": "acme", "message": message, "channel": "twitter", "visibility": "public",
                        "n": args.samples}
                t = time.perf_counter()
                try:
                    r = client.post("/v1/suggest", json=body)
                except httpx.HTTPError as exc:
                    out["errors"].append({"message": key, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                latency = time.perf_counter() - t
                if r.status_code != 200:
                    out["errors"].append({"message": key, "error": f"HTTP {r.status_code}: {r.text[:300]}"})
                    continue
                out["responses"].append({"message": key, "latency_s": round(latency, 2), **r.json()})
                console.print(f"  {name} {key}: {latency:.1f}s, {len(r.json()['drafts'])} passed, "
                              f"{len(r.json()['blocked'])} blocked")
    finally:
        server.__exit__(None, None, None)
    return out


def suspect(draft: str, message: str, language: str) -> list[str]:
    """Why a draft that passed the guardrails still is not one an agent could send."""
    from guardrails.triage import detect_language

    def trigrams(text: str) -> set:
        w = re.findall(r"\w+", text.lower())
        return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}

    reasons = []
    said = trigrams(message)  # word trigrams survive the small rewordings tiny models make when parroting
    if said and len(said & trigrams(draft)) / len(said) >= 0.4:
        reasons.append("echoes customer")
    if SCAFFOLD.search(draft):
        reasons.append("placeholder/scaffolding")
    if re.search(r"\bjust\b", draft, re.I):
        reasons.append("says 'just'")
    if detect_language(draft, default=language) != language:
        reasons.append("wrong language")
    return reasons


def summarise(run: dict) -> dict:
    texts = dict(MESSAGES)
    passed = [(r["message"], d["text"]) for r in run["responses"] for d in r["drafts"]]
    flags = {(k, t): suspect(t, texts[k], r["triage"]["language"])
             for r in run["responses"] for k, t in [(r["message"], d["text"]) for d in r["drafts"]]}
    clean = [(k, t) for k, t in passed if not flags[(k, t)]]
    blocked = [(r["message"], b) for r in run["responses"] for b in r["blocked"]]
    families = Counter(f for _, b in blocked for f in {x["family"] for x in b["findings"] if x["severity"] == "block"})
    words = [len(text.split()) for _, text in passed]
    gen_ms = sum(r["timings_ms"].get("generate", 0) for r in run["responses"])
    tokens = sum(r["usage"]["completion_tokens"] for r in run["responses"])
    examples, seen = [], set()
    for key, text in clean + [p for p in passed if p not in clean]:  # clean first, one per message
        if key not in seen and len(examples) < 3:
            examples.append({"message": key, "text": text})
            seen.add(key)
    total = len(passed) + len(blocked)
    return {
        "model": run["model"], "requests_ok": len(run["responses"]), "requests_failed": len(run["errors"]),
        "skipped": run["skipped"], "drafts_passed": len(passed), "drafts_blocked": len(blocked),
        "blocked_rate": round(len(blocked) / total, 3) if total else None,
        "blocked_by_family": dict(families.most_common()),
        "passed_but_suspect": len(passed) - len(clean), "drafts_clean": len(clean),
        "suspect_reasons": dict(Counter(x for v in flags.values() for x in v).most_common()),
        "suspect_drafts": [{"message": k, "text": t, "reasons": v} for (k, t), v in flags.items() if v],
        "messages_without_passing_draft": [r["message"] for r in run["responses"] if not r["drafts"]],
        "mean_words_per_passed_draft": round(statistics.fmean(words), 1) if words else None,
        "share_passed_over_60_words": round(sum(w > MAX_WORDS for w in words) / len(words), 3) if words else None,
        "mean_latency_s": round(statistics.fmean(r["latency_s"] for r in run["responses"]), 2) if run["responses"] else None,
        "max_latency_s": max((r["latency_s"] for r in run["responses"]), default=None),
        "completion_tokens_per_s": round(tokens / (gen_ms / 1000), 1) if gen_ms else None,
        "llm_calls": sum(r["usage"]["llm_calls"] for r in run["responses"]),
        "examples": examples,
    }


def _clean_share(s: dict) -> tuple[int, int]:
    """Clean passing drafts out of every draft the model wrote (passed or blocked)."""
    return s["drafts_clean"], s["drafts_passed"] + s["drafts_blocked"]


def _clearly_better(a: dict, b: dict) -> bool:
    """a's share of clean drafts beats b's beyond sampling noise (two-proportion z-test, one-sided
    80 %: with 8 messages x 2-4 samples a 95 % test tells nothing apart, and one draft more or less
    must not pick the default)."""
    (ca, na), (cb, nb) = _clean_share(a), _clean_share(b)
    if not na or not nb:
        return na > 0
    pooled = (ca + cb) / (na + nb)
    se = (pooled * (1 - pooled) * (1 / na + 1 / nb)) ** 0.5
    return se > 0 and (ca / na - cb / nb) / se > 0.84


def recommend(summaries: list[dict]) -> str:
    usable = [s for s in summaries if s["requests_ok"]]
    if not usable:
        return "no model produced any response; see errors"
    # quality decides when it differs beyond noise; among models of the same quality, the faster one
    best = max(usable, key=lambda s: (_clean_share(s)[0] / max(_clean_share(s)[1], 1), -(s["mean_latency_s"] or 0)))
    tied = [s for s in usable if s is best or not _clearly_better(best, s)]
    pick = min(tied, key=lambda s: s["mean_latency_s"] or float("inf"))
    why = ("the most clean drafts, beyond sampling noise" if len(tied) == 1 else
           f"clean drafts within sampling noise of {', '.join(s['model'] for s in tied if s is not pick)}, and faster")
    shares = ", ".join(f"{s['model']} {_clean_share(s)[0]}/{_clean_share(s)[1]} clean, {s['mean_latency_s']:.1f}s"
                       for s in usable)
    return f"default should be {pick['model']}: {why} ({shares})"


def print_table(summaries: list[dict], args) -> None:
    table = Table(title=f"Embedded models through /v1/suggest ({args.messages} messages x n={args.samples})")
    table.add_column("metric")
    for s in summaries:
        table.add_column(s["model"], justify="right")
    pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    rows = [
        ("requests ok / failed", lambda s: f"{s['requests_ok']} / {s['requests_failed']}"),
        ("drafts passed", lambda s: str(s["drafts_passed"])),
        ("drafts blocked", lambda s: str(s["drafts_blocked"])),
        ("blocked rate", lambda s: pct(s["blocked_rate"])),
        ("blocked by family", lambda s: ", ".join(f"{k} {v}" for k, v in s["blocked_by_family"].items()) or "-"),
        ("passed but suspect", lambda s: str(s["passed_but_suspect"])),
        ("  suspect reasons", lambda s: ", ".join(f"{k} {v}" for k, v in s["suspect_reasons"].items()) or "-"),
        ("clean passed drafts", lambda s: str(s["drafts_clean"])),
        ("messages with no passing draft", lambda s: str(len(s["messages_without_passing_draft"]))),
        ("mean words / passed draft", lambda s: str(s["mean_words_per_passed_draft"] or "-")),
        (f"passed drafts > {MAX_WORDS} words", lambda s: pct(s["share_passed_over_60_words"])),
        ("mean latency / request (s)", lambda s: str(s["mean_latency_s"] or "-")),
        ("max latency / request (s)", lambda s: str(s["max_latency_s"] or "-")),
        ("completion tok/s (incl. prompt eval)", lambda s: str(s["completion_tokens_per_s"] or "-")),
        ("skipped (time budget)", lambda s: ", ".join(s["skipped"]) or "-"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(s) for s in summaries))
    console.print(table)
    for s in summaries:
        for ex in s["examples"]:
            console.print(f"[bold]{s['model']}[/] / {ex['message']}: {ex['text']}", highlight=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--messages", type=int, default=len(MESSAGES), help=f"first N of the {len(MESSAGES)} messages")
    ap.add_argument("--samples", type=int, default=2, help="drafts asked for per message (n)")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data",
                    help="reused so the joined 491 MB Qwen file is built only once")
    ap.add_argument("--timeout", type=float, default=130.0, help="per-request timeout (s): 2 LLM rounds of 60 s + slack")
    ap.add_argument("--budget", type=float, default=150.0, help="seconds of requests per model before skipping the rest")
    args = ap.parse_args()

    console.print(f"ingesting acme into {args.data_dir} ...")
    ingest_acme(args.data_dir)
    runs = []
    for name in args.models:
        console.print(f"starting tactful with the embedded {name} ...")
        runs.append(run_model(name, args.data_dir, args))
        for err in runs[-1]["errors"]:
            console.print(f"[red]error[/] {name}: {err}")
    summaries = [summarise(r) for r in runs]
    print_table(summaries, args)
    line = recommend(summaries)
    console.print(f"[bold]recommendation:[/] {line}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"params": {k: str(v) for k, v in vars(args).items()}, "recommendation": line,
                                   "summaries": summaries, "runs": runs}, indent=2, ensure_ascii=False))
    console.print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
