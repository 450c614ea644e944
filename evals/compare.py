"""Paired comparison of two runs over the same cases: is B better than A?

Per case, the quality score is the mean of the `QUALITY` metrics that apply; B wins, ties or
loses against A on it. Per metric, the change is the mean of the paired per-case differences,
with a 95 % bootstrap interval (cases resampled with replacement, fixed seed, so the same two
runs always give the same interval). Flipped cases (pass -> fail or fail -> pass on a metric)
come first: they are what a reviewer reads.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict

from evals.metrics import METRICS, QUALITY
from evals.runner import SLICES

BOOTSTRAP = 2000
TIE = 1e-9


def quality(scores: dict) -> float | None:
    values = [scores[m] for m in QUALITY if scores.get(m) is not None]
    return statistics.fmean(values) if values else None


def interval(diffs: list[float], seed: int = 7) -> tuple[float, float]:
    if not diffs:
        return (0.0, 0.0)
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP))
    return (round(means[int(0.025 * BOOTSTRAP)], 4), round(means[int(0.975 * BOOTSTRAP) - 1], 4))


def compare(a: dict, b: dict) -> dict:
    left = {(r["id"], r["repeat"]): r for r in a["results"]}
    pairs = [(left[(r["id"], r["repeat"])], r) for r in b["results"] if (r["id"], r["repeat"]) in left]
    wins = ties = losses = 0
    flipped = []
    for ra, rb in pairs:
        qa, qb = quality(ra["scores"]), quality(rb["scores"])
        if qa is None or qb is None or abs(qb - qa) <= TIE:
            ties += 1
        elif qb > qa:
            wins += 1
        else:
            losses += 1
        changed = {m: (ra["scores"][m], rb["scores"][m]) for m in METRICS
                   if ra["scores"].get(m) is not None and rb["scores"].get(m) is not None
                   and (ra["scores"][m] >= 1.0) != (rb["scores"][m] >= 1.0)}
        if changed:
            flipped.append({"id": rb["id"], "message": rb["message"], "changed": changed,
                            "a": _texts(ra), "b": _texts(rb)})
    metrics = {}
    for m in METRICS:
        diffs = [rb["scores"][m] - ra["scores"][m] for ra, rb in pairs
                 if ra["scores"].get(m) is not None and rb["scores"].get(m) is not None]
        metrics[m] = {"delta": round(statistics.fmean(diffs), 4) if diffs else 0.0, "ci95": interval(diffs), "n": len(diffs)}
    slices: dict[str, dict[str, dict]] = defaultdict(dict)
    for key in SLICES:
        groups = defaultdict(list)
        for ra, rb in pairs:
            qa, qb = quality(ra["scores"]), quality(rb["scores"])
            if qa is not None and qb is not None:
                groups[rb["slices"][key]].append(qb - qa)
        slices[key] = {v: {"delta": round(statistics.fmean(d), 4), "ci95": interval(d), "n": len(d)} for v, d in sorted(groups.items())}
    return {"a": a["config"], "b": b["config"], "pairs": len(pairs), "wins": wins, "ties": ties, "losses": losses,
            "metrics": metrics, "slices": dict(slices), "flipped": flipped}


def _texts(r: dict) -> list[str]:
    return [d["text"] for d in (r.get("response") or {}).get("drafts") or []]  # a baseline keeps scores only
