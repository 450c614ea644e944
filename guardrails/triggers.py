"""Which rules can possibly match a text, from one pass over it.

Every rule's regex is read (with Python's own regex parser) for the literal strings
that any match must contain: `\\bjust\\s+(?=click|tap)` needs "just"; `(?:cukup|tinggal)\\s+klik`
needs "klik". An Aho-Corasick automaton over those strings finds, in one pass over the
case-folded text, the rules worth running; the others cannot match and are skipped. Rule
authors write no trigger lists, and a trigger can never be wrong, because it is derived
from the pattern.

Why: Python's `re` gets no prefix speed-up from case-insensitive patterns that start with
`\\b`, so each rule scanned every position of every draft. This keeps the whole check fast
enough to run on every draft (see benchmarks/guardrails.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

import ahocorasick

try:  # Python 3.11+
    from re import _constants as C, _parser as parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse as parser  # type: ignore[no-redef]

_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT} | ({C.POSSESSIVE_REPEAT} if hasattr(C, "POSSESSIVE_REPEAT") else set())


def required_literals(pattern: str) -> frozenset[str] | None:
    """Case-folded strings of which every match of `pattern` contains at least one, or None
    when no such set exists (then the rule always runs)."""
    try:
        parsed = parser.parse(pattern, re.IGNORECASE)
    except re.error:
        return None
    found = _required(list(parsed))
    return found if found and all(_selective(s) for s in found) else None


def _selective(literal: str) -> bool:
    """Worth a lookup: two characters or more, or one that is not ASCII (an emoji, a Han character)."""
    return len(literal) >= 2 or (len(literal) == 1 and not literal.isascii())


def _exact(items: Sequence) -> frozenset[str] | None:
    """Every string a purely literal piece of pattern can match (literals, small classes, groups and
    alternations of them), or None when it can match something open-ended."""
    out = {""}
    for op, av in items:
        if op is C.LITERAL:
            options = {chr(av)}
        elif op is C.IN:
            options = _char_set(av)
        elif op is C.SUBPATTERN:
            options = _exact(list(av[-1]))
        elif op is C.BRANCH:
            parts = [_exact(list(b)) for b in av[1]]
            options = None if any(p is None for p in parts) else set().union(*parts)
        else:
            return None
        if not options:
            return None
        out = {a + b for a in out for b in options}
        if len(out) > 32:
            return None
    return frozenset(out)


def _char_set(items) -> frozenset[str] | None:
    """The characters a small class like [赞棒] or [!！] can match; None for ranges, negations, categories."""
    chars = set()
    for op, av in items:
        if op is not C.LITERAL:
            return None
        chars.add(chr(av).casefold())
    return frozenset(chars) if 0 < len(chars) <= 8 else None


def _score(options: frozenset[str]) -> tuple[int, int]:
    return (min(len(s) for s in options), -len(options))  # long and few: fewest false candidates


def _required(items: Sequence) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    # The literal run so far, as alternatives: a small class multiplies them, so "r[aă]n" is {"ran", "răn"}.
    run: list[str] = [""]

    def flush() -> None:
        if all(run):  # an empty alternative guarantees nothing
            candidates.append(frozenset(r.casefold() for r in run))
        run[:] = [""]

    for op, av in items:
        if op is C.LITERAL:
            run[:] = [r + chr(av) for r in run]
            continue
        exact = _exact([(op, av)])  # a class, or a group of literal alternatives ("(?:t|[tț]i)")
        if exact and len(run) * len(exact) <= 32:
            run[:] = [r + e for r in run for e in sorted(exact)]
            continue
        flush()
        sub: frozenset[str] | None = None
        if op is C.SUBPATTERN:
            sub = _required(list(av[-1]))
        elif hasattr(C, "ATOMIC_GROUP") and op is C.ATOMIC_GROUP:
            sub = _required(list(av))
        elif op is C.IN:
            sub = _char_set(av)
        elif op in _REPEATS:
            low, _high, body = av
            body = list(body)
            chars = _char_set(body[0][1]) if len(body) == 1 and body[0][0] is C.IN else (
                frozenset({chr(body[0][1]).casefold()}) if len(body) == 1 and body[0][0] is C.LITERAL else None)
            if low >= 2 and chars and len(chars) ** min(low, 3) <= 16:  # "!{2,}" needs "!!"; "[!！]{2,}" one of four
                sub = frozenset(map("".join, itertools.product(sorted(chars), repeat=min(low, 3))))
            else:
                sub = _required(body) if low >= 1 else None
        elif op is C.BRANCH:
            branches = [_required(list(b)) for b in av[1]]
            sub = None if any(b is None for b in branches) else frozenset().union(*branches)
        # ANY, AT, ASSERT, categories, ...: nothing guaranteed. Lookaheads are skipped too, on purpose:
        # conservative is always correct.
        if sub:
            candidates.append(sub)
    flush()
    if not candidates:
        return None
    return max(candidates, key=_score)


class TriggerIndex:
    """Maps a text to the indices of the rules that might match it."""

    def __init__(self, trigger_sets: Iterable[frozenset[str] | None]):
        self.always: list[int] = []
        by_word: dict[str, list[int]] = {}
        for i, triggers in enumerate(trigger_sets):
            if not triggers:
                self.always.append(i)
                continue
            for word in triggers:
                by_word.setdefault(word, []).append(i)
        self.automaton = ahocorasick.Automaton()
        for word, rules in by_word.items():
            self.automaton.add_word(word, tuple(rules))
        self.empty = not by_word
        if not self.empty:
            self.automaton.make_automaton()

    def candidates(self, folded: str) -> list[int]:
        """Rule indices in their original order; `folded` is the text after str.casefold()."""
        hit = set(self.always)
        if not self.empty:
            for _end, rules in self.automaton.iter(folded):
                hit.update(rules)
        return sorted(hit)
