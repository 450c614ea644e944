"""Guardrails speed and accuracy, side by side with alex, in one run.

tactful, per draft, three ways:
- **told the draft is English** (`tactful check --language en`): every English rule family and the
  brand policy: the like-for-like comparison with alex, which reads every text as English. (In
  /v1/suggest the language comes from the customer's message too, and each draft is also checked
  for being in another language, parroting the message, reciting the prompt and fitting the
  channel, which alex does not do at all.)
- **as the linter runs on a saved reply of unknown language** (`tactful check`, guardrails/lint.py
  `check_reply`): the draft's language detected first, then the rules of it plus English.
- **with a full triage of the draft's text on top** (seriousness, sentiment and troll cues as for
  a customer message): more work than any tactful path does per draft; earlier tables reported
  only this one, so it stays for comparison.
alex (npm, installed into this benchmark's own temp dir): `text()` on the same English drafts.
Both tools' F1 is on the English subset of our labelled corpus: "flags" means tactful blocks the
draft, and for alex that it reports anything at all (alex only warns).

    python benchmarks/guardrails.py [--repeat 5] [--no-alex]

Prints a table and writes benchmarks/results/guardrails.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.guardrails_eval import Counts, load_draft_cases, score_drafts  # noqa: E402
from guardrails import CheckContext, check  # noqa: E402
from guardrails.lint import check_reply  # noqa: E402
from guardrails.triage import analyze  # noqa: E402

ALEX_VERSION = "11.0.1"
ALEX_SCRIPT = r"""
import {text} from 'alex'
import {readFileSync} from 'node:fs'
const drafts = JSON.parse(readFileSync(0, 'utf8'))
const repeat = Number(process.argv[2])
const flagged = drafts.map(d => text(d).messages.length > 0)  // also warms up
const times = []
for (let r = 0; r < repeat; r++) {
  const t0 = process.hrtime.bigint()
  for (const d of drafts) text(d)
  times.push(Number(process.hrtime.bigint() - t0) / 1e3 / drafts.length)
}
console.log(JSON.stringify({flagged, us_per_draft: times}))
"""


def linter_pass(texts: list[str], language: str | None = None) -> float:
    """µs per draft as `tactful check [--language L]` lints a saved reply: its language (detected
    unless given), the rules of it plus English, the policy."""
    t0 = time.perf_counter()
    for text in texts:
        check_reply(text, language=language)
    return (time.perf_counter() - t0) * 1e6 / len(texts)


def triaged_pass(texts: list[str]) -> float:
    """µs per draft with a full triage of the text (language, seriousness, sentiment, troll cues) first."""
    t0 = time.perf_counter()
    for text in texts:
        triage = analyze(text)
        check(text, CheckContext(language=triage.language, serious=triage.serious))
    return (time.perf_counter() - t0) * 1e6 / len(texts)


def run_alex(texts: list[str], repeat: int) -> dict | None:
    if not shutil.which("npm") or not shutil.which("node"):
        print("alex: skipped (npm/node not found)")
        return None
    with tempfile.TemporaryDirectory(prefix="tactful-alex-") as tmp:
        install = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", f"alex@{ALEX_VERSION}"],
                                 cwd=tmp, capture_output=True, text=True, timeout=600)
        if install.returncode:
            print(f"alex: skipped (npm install failed: {install.stderr.strip()[-300:]})")
            return None
        script = Path(tmp) / "bench.mjs"
        script.write_text(ALEX_SCRIPT)
        done = subprocess.run(["node", str(script), str(repeat)], cwd=tmp, input=json.dumps(texts),
                              capture_output=True, text=True, timeout=1200, check=True)
        return json.loads(done.stdout)


def f1_of(expected: list[bool], predicted: list[bool], ids: list[str], texts: list[str]) -> Counts:
    counts = Counts()
    for e, p, i, t in zip(expected, predicted, ids, texts):
        counts.add(e, p, i, t)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-alex", action="store_true")
    args = parser.parse_args()

    cases, skipped = load_draft_cases()
    english = [c for c in cases if c.lang == "en"]
    all_texts = [c.text for c in cases]
    en_texts = [c.text for c in english]
    linter_pass(all_texts), triaged_pass(all_texts)  # warm-up: rule compilation, the language model, caches
    # the two ways interleaved, pass by pass, so that the machine's noise hits both alike
    all_us, en_us, en_given_us, en_triaged_us = [], [], [], []
    for _ in range(args.repeat):
        all_us.append(linter_pass(all_texts))
        en_us.append(linter_pass(en_texts))
        en_given_us.append(linter_pass(en_texts, "en"))
        en_triaged_us.append(triaged_pass(en_texts))

    expected = [bool(c.expect) for c in english]
    ours = score_drafts(english)["all/en"]  # the labels' own context: humour blocks only on serious messages
    alex = run_alex(en_texts, args.repeat) if not args.no_alex else None
    alex_counts = f1_of(expected, alex["flagged"], [c.id for c in english], en_texts) if alex else None

    result = {
        "corpus": {"drafts": len(cases), "english": len(english), "skipped_dataset_rows": skipped},
        "tactful": {"us_per_draft_all": statistics.median(all_us), "us_per_draft_en": statistics.median(en_us),
                    "us_per_draft_en_language_given": statistics.median(en_given_us),
                    "drafts_per_s_all": 1e6 / statistics.median(all_us),
                    "us_per_draft_en_with_triage": statistics.median(en_triaged_us), "en": ours.as_dict()},
        "alex": None if not alex else {"version": ALEX_VERSION, "us_per_draft_en": statistics.median(alex["us_per_draft"]),
                                       "drafts_per_s_en": 1e6 / statistics.median(alex["us_per_draft"]),
                                       "en": alex_counts.as_dict()},
    }
    if alex:
        result["speedup_en"] = result["alex"]["us_per_draft_en"] / result["tactful"]["us_per_draft_en"]
        result["speedup_en_language_given"] = result["alex"]["us_per_draft_en"] / result["tactful"]["us_per_draft_en_language_given"]
        result["speedup_en_with_triage"] = result["alex"]["us_per_draft_en"] / result["tactful"]["us_per_draft_en_with_triage"]
        result["f1_gain_en"] = ours.f1 - alex_counts.f1

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"guardrails on {len(english)} English drafts ({len(cases)} in all; "
                        f"{skipped} dataset rows skipped), median of {args.repeat} passes")
    for col in ("tool", "µs/draft (en)", "drafts/s (en)", "precision", "recall", "F1"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    t = result["tactful"]
    scores = (f"{ours.precision:.3f}", f"{ours.recall:.3f}", f"{ours.f1:.3f}")
    table.add_row("tactful check --language en", f"{t['us_per_draft_en_language_given']:.0f}",
                  f"{1e6 / t['us_per_draft_en_language_given']:.0f}", *scores)
    table.add_row("tactful check (language detected)", f"{t['us_per_draft_en']:.0f}", f"{1e6 / t['us_per_draft_en']:.0f}", *scores)
    table.add_row("tactful + triage of the text", f"{t['us_per_draft_en_with_triage']:.0f}",
                  f"{1e6 / t['us_per_draft_en_with_triage']:.0f}", *scores)
    if alex:
        a = result["alex"]
        table.add_row(f"alex {ALEX_VERSION}", f"{a['us_per_draft_en']:.0f}", f"{a['drafts_per_s_en']:.0f}",
                      f"{alex_counts.precision:.3f}", f"{alex_counts.recall:.3f}", f"{alex_counts.f1:.3f}")
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # pipes and logs: no 80-column wrapping
    print(f"tactful check, all {len(cases)} drafts in en/id/ro/zh: {t['us_per_draft_all']:.0f} µs per draft, "
          f"{t['drafts_per_s_all']:.0f} drafts/s")
    if alex:
        print(f"tactful is {result['speedup_en_language_given']:.0f}x faster per English draft, both tools reading it as English "
              f"({result['speedup_en']:.0f}x detecting each draft's language, {result['speedup_en_with_triage']:.0f}x "
              f"with a triage of the text); F1 {ours.f1:.3f} vs {alex_counts.f1:.3f} (+{result['f1_gain_en']:.3f})")
    out = ROOT / "benchmarks" / "results" / "guardrails.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
