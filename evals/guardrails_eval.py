"""Precision, recall and F1 of the guardrails and of triage on our labelled corpus.

The corpus is in `evals/corpus/` (see its README). Real brand replies and real customer messages
are referenced by id and read from `../shared/datasets/` when it is there; without it those rows
are skipped and the report says how many.

    python -m evals.guardrails_eval            # tables for evals/corpus (what the rules are tuned on)
    python -m evals.guardrails_eval --heldout  # the blind held-out set in evals/heldout
    python -m evals.guardrails_eval --errors   # also list every miss and false positive
    python -m evals.guardrails_eval --json     # the same numbers as JSON
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from guardrails import CheckContext, check
from guardrails.triage import analyze

CORPUS = Path(__file__).parent / "corpus"
HELDOUT = Path(__file__).parent / "heldout"  # labelled blind by people who never saw the rules; never tuned on
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
BLOCKING_FAMILIES = ("minimising", "blame", "humour")


@dataclass
class Case:
    id: str
    lang: str
    text: str
    serious: bool
    expect: frozenset[str]
    note: str = ""


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    n: int = 0
    errors: list[dict] = field(default_factory=list)

    def add(self, expected: bool, predicted: bool, case_id: str, text: str) -> None:
        self.n += 1
        if expected and predicted:
            self.tp += 1
        elif predicted:
            self.fp += 1
            self.errors.append({"id": case_id, "kind": "false positive", "text": text})
        elif expected:
            self.fn += 1
            self.errors.append({"id": case_id, "kind": "missed", "text": text})

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {"n": self.n, "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


def _jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    return rows


def twcs_texts(path: Path | None = None) -> dict[str, str]:
    """tweet_id -> text for the brand replies (inbound=False) in TWCS; {} when the file is absent."""
    path = path or DATASETS / "twcs_head.csv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["tweet_id"]: row["text"] for row in csv.DictReader(fh) if row["inbound"] == "False"}


def load_draft_cases(corpus: Path = CORPUS) -> tuple[list[Case], int]:
    """Authored and dataset-backed draft cases, and how many dataset rows were skipped."""
    cases, skipped = [], 0
    for path in sorted((corpus / "drafts").glob("*.jsonl")):
        if path.stem == "twcs":
            texts = twcs_texts()
            for row in _jsonl(path):
                text = texts.get(str(row["tweet_id"]))
                if text is None:
                    skipped += 1
                    continue
                cases.append(Case(f"twcs-{row['tweet_id']}", "en", text, row["serious"], frozenset(row["expect"]), row.get("note", "")))
            continue
        for row in _jsonl(path):
            cases.append(Case(row["id"], row["lang"], row["text"], row["serious"], frozenset(row["expect"]), row.get("note", "")))
    return cases, skipped


def score_drafts(cases: list[Case]) -> dict[str, Counts]:
    """Keys: `<family>/<lang>`, `<family>/all`, `all/<lang>`, `all/all` (a draft blocks or not)."""
    counts: dict[str, Counts] = {}

    def bump(key: str, expected: bool, predicted: bool, case: Case) -> None:
        counts.setdefault(key, Counts()).add(expected, predicted, case.id, case.text)

    for case in cases:
        findings = check(case.text, CheckContext(language=case.lang, serious=case.serious))
        blocked = {f.family for f in findings if f.severity == "block" and f.family in BLOCKING_FAMILIES}
        for family in BLOCKING_FAMILIES:
            for key in (f"{family}/{case.lang}", f"{family}/all"):
                bump(key, family in case.expect, family in blocked, case)
        for key in (f"all/{case.lang}", "all/all"):
            bump(key, bool(case.expect), bool(blocked), case)
    return counts


def load_triage_cases(corpus: Path = CORPUS) -> tuple[list[dict], int]:
    """Authored and dataset-backed incoming messages, and how many dataset rows were skipped."""
    rows, skipped = [], 0
    sources = _dataset_messages()
    for path in sorted((corpus / "triage").glob("*.jsonl")):
        for row in _jsonl(path):
            if "dataset" in row:
                text = sources.get(row["dataset"], {}).get(str(row["key"]))
                if text is None:
                    skipped += 1
                    continue
                row = {**row, "id": f"{row['dataset']}-{row['key']}", "lang": "en", "text": text}
            rows.append(row)
    return rows, skipped


def _dataset_messages() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    complaints, airline = DATASETS / "complaints.csv", DATASETS / "airline.csv"
    if complaints.is_file():
        with complaints.open(newline="", encoding="utf-8") as fh:
            out["complaints"] = {r[0]: r[1] for r in csv.reader(fh) if len(r) >= 2}
    if airline.is_file():
        with airline.open(newline="", encoding="utf-8") as fh:
            out["airline"] = {r["tweet_id"]: r["text"] for r in csv.DictReader(fh)}
    return out


def score_triage(rows: list[dict]) -> dict[str, Counts]:
    """Serious yes/no and troll yes/no, per language and overall."""
    counts: dict[str, Counts] = {}
    for row in rows:
        triage = analyze(row["text"], language=row.get("lang"))
        for key in (f"serious/{row['lang']}", "serious/all"):
            counts.setdefault(key, Counts()).add(row["serious"], triage.serious, row["id"], row["text"])
        for key in (f"troll/{row['lang']}", "troll/all"):
            counts.setdefault(key, Counts()).add(row.get("troll", False), triage.troll, row["id"], row["text"])
    return counts


def report(corpus: Path = CORPUS) -> dict:
    cases, skipped = load_draft_cases(corpus)
    rows, triage_skipped = load_triage_cases(corpus)
    return {
        "drafts": {"n": len(cases), "skipped_dataset_rows": skipped,
                   "scores": {k: v.as_dict() for k, v in sorted(score_drafts(cases).items())}},
        "triage": {"n": len(rows), "skipped_dataset_rows": triage_skipped,
                   "scores": {k: v.as_dict() for k, v in sorted(score_triage(rows).items())}},
    }


def _print(result: dict, show_errors: bool, corpus: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for part in ("drafts", "triage"):
        data = result[part]
        skipped = data["skipped_dataset_rows"]
        note = f"; {skipped} rows skipped: {DATASETS} not found" if skipped else ""
        table = Table(title=f"{part}: {data['n']} labelled in {corpus.name}/{note}")
        for col in ("family/lang", "n", "tp", "fp", "fn", "precision", "recall", "f1"):
            table.add_column(col, justify="left" if col == "family/lang" else "right")
        for key, s in data["scores"].items():
            table.add_row(key, *(str(s[c]) if isinstance(s[c], int) else f"{s[c]:.3f}" for c in ("n", "tp", "fp", "fn", "precision", "recall", "f1")))
        console.print(table)
    if show_errors:
        cases, _ = load_draft_cases(corpus)
        for key, counts in sorted(score_drafts(cases).items()):
            if key.startswith("all/") or key.endswith("/all"):
                continue
            for err in counts.errors:
                console.print(f"[yellow]{key}[/] {err['kind']}: {err['id']}: {err['text']!r}", markup=True, highlight=False)
        rows, _ = load_triage_cases(corpus)
        for key, counts in sorted(score_triage(rows).items()):
            if key.endswith("/all"):
                continue
            for err in counts.errors:
                console.print(f"[yellow]{key}[/] {err['kind']}: {err['id']}: {err['text']!r}", markup=True, highlight=False)


if __name__ == "__main__":
    corpus = HELDOUT if "--heldout" in sys.argv else CORPUS
    result = report(corpus)
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print(result, show_errors="--errors" in sys.argv, corpus=corpus)
