"""Does retrieval find the FAQ that answers a customer's message? hit@1, hit@3 and MRR per language.

Queries are in `evals/retrieval/queries.jsonl` (customer messages in en/id/ro/zh, each with the FAQ
ids that answer it; `relevant: []` means nothing in acme's knowledge answers it, and the right
outcome is no FAQ above the relevance cut-off). Retrieval runs exactly as the suggest pipeline
runs it: FAQs only, the configured k and cut-off, the message's language.

    python -m evals.retrieval_eval [--errors] [--json]
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from api.settings import Settings
from guardrails.triage import detect_language
from knowledge.glossary import expand_query

QUERIES = Path(__file__).parent / "retrieval" / "queries.jsonl"
ACME = Path(__file__).resolve().parents[1] / "knowledge" / "brands" / "acme"


def load_queries(path: Path = QUERIES) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(store, queries: list[dict], k: int = 3, min_score: float | None = None) -> dict:
    """Per language: hit@1 and hit@3 and MRR over answerable queries; `abstain` = share of
    unanswerable ones for which nothing passed the cut-off."""
    per: dict[str, dict] = defaultdict(lambda: {"n": 0, "hit1": 0, "hit3": 0, "rr": 0.0, "none_n": 0, "abstained": 0, "misses": []})
    for q in queries:
        lang = q["lang"]
        query = expand_query(q["query"], detect_language(q["query"]))  # as the pipeline does
        hits = store.search("acme", query, k=k, kinds=["faq"], min_score=min_score)
        ids = [h.id for h in hits]
        for key in (lang, "all"):
            row = per[key]
            if not q["relevant"]:
                row["none_n"] += 1
                row["abstained"] += not ids
                continue
            rank = next((i + 1 for i, doc_id in enumerate(ids) if doc_id in q["relevant"]), None)
            row["n"] += 1
            row["hit1"] += rank == 1
            row["hit3"] += rank is not None and rank <= 3
            row["rr"] += 1 / rank if rank else 0.0
            if not rank and key != "all":
                row["misses"].append({"id": q["id"], "query": q["query"], "relevant": q["relevant"], "got": ids})
    out = {}
    for key, row in per.items():
        n = max(row["n"], 1)
        out[key] = {"queries": row["n"], "hit@1": round(row["hit1"] / n, 3), "hit@3": round(row["hit3"] / n, 3),
                    "mrr": round(row["rr"] / n, 3), "unanswerable": row["none_n"],
                    "abstained": round(row["abstained"] / max(row["none_n"], 1), 3), "misses": row["misses"]}
    return out


def acme_store(data_dir: Path):
    from knowledge.ingest import ingest
    from knowledge.store import KnowledgeStore
    from prompts.tokens import seed_tiktoken_cache

    seed_tiktoken_cache(data_dir / "tiktoken")
    store = KnowledgeStore(Settings(data_dir=data_dir, llm_base_url="http://127.0.0.1:9/v1", _env_file=None))
    report = ingest(store, "acme", ACME)
    if report.problems:
        raise SystemExit(f"acme does not ingest cleanly: {[str(p) for p in report.problems]}")
    return store


def main() -> None:
    settings = Settings(_env_file=None)
    with tempfile.TemporaryDirectory(prefix="tactful-retrieval-") as tmp:
        result = evaluate(acme_store(Path(tmp)), load_queries(), k=settings.knowledge_k, min_score=settings.knowledge_min_score)
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    print(f"{'lang':5} {'queries':>7} {'hit@1':>6} {'hit@3':>6} {'MRR':>6} {'no-answer abstained':>20}")
    for lang in ("en", "id", "ro", "zh", "all"):
        r = result.get(lang)
        if r:
            print(f"{lang:5} {r['queries']:>7} {r['hit@1']:>6.3f} {r['hit@3']:>6.3f} {r['mrr']:>6.3f} "
                  f"{r['abstained']:>12.3f} of {r['unanswerable']}")
    if "--errors" in sys.argv:
        for lang in ("en", "id", "ro", "zh"):
            for m in result.get(lang, {}).get("misses", []):
                print(f"{m['id']}: {m['query'][:80]!r} want {m['relevant']} got {m['got']}")


if __name__ == "__main__":
    main()
