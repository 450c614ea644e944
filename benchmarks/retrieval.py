"""Knowledge store speed at 1k, 10k and 100k chunks, next to a brute-force numpy baseline.

For each size: a fresh store is filled with synthetic FAQs (two chunks each: the question and the
answer) whose vectors are random unit vectors, so the store's own cost is measured rather than the
embedding model's; the model's throughput is measured separately on 1,000 real chunks. Queries
then run through `KnowledgeStore.search` exactly as the suggest pipeline calls it (FAQs only, k=3,
the query vector given), and through the physical limit on the same vectors: one numpy matrix
product and an argpartition. Peak RSS is the process's.

    python benchmarks/retrieval.py [--sizes 1000,10000,100000] [--queries 200]

Prints a table and writes benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.settings import Settings  # noqa: E402
from knowledge.documents import Document  # noqa: E402
from knowledge.embeddings import MiniLMEmbeddingFunction  # noqa: E402
from knowledge.store import KnowledgeStore  # noqa: E402

DIM = 384
WORDS = ("order parcel refund courier damaged late tracking invoice password account locked charged twice "
         "return label warranty repair app crash promo code gift card delivery address cancel store pickup "
         "installation loyalty points payment declined subscription exchange price drop missing wrong item").split()


class RandomVectors(MiniLMEmbeddingFunction):
    """Stands in for the embedding model in the store (Chroma still sees the registered function):
    a fixed random unit vector per text."""

    def __call__(self, texts):
        return [self._one(t) for t in texts]

    def embed_texts(self, texts):
        return np.stack([self._one(t) for t in texts])

    @staticmethod
    def _one(text: str) -> np.ndarray:
        v = np.random.default_rng(abs(hash(text)) % (2**32)).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)


RANDOM = RandomVectors()


def synthetic_docs(n_docs: int, rng: random.Random) -> list[Document]:
    return [Document(id=f"faq-{i:06d}", kind="faq", title=f"{' '.join(rng.sample(WORDS, 4))} question {i}?",
                     text=f"{' '.join(rng.choices(WORDS, k=30))} answer {i}.", source="bench") for i in range(n_docs)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run_size(chunks: int, queries: int, rng: random.Random) -> dict:
    with tempfile.TemporaryDirectory(prefix="tactful-retrieval-bench-") as tmp:
        store = KnowledgeStore(Settings(data_dir=Path(tmp), llm_base_url="http://127.0.0.1:9/v1", _env_file=None))
        store.embed = RANDOM
        docs = synthetic_docs(chunks // 2, rng)
        t0 = time.perf_counter()
        for start in range(0, len(docs), 2000):
            store.upsert_many("bench", docs[start:start + 2000])
        ingest_s = time.perf_counter() - t0
        store.search("bench", "warm up", k=3, kinds=["faq"])  # builds the in-memory mirror
        index = store._indexes["bench"]
        path = "exact (in-memory mirror)" if index.vectors is not None else "ANN (Chroma HNSW)"
        vectors = index.vectors if index.vectors is not None else np.stack(
            store._fetch("bench").get(include=["embeddings"])["embeddings"]).astype(np.float32)
        texts = [" ".join(rng.sample(WORDS, 6)) for _ in range(queries)]
        qvecs = RANDOM.embed_texts(texts)
        ours, base = [], []
        for text, q in zip(texts, qvecs):
            t = time.perf_counter()
            store.search("bench", text, k=3, kinds=["faq"], vector=q)
            ours.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            sims = vectors @ q
            top = np.argpartition(-sims, 3)[:3]
            top[np.argsort(-sims[top])]
            base.append((time.perf_counter() - t) * 1000)
        return {"chunks": chunks, "path": path, "ingest_chunks_per_s": round(chunks / ingest_s),
                "query_p50_ms": round(percentile(ours, 50), 3), "query_p95_ms": round(percentile(ours, 95), 3),
                "numpy_p50_ms": round(percentile(base, 50), 3), "numpy_p95_ms": round(percentile(base, 95), 3),
                "ratio_p50": round(percentile(ours, 50) / max(percentile(base, 50), 1e-6), 1)}


def embedding_throughput(n: int = 1000) -> float:
    embed = MiniLMEmbeddingFunction()
    rng = random.Random(1)
    texts = [" ".join(rng.choices(WORDS, k=40)) for _ in range(n)]
    embed(texts[:32])
    t0 = time.perf_counter()
    embed(texts)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    rows = []
    for n in args.sizes.split(","):
        rows.append(run_size(int(n), args.queries, rng))
        print(json.dumps(rows[-1]), flush=True)  # a row as soon as it is measured: 100k takes minutes
    model_rate = embedding_throughput()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"KnowledgeStore.search (FAQs, k=3) vs numpy brute force, {args.queries} queries per size")
    for col in ("chunks", "path", "ingest chunks/s", "p50 ms", "p95 ms", "numpy p50 ms", "numpy p95 ms", "p50 ratio"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for r in rows:
        table.add_row(f"{r['chunks']:,}", r["path"], f"{r['ingest_chunks_per_s']:,}", f"{r['query_p50_ms']:.2f}",
                      f"{r['query_p95_ms']:.2f}", f"{r['numpy_p50_ms']:.3f}", f"{r['numpy_p95_ms']:.3f}", f"{r['ratio_p50']}x")
    Console().print(table)
    print(f"MiniLM embedding (the real model): {model_rate:.0f} chunks/s on this machine; peak RSS {peak_rss_mb:.0f} MB")
    out = ROOT / "benchmarks" / "results" / "retrieval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sizes": rows, "embedding_chunks_per_s": round(model_rate), "peak_rss_mb": round(peak_rss_mb)}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
