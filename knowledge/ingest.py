"""Read knowledge files (Markdown, YAML/JSON/JSONL FAQ lists, CSV) into Documents.

One bad file or entry never stops the batch: it becomes an IngestProblem naming
the file and line, and every other document is still written (each one all in
or all out, see KnowledgeStore.upsert).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge.documents import MAX_DOCUMENT_CHARS, Document
from knowledge.store import KnowledgeStore

FAQ_SUFFIXES = {".yaml", ".yml", ".json", ".jsonl", ".csv"}
SUFFIXES = FAQ_SUFFIXES | {".md", ".markdown"}
INGEST_BATCH = 64  # documents per store write: one embedding batch and one Chroma call instead of 64


@dataclass
class IngestProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}{f':{self.line}' if self.line else ''}: {self.message}"


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[IngestProblem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def wrote_nothing(self) -> bool:
        return not (self.added or self.updated or self.removed)

    def summary(self, brand: str) -> str:
        counts = (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                  f"{len(self.removed)} removed, {len(self.problems)} problems in {self.seconds:.1f}s")
        return f"{brand}: {counts}" + (" (nothing to write: the store already matches)" if self.wrote_nothing and not self.problems else "")


def _faq(item: object, source: str, line: int | None) -> Document:
    if not isinstance(item, dict):
        raise ValueError("an FAQ entry must be a mapping with id, question and answer")
    missing = [k for k in ("id", "question", "answer") if not str(item.get(k) or "").strip()]
    if missing:
        raise ValueError(f"FAQ {item.get('id', '?')!r} has no {', '.join(missing)}")
    tags = item.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace(";", ",").split(",") if t.strip()]
    return Document(id=str(item["id"]), kind="faq", title=str(item["question"]).strip(), text=str(item["answer"]).strip(),
                    language=str(item.get("language") or "en"), source=source, url=item.get("url") or None, tags=tags,
                    next_step=str(item.get("next_step") or "").strip() or None)


def _front_matter(text: str) -> tuple[dict, str, int]:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            meta = yaml.safe_load(text[4:end]) or {}
            body_start = text.find("\n", end + 4) + 1 or len(text)
            return (meta if isinstance(meta, dict) else {}), text[body_start:], text[:body_start].count("\n")
    return {}, text, 0


def parse_file(path: Path, root: Path) -> tuple[list[Document], list[IngestProblem]]:
    source = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    docs: list[Document] = []
    problems: list[IngestProblem] = []
    try:
        raw = path.read_bytes()
        if len(raw) > 20 * MAX_DOCUMENT_CHARS:
            return [], [IngestProblem(source, None, f"file is {len(raw)} bytes; split it (limit {20 * MAX_DOCUMENT_CHARS})")]
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [IngestProblem(source, line, "not UTF-8 text; re-save the file as UTF-8")]
    except OSError as exc:
        return [], [IngestProblem(source, None, f"cannot read: {exc.strerror}")]

    def add(item: object, line: int | None) -> None:
        try:
            docs.append(_faq(item, source, line))
        except ValidationError as exc:  # before ValueError: it is one
            err = exc.errors()[0]
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(IngestProblem(source, line, f"{'.'.join(map(str, err['loc']))}: {msg}" if err["loc"] else msg))
        except ValueError as exc:
            problems.append(IngestProblem(source, line, str(exc)))

    suffix = path.suffix.lower()
    try:
        if suffix in {".md", ".markdown"}:
            meta, body, offset = _front_matter(text)
            kind = meta.get("kind") or ("voice" if path.name.lower().startswith("voice") else "faq")
            title = meta.get("title") or next((ln.lstrip("# ").strip() for ln in body.splitlines() if ln.startswith("#")), path.stem)
            try:
                docs.append(Document(id=str(meta.get("id") or path.stem), kind=kind, title=title, text=body.strip(),
                                     language=str(meta.get("language") or "en"), source=source))
            except ValidationError as exc:
                err = exc.errors()[0]
                problems.append(IngestProblem(source, offset + 1, f"{'.'.join(map(str, err['loc']))}: {err['msg']}"))
        elif suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        add(json.loads(line), n)
                    except json.JSONDecodeError as exc:
                        problems.append(IngestProblem(source, n, f"invalid JSON: {exc.msg}"))
        elif suffix == ".csv":
            reader = csv.DictReader(io.StringIO(text, newline=""))
            for row in reader:
                add(row, reader.line_num)
        elif suffix in {".yaml", ".yml", ".json"}:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
            lines = _yaml_item_lines(text) if suffix != ".json" else []
            items = data.get("faqs") if isinstance(data, dict) else data
            if not isinstance(items, list):
                return [], [IngestProblem(source, 1, "expected a list of FAQs or {\"faqs\": [...]}")]
            for i, item in enumerate(items):
                add(item, lines[i] if i < len(lines) else None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(IngestProblem(source, mark.line + 1 if mark else None, f"invalid YAML: {getattr(exc, 'problem', exc)}"))
    except json.JSONDecodeError as exc:
        problems.append(IngestProblem(source, exc.lineno, f"invalid JSON: {exc.msg}"))
    return docs, problems


def _yaml_item_lines(text: str) -> list[int]:
    """Line numbers of the FAQ list items, so problems can point at them."""
    node = yaml.compose(text)
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if k.value == "faqs"), None)
    if isinstance(node, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in node.value]
    return []


def knowledge_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES) if path.is_dir() else [path]


def collect(path: Path, files: list[Path] | None = None) -> tuple[list[Document], list[IngestProblem]]:
    root = path if path.is_dir() else path.parent
    files = knowledge_files(path) if files is None else files
    docs: list[Document] = []
    problems: list[IngestProblem] = []
    seen: dict[str, str] = {}
    for f in files:
        got, bad = parse_file(f, root)
        problems.extend(bad)
        for doc in got:
            if doc.id in seen:
                problems.append(IngestProblem(doc.source, None, f"duplicate id {doc.id!r} (also in {seen[doc.id]}); ids must be unique per brand"))
                continue
            seen[doc.id] = doc.source
            docs.append(doc)
    return docs, problems


def ingest(store: KnowledgeStore, brand: str, path: Path, progress=None, prune: bool = False) -> IngestReport:
    """Upsert every document under `path`, each all in or all out, and remove the ones whose
    entry left a file that was read cleanly (no orphans); with `prune`, also the ones whose file
    is gone. A document from a file that had a problem is never removed: a typo must not delete it."""
    started = time.perf_counter()
    report = IngestReport()
    if not path.exists():
        report.problems.append(IngestProblem(str(path), None, "no such file or folder"))
        return report
    files = knowledge_files(path)
    docs, report.problems = collect(path, files)
    before = {d["id"]: d["source"] for d in store.documents(brand)} if brand in store.brands() else {}
    for start in range(0, len(docs), INGEST_BATCH):
        batch = docs[start:start + INGEST_BATCH]
        for doc, outcome in zip(batch, store.upsert_many(brand, batch)):
            getattr(report, outcome).append(doc.id)
            if progress:
                progress(doc)
    root = path if path.is_dir() else path.parent
    read_now = {str(f.relative_to(root)) for f in files}
    troubled = {p.path for p in report.problems}
    present = {d.id for d in docs}
    for doc_id, source in before.items():
        if doc_id in present or source in troubled:
            continue
        if source in read_now or (prune and not source.startswith("api") and path.is_dir()):
            if store.delete(brand, doc_id):
                report.removed.append(doc_id)
    report.seconds = round(time.perf_counter() - started, 3)
    return report
