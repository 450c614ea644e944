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
    sets = required_literal_sets(pattern)
    return sets[0] if sets else None


def required_literal_sets(pattern: str) -> tuple[frozenset[str], ...]:
    """Every such set the pattern's top level guarantees, most selective first: a match of
    `you\s+should\s+have\s+(?:read|checked)` contains "should" AND "have" AND one of read/checked.
    Requiring all of them, not just one, is what keeps common words from waking a rule up."""
    try:
        parsed = parser.parse(pattern, re.IGNORECASE)
    except re.error:
        return ()
    found = [c for c in _candidates(list(parsed)) if all(_selective(s) for s in c)]
    return tuple(sorted(set(found), key=_score, reverse=True))


Requirement = tuple[frozenset[str], ...]  # every set must have a string in the text


def required_alternatives(pattern: str, limit: int = 64) -> tuple[Requirement, ...]:
    """The pattern as alternatives, each with what it requires: `\b(?:your\s+fault|user\s+error)`
    is "your" AND "fault", or "user" AND "error". A rule is worth running when one alternative's
    requirement holds. Empty when some alternative requires nothing (the rule always runs)."""
    try:
        parsed = parser.parse(pattern, re.IGNORECASE)
    except re.error:
        return ()
    out = []
    for alternative in _alternatives(list(parsed), limit):
        sets = sorted({c for c in alternative if all(_selective(s) for s in c)}, key=_score, reverse=True)
        if not sets:
            return ()
        out.append(tuple(sets))
    return tuple(out)


def _alternatives(items: Sequence, limit: int) -> list[list[frozenset[str]]]:
    """A sequence as a disjunction of conjunctions, expanding alternations while the number of
    alternatives stays within `limit` (beyond it an alternation counts as the union of its parts)."""
    alts: list[list[frozenset[str]]] = [[]]
    run: list[str] = [""]

    def flush() -> None:
        if all(run):
            literal = frozenset(r.casefold() for r in run)
            for alt in alts:
                alt.append(literal)
        run[:] = [""]

    for op, av in items:
        if op is C.LITERAL:
            run[:] = [r + chr(av) for r in run]
            continue
        exact = _exact([(op, av)])
        if exact and len(run) * len(exact) <= 32:
            run[:] = [r + e for r in run for e in sorted(exact)]
            continue
        flush()
        inner: list[list[frozenset[str]]] | None = None
        if op is C.SUBPATTERN:
            inner = _alternatives(list(av[-1]), limit)
        elif op is C.BRANCH:
            inner = [alt for branch in av[1] for alt in _alternatives(list(branch), limit)]
        # a product of alternations multiplies; a plain alternation only adds (up to 8x the limit)
        if inner is not None and len(alts) * len(inner) <= (limit * 8 if len(alts) == 1 else limit):
            alts = [a + b for a in alts for b in inner]
            continue
        for alt in alts:
            alt.extend(_candidates([(op, av)]))
    flush()
    return alts


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
    candidates = _candidates(items)
    return max(candidates, key=_score) if candidates else None


def _candidates(items: Sequence) -> list[frozenset[str]]:
    """For a sequence: one set per element that guarantees a literal; a match contains one
    string of every set."""
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
    return candidates


class TriggerIndex:
    """Maps a text to the indices of the rules that might match it: those with an alternative
    whose every required set has a string in the text, found in one Aho-Corasick pass."""

    def __init__(self, requirements: Iterable[Sequence[Requirement] | None]):
        self.always: list[int] = []
        self.entries: list[tuple[int, tuple[frozenset[int], ...]]] = []  # (rule, its alternative as literal ids)
        self.by_first: dict[int, list[int]] = {}  # literal id -> entries whose most selective set holds it
        ids: dict[str, int] = {}
        for rule, alternatives in enumerate(requirements):
            if not alternatives:
                self.always.append(rule)
                continue
            for alternative in alternatives:
                as_ids = tuple(frozenset(ids.setdefault(word, len(ids)) for word in s) for s in alternative)
                for word_id in as_ids[0]:
                    self.by_first.setdefault(word_id, []).append(len(self.entries))
                self.entries.append((rule, as_ids))
        # The same entries, laid out for candidates(), which runs on every text: per literal, the rules
        # it wakes on its own, and the (rule, other sets) pairs left to check, without repeats.
        self._wakes: dict[int, frozenset[int]] = {}
        self._pairs: dict[int, tuple[tuple[int, tuple[frozenset[int], ...]], ...]] = {}
        for word_id, entries in self.by_first.items():
            wakes = frozenset(self.entries[e][0] for e in entries if len(self.entries[e][1]) == 1)
            pairs = dict.fromkeys((rule, tuple(dict.fromkeys(sets[1:])))
                                  for rule, sets in map(self.entries.__getitem__, entries) if rule not in wakes)
            if wakes:
                self._wakes[word_id] = wakes
            if pairs:
                self._pairs[word_id] = tuple(pairs)
        self._keys = frozenset(self.by_first)
        self.automaton = ahocorasick.Automaton()
        for word, word_id in ids.items():
            self.automaton.add_word(word, word_id)
        self.empty = not ids
        if not self.empty:
            self.automaton.make_automaton()

    def candidates(self, folded: str) -> list[int]:
        """Rule indices in their original order; `folded` is the text after str.casefold()."""
        hit = set(self.always)
        if self.empty:
            return sorted(hit)
        found = {word_id for _end, word_id in self.automaton.iter(folded)}
        wakes, pairs = self._wakes, self._pairs
        for word_id in self._keys.intersection(found):
            if word_id in wakes:
                hit |= wakes[word_id]
            for rule, sets in pairs.get(word_id, ()):
                if rule not in hit:
                    for s in sets:
                        if s.isdisjoint(found):
                            break
                    else:
                        hit.add(rule)
        return sorted(hit)
