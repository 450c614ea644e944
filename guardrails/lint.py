"""The tone linter behind `tactful check` and `POST /v1/guardrails/check`.

One function checks one reply the way the HTTP API does (triage of the customer's
message decides seriousness; the brand's policy decides what only warns). The rest
finds the replies inside saved-reply files — plain text, Markdown, YAML macros — and
maps each finding back to the file's line and column, the way a linter reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from guardrails.engine import CheckContext, check, is_blocking
from guardrails.finding import Finding
from guardrails.policy import load_policy
from guardrails.triage import analyze, detect_language

LINTABLE = (".txt", ".md", ".markdown", ".yaml", ".yml")
# Saved replies and macros are written by people and legitimately hold headings and helpdesk
# placeholders ("{{ticket.requester.name}}"); the not-a-reply rules are about raw LLM output.
NOT_LINTED = frozenset({"not_a_reply"})


class LintError(Exception):
    """A file that cannot be linted: names the file and why."""


@dataclass
class Checked:
    passed: bool
    language: str
    serious: bool
    findings: list[Finding]

    def as_dict(self) -> dict:
        return {"passed": self.passed, "language": self.language, "serious": self.serious,
                "findings": [f.model_dump() for f in self.findings]}


def check_reply(text: str, message: str | None = None, language: str | None = None, brand: str | None = None,
                channel: str | None = None, visibility: str = "public") -> Checked:
    if message:
        triage = analyze(message, language=language)
        language, serious = triage.language, triage.serious
    else:
        language, serious = language or detect_language(text), False
    context = CheckContext(language=language, serious=serious, message=message, channel=channel, visibility=visibility)
    findings = load_policy(brand).apply(check(text, context))
    return Checked(not is_blocking(findings), language, serious, findings)


@dataclass
class Located:
    """A finding with where it is in the file (1-based line and column)."""
    path: str
    line: int
    col: int
    finding: Finding

    def as_dict(self) -> dict:
        return {"file": self.path, "line": self.line, "col": self.col, **self.finding.model_dump()}


@dataclass
class Piece:
    """One reply inside a file: its text and where that text starts."""
    text: str
    line: int  # 0-based line of the text's first character
    col: int  # 0-based column of it
    source_slice: tuple[int, int] | None = None  # the raw bytes of a YAML scalar, for spans in folded text


def files_to_lint(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LINTABLE
                              and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        elif path.is_file():
            out.append(path)
        else:
            raise LintError(f"{path}: no such file or folder")
    return out


def pieces(path: Path, raw: str) -> list[Piece]:
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_pieces(path, raw)
    return [Piece(raw, 0, 0)]


def _yaml_pieces(path: Path, raw: str) -> list[Piece]:
    """Every string value of a macros file ({name: text}, a list of {title, text}, ...); keys and
    one-word values (ids, tags) are not replies."""
    try:
        root = yaml.compose(raw)
    except yaml.YAMLError as exc:
        raise LintError(f"{path}: not valid YAML: {exc}") from exc
    found: list[Piece] = []

    def walk(node) -> None:
        if isinstance(node, yaml.MappingNode):
            for _key, value in node.value:
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        elif isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str") and len(node.value.split()) >= 2:
            found.append(Piece(node.value, node.start_mark.line, node.start_mark.column,
                               (node.start_mark.index, node.end_mark.index)))

    if root is not None:
        walk(root)
    return found


def locate(path: str, raw: str, piece: Piece, finding: Finding) -> Located:
    """File line and column of a finding. Plain text maps directly; in a YAML scalar (quoted,
    block or folded) the match is found in the scalar's own source, same occurrence."""
    if piece.source_slice is None:
        offset = finding.start
    else:
        lo, hi = piece.source_slice
        nth = piece.text[: finding.start].count(finding.match) if finding.match else 0
        at = lo - 1
        for _ in range(nth + 1):
            at = raw.find(finding.match, at + 1, hi) if finding.match else -1
            if at < 0:
                break
        offset = at if at >= 0 else lo
        return Located(path, raw.count("\n", 0, offset) + 1, offset - (raw.rfind("\n", 0, offset) + 1) + 1, finding)
    line = piece.line + piece.text.count("\n", 0, offset)
    last_nl = piece.text.rfind("\n", 0, offset)
    col = (piece.col + offset if last_nl < 0 else offset - last_nl - 1)
    return Located(path, line + 1, col + 1, finding)


def lint_file(path: Path, message: str | None = None, language: str | None = None, brand: str | None = None) -> list[Located]:
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LintError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise LintError(f"{path}: {exc.strerror or exc}") from exc
    located = []
    for piece in pieces(path, raw):
        if not piece.text.strip():
            continue
        result = check_reply(piece.text, message, language, brand)
        located.extend(locate(str(path), raw, piece, f) for f in result.findings if f.family not in NOT_LINTED)
    return located
