"""Which rules can possibly match a text: what each rule's pattern requires, read from the pattern.

Every rule's regex is read (with Python's own regex parser) for the literal strings
that any match must contain: `\\bjust\\s+(?=click|tap)` needs "just"; `(?:cukup|tinggal)\\s+klik`
needs "klik". An Aho-Corasick automaton over those strings (guardrails/trigger_index.py) finds, in
one pass over the case-folded text, the rules worth running; the others cannot match and are
skipped. Rule authors write no trigger lists, and a trigger can never be wrong, because it is
derived from the pattern. A rule is also taken apart into its top-level alternatives, so that only
those whose words are in the text run (`split_alternatives`).

Why: Python's `re` gets no prefix speed-up from case-insensitive patterns that start with
`\\b`, so each rule scanned every position of every draft. This keeps the whole check fast
enough to run on every draft (see benchmarks/guardrails.py).
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

try:  # Python 3.11+
    from re import _compiler, _constants as C, _parser as parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_compile as _compiler  # type: ignore[no-redef]
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
    return split_alternatives(pattern, limit)[0]


def split_alternatives(pattern: str, limit: int = 64, loose: bool = False) -> tuple[tuple[Requirement, ...], tuple[parser.SubPattern, ...]]:
    """required_alternatives(), and each alternative as a parsed pattern of its own (for
    `_compiler.compile`), in the same order. `p` matches exactly as "alt1|alt2|..." would:
    an alternation is only taken apart where nothing before it in the match can backtrack
    (`a*(?:a|b)` on "aab" is "aab", `a*a|a*b` is "aa"), so the first alternative to match at
    an offset is the one `p` takes there. Both empty when some alternative requires nothing.
    `loose`: single ASCII characters count too ("[" and "]", "@" and "."): for a rule that would
    otherwise run on every text."""
    try:
        parsed = parser.parse(pattern, re.IGNORECASE)
    except re.error:
        return (), ()
    requirements, parts = [], []
    _MEMO.pieces = {}
    try:
        alternatives = _alternatives(list(parsed), parsed.state, limit)
    finally:
        _MEMO.pieces = None
    for alternative in alternatives:
        sets = sorted({c for c in alternative.sets if all(_selective(s) for s in c) or loose}, key=_score, reverse=True)
        if not sets:
            return (), ()
        requirements.append(tuple(sets))
        parts.append(parser.SubPattern(parsed.state, alternative.items))
    return tuple(requirements), tuple(parts)


@dataclass
class _Alternative:
    sets: list[frozenset[str]] = field(default_factory=list)  # literal sets a match must each hit
    items: list = field(default_factory=list)  # the parsed pattern of this alternative
    rigid: bool = True  # its items so far match in one way only: nothing to backtrack into
    pending: Callable[[Sequence], bool] | None = None  # a last item like \s+ is rigid if what follows settles it

    def then(self, other: "_Alternative") -> "_Alternative":
        return _Alternative(self.sets + other.sets, self.items + other.items, self.rigid and other.rigid, other.pending)


def _alternatives(items: Sequence, state, limit: int, following: Sequence = ()) -> list[_Alternative]:
    """A sequence as a disjunction of conjunctions, expanding alternations while the number of
    alternatives stays within `limit` (beyond it an alternation counts as the union of its parts).
    `following`: what comes after the sequence in the pattern."""
    alts = [_Alternative()]
    run: list[str] = [""]

    def flush() -> None:
        if all(run):
            literal = frozenset(r.casefold() for r in run)
            for alt in alts:
                alt.sets.append(literal)
        run[:] = [""]

    def append(item, after: Sequence) -> None:
        rigid = _rigid(item, state, after)
        settles = None if rigid else _settles(item, state)
        for alt in alts:
            alt.items.append(item)
            if not rigid:
                alt.pending = settles if alt.rigid else None
                alt.rigid = alt.rigid and settles is not None

    for i, (op, av) in enumerate(items):
        rest = [*items[i:], *following]
        for alt in alts:
            if alt.pending is not None:
                alt.rigid, alt.pending = alt.pending(rest), None
        after = rest[1:]
        if op is C.LITERAL:
            run[:] = [r + chr(av) for r in run]
            append((op, av), after)
            continue
        exact = _exact([(op, av)])
        if exact and len(run) * len(exact) <= 32:
            run[:] = [r + e for r in run for e in sorted(exact)]
            append((op, av), after)
            continue
        flush()
        inner: list[_Alternative] | None = None
        if op is C.SUBPATTERN:
            group, add_flags, del_flags, body = av
            inner = [_Alternative(a.sets, [(C.SUBPATTERN, (group, add_flags, del_flags, parser.SubPattern(state, a.items)))],
                                  a.rigid) for a in _alternatives(list(body), state, limit, after)]
        elif op is C.BRANCH:
            inner = [alt for branch in av[1] for alt in _alternatives(list(branch), state, limit, after)]
        # only behind a rigid prefix: with something to backtrack into before it, `re` would try the
        # prefix's other ways with the first branch before it tried the second branch
        count = sum(len(inner) if alt.rigid else 1 for alt in alts) if inner is not None else 0
        if inner is not None and count > len(alts) and count <= (limit * 8 if len(alts) == 1 else limit):
            whole = _Alternative(_candidates([(op, av)]), [(op, av)], _rigid((op, av), state, after))
            alts = [a.then(b) for a in alts for b in (inner if a.rigid else [whole])]
            continue
        for alt in alts:
            alt.sets.extend(_candidates([(op, av)]))
        append((op, av), after)
    flush()
    for alt in alts:
        if alt.pending is not None:
            alt.rigid, alt.pending = alt.pending(list(following)), None
    return alts


# The analysis asks the same questions of the same piece of pattern many times over (a group's
# literals are read for the group, for each alternative through it, and for what precedes each
# item); within one split_alternatives() call each is answered once. Keyed by the pieces' identity,
# and each entry holds its pieces, so no id is reused while the memo lives. Per thread: rules and
# cues may be compiled from two threads at start-up.
_MEMO = threading.local()


def _once_per_pattern(fn):
    @functools.wraps(fn)
    def memoised(items: Sequence):
        memo = getattr(_MEMO, "pieces", None)
        if memo is None:
            return fn(items)
        key = (fn, *((op, av if isinstance(av, int) else id(av)) for op, av in items))
        if (hit := memo.get(key)) is None:
            hit = memo[key] = (fn(items), list(items))
        return list(hit[0]) if isinstance(hit[0], list) else hit[0]  # lists are extended by callers
    return memoised


def _rigid(item, state, following: Sequence = ()) -> bool:
    """Whether a piece of pattern, with `following` after it, can match at an offset in one way
    only, so that nothing after it can send `re` back to try another."""
    op, av = item
    if op in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY, C.AT, C.ASSERT, C.ASSERT_NOT):
        return True  # lookarounds are atomic in `re`
    if op is C.SUBPATTERN:
        return _rigid_sequence(list(av[-1]), state, following)
    if (hasattr(C, "ATOMIC_GROUP") and op is C.ATOMIC_GROUP) or (hasattr(C, "POSSESSIVE_REPEAT") and op is C.POSSESSIVE_REPEAT):
        return True
    if op in _REPEATS:
        low, high, body = av
        return low == high == 1 and _rigid_sequence(list(body), state, following) or (
            low == high and _rigid_sequence(list(body), state))
    if op is C.BRANCH:  # branches of which at most one can match at an offset: no literal start begins another
        options = _exact([item])
        if options is None:
            branches = [list(b) for b in av[1]]
            if not all(_rigid_sequence(b, state, following) for b in branches):
                return False
            options = {_leading_literal(b) for b in branches}
            if "" in options or len(options) < len(branches):
                return False
        folded = sorted({o.casefold() for o in options})
        return all(not b.startswith(a) for a, b in zip(folded, folded[1:]))
    return False


def _leading_literal(items: list) -> str:
    out = []
    for op, av in items:
        if op is not C.LITERAL:
            break
        out.append(chr(av))
    return "".join(out)


def _rigid_sequence(items: list, state, following: Sequence = ()) -> bool:
    for i, item in enumerate(items):
        rest = [*items[i + 1:], *following]
        if _rigid(item, state, rest):
            continue
        settles = _settles(item, state)
        if settles is None or not settles(rest):
            return False
    return True


_CHAR_CLASSES: dict[str, re.Pattern] = {}


def _char_class(key: str, state, body: list) -> re.Pattern:
    """One character class (`\\s`, `[\\w.%+-]`) compiled once per process: every rule repeats the same few.
    Keyed with the pattern's own flags too: under `(?a)` a `\\w` is another class."""
    key = f"{state.flags}:{key}"
    if (compiled := _CHAR_CLASSES.get(key)) is None:
        compiled = _CHAR_CLASSES[key] = _compiler.compile(parser.SubPattern(state, body), re.IGNORECASE)
    return compiled


def _settles(item, state) -> Callable[[Sequence], bool] | None:
    """For a repeat whose only freedom is how far it reaches (`\\s+`, `[\\w.]*`, `(?:really\\s+)?`):
    a test of whether what follows it leaves it one way to match. It does when what follows can
    only start with characters the repeat cannot take (or, for an optional part, start with)."""
    op, av = item
    if op not in _REPEATS:
        return None
    low, high, body = av[0], av[1], list(av[2])
    if len(body) == 1 and body[0][0] in (C.IN, C.LITERAL, C.NOT_LITERAL):
        char_class = _char_class(repr(body[0]), state, body)
        return lambda following: (first := _first_chars(following)) is not None and not any(map(char_class.match, first))
    starts = _first_chars(body)
    if low == 0 and high == 1 and starts is not None:
        folded = {c.casefold() for c in starts}
        return lambda following: ((first := _first_chars(following)) is not None and folded.isdisjoint(c.casefold() for c in first)
                                  and _rigid_sequence(body, state, following))
    return None


def _first_chars(items: Sequence) -> frozenset[str] | None:
    """The characters a match of `items` must start with, when a few known ones (None: unknown, or
    it can be empty). An optional part adds its own and lets the next item's count too."""
    found: set[str] = set()
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # zero-width: the next item starts here
        if op is C.LITERAL:
            return frozenset(found | {chr(av)})
        if op is C.IN:
            chars = _char_set(av)
            return None if chars is None else frozenset(found | chars)
        if op is C.SUBPATTERN:
            inner = _first_chars(list(av[-1]))
            return None if inner is None else frozenset(found | inner)
        if op is C.BRANCH:
            parts = [_first_chars(list(b)) for b in av[1]]
            return None if any(p is None for p in parts) else frozenset(found.union(*parts))
        if op in _REPEATS:
            inner = _first_chars(list(av[2]))
            if inner is None:
                return None
            if av[0] >= 1:
                return frozenset(found | inner)
            found |= inner  # may be skipped: what comes next can start the match too
            continue
        return None
    return None


def _selective(literal: str) -> bool:
    """Worth a lookup: two characters or more, or one that is not ASCII (an emoji, a Han character)."""
    return len(literal) >= 2 or (len(literal) == 1 and not literal.isascii())


@_once_per_pattern
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


ASCII_DIGITS = "0123456789"  # what \d stands for here: the trigger index writes other digits as ASCII ones


def _digits(body: Sequence) -> bool:
    """Whether a repeat's body is one digit: `\d` or `[0-9]`."""
    if len(body) != 1 or body[0][0] is not C.IN:
        return False
    return list(body[0][1]) in ([(C.CATEGORY, C.CATEGORY_DIGIT)], [(C.RANGE, (48, 57))])


def _score(options: frozenset[str]) -> tuple[int, int]:
    return (min(len(s) for s in options), -len(options))  # long and few: fewest false candidates


def _required(items: Sequence) -> frozenset[str] | None:
    candidates = _candidates(items)
    return max(candidates, key=_score) if candidates else None


@_once_per_pattern
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
            elif low >= 2 and _digits(body):  # "\d{4}" needs three digits in a row: one of "000" ... "999"
                sub = frozenset(map("".join, itertools.product(ASCII_DIGITS, repeat=min(low, 3))))
            else:
                sub = _required(body) if low >= 1 else None
        elif op is C.BRANCH:
            branches = [_required(list(b)) for b in av[1]]
            sub = None if any(b is None for b in branches) else frozenset().union(*branches)
        elif op is C.ASSERT:  # (?=...) or (?<=...): not in the match, but in the text, which is what is looked up
            sub = _required(list(av[1]))
        # ANY, AT, negative lookarounds, categories, ...: nothing guaranteed. Conservative is always correct.
        if sub:
            candidates.append(sub)
    flush()
    return candidates
