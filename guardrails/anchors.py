"""Where a match of a rule's pattern can start, so that the regex runs only there.

The trigger index (guardrails/triggers.py) says which rules can match a text; this says where.
Python's `re` has no prefix speed-up for case-insensitive patterns that open with `\\b` or a
lookbehind, so a search tries the whole pattern at every offset of the text. When every match
must start with one of a few literals (`\\b(?:paid|charged)\\s+...` starts with "paid" or
"charged" at a word start), with a digit, or at the text's start, trying the pattern only at
those offsets with `rx.match(text, pos)` gives the very matches `search` and `finditer` give:
`match` sees the text before `pos`, so lookbehinds and `\\b` behave as they do in a search.
Like the triggers, the anchors are read from the pattern, never written by hand.

The offsets are found in the case-folded text, which has the text's offsets when folding maps
each character to one (`text_kind`). There, `re`'s case-insensitive match of two characters implies
equal folds, and folding keeps what is a word character and a digit (checked for every code
point by tests/test_anchors.py), so a literal, `\\b` or `\\d` found in the folded text is found
where the case-insensitive pattern would see it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

from guardrails.triggers import _REPEATS, C, _exact, parser

try:  # Python 3.11+
    from re import _compiler  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_compile as _compiler  # type: ignore[no-redef]

# Characters whose case-insensitive match in `re` is not their case fold (`i` matches the dotless
# `ı`, whose fold is itself): a text holding one is searched in full.
try:
    from re._casefix import _EXTRA_CASES  # type: ignore[import-not-found]
    _UNFOLDED = frozenset(chr(c) for k, others in _EXTRA_CASES.items() for c in (k, *others) if c > 127)
except ImportError:  # pragma: no cover
    _UNFOLDED = frozenset("ıſµςϐϑϕϖϰϱϵιΐΰẛﬅﬆ")
MAX_MISSES = 16  # after this many places tried in vain, one search over the rest is cheaper
_WORD_CHAR = re.compile(r"\w")
_BEGIN, _DIGIT = object(), object()  # starts beside literal strings: offset 0, any digit
_BEGINS = {C.AT_BEGINNING, C.AT_BEGINNING_STRING}


class _NoAnchor(Exception):
    pass


class Anchors:
    """Where a match can start: at offset 0 (`begin`), or where a finder matches the case-folded
    text. Finders match one character, the first of a literal or a digit (the rest of the literal
    in a lookahead), so that searching on from the next offset finds starts that overlap."""

    __slots__ = ("begin", "ascii_finder", "finder")

    def __init__(self, literals: frozenset[tuple[bool, str]], digit: tuple[bool, ...], begin: bool):
        self.begin = begin
        # In an ASCII text a digit is one of 0-9, so digits join the literals and every branch opens
        # with a plain character: `re` then skips straight to the characters that can start one.
        # Elsewhere \d is Unicode's, and a \d branch costs that skip; only non-ASCII texts pay it.
        digits = {(word_start, d) for word_start in digit for d in "0123456789"}
        self.ascii_finder = _finder(literals | digits)
        self.finder = _finder(literals, ("\\d(?<=\\b\\d)" if False not in digit else "\\d") if digit else None)

    def positions(self, norm: str, folded: str) -> list[int]:
        """Every offset where a match may start, ascending (what Matcher tries, for tests and tools)."""
        finder = self.ascii_finder if norm.isascii() else self.finder
        out = [0] if self.begin else []
        pos = 1 if self.begin else 0
        while finder is not None and (m := finder.search(folded, pos)) is not None:
            out.append(m.start())
            pos = m.start() + 1
        return out


def _finder(literals: frozenset[tuple[bool, str]], extra: str | None = None) -> re.Pattern | None:
    """A regex matching the first character of every (word_start, literal) occurrence. `re` tries a
    branch's alternatives one by one at each offset, so the literals are grouped by first character,
    and a literal that a kept one is a prefix of is dropped (where it occurs, so does the shorter).
    A word start is a lookbehind after the first character, not a leading \\b, which would cost
    `re` its skip to the characters that can start a branch."""
    kept: list[tuple[bool, str]] = []
    for word_start, lit in sorted(literals, key=lambda x: (len(x[1]), x[0], x[1])):  # shorter, then anywhere, first
        if not any(lit.startswith(k) and (word_start or not k_word_start) for k_word_start, k in kept):
            kept.append((word_start, lit))
    groups: dict[tuple[str, bool], list[str]] = {}
    for word_start, lit in kept:
        groups.setdefault((lit[0], word_start), []).append(lit[1:])
    branches = [] if extra is None else [extra]
    for (head, word_start), rests in sorted(groups.items()):
        head = re.escape(head)
        after = "|".join(map(re.escape, rests))
        branches.append(head + (f"(?<=\\b{head})" if word_start else "") + (f"(?={after})" if all(rests) else ""))
    return re.compile("|".join(branches)) if branches else None


def start_anchors(pattern: str | parser.SubPattern) -> Anchors | None:
    """What every match of `pattern` (case-insensitive; a string, or already parsed) starts with;
    None when it cannot be told (a match may start with any letter, or be empty)."""
    try:
        parsed = parser.parse(pattern, re.IGNORECASE) if isinstance(pattern, str) else pattern
        flags = parsed.state.flags
        starts: set[tuple[bool, object]] = set()
        # \b in the finder is Unicode's; under (?a) or (?L) the pattern's own \b may differ from it
        if _first(list(parsed), flags, starts, False, not flags & (re.ASCII | re.LOCALE)):
            return None  # can match the empty string, anywhere
    except (_NoAnchor, re.error, RecursionError):
        return None
    literals = set()
    for word_start, start in starts:
        if isinstance(start, str):
            if any(len(c.casefold()) != 1 or c in _UNFOLDED for c in start):
                return None
            folded = start.casefold()
            literals.add((word_start and _WORD_CHAR.match(folded) is not None, folded))
    digit = tuple(sorted({word_start for word_start, start in starts if start is _DIGIT}))
    return Anchors(frozenset(literals), digit, (False, _BEGIN) in starts)


def _first(items: Sequence, flags: int, out: set, word_start: bool, bounds: bool) -> bool:
    """Adds to `out` what a match of the sequence can start with, as (after a `\\b`?, start);
    returns whether the sequence can match the empty string."""
    for i, (op, av) in enumerate(items):
        if op is C.LITERAL:
            run = [""]  # the literal run from here: a longer anchor is found in fewer places
            for item in items[i:]:
                exact = _exact([item])
                if not exact or "" in exact or len(run) * len(exact) > 32:
                    break
                run = [r + e for r in run for e in sorted(exact)]
            out.update((word_start, r) for r in run)
            return False
        if op is C.AT:
            if av in _BEGINS and not (av is C.AT_BEGINNING and flags & re.MULTILINE):
                out.add((False, _BEGIN))
                return False
            word_start = word_start or (bounds and av is C.AT_BOUNDARY)
            continue  # zero-width: what follows starts here
        if op in (C.ASSERT, C.ASSERT_NOT):
            # `(?<![\w/.])`: no word character before, so before a word character this is a \b
            word_start = word_start or (bounds and op is C.ASSERT_NOT and _after_no_word_char(av))
            continue
        if op is C.IN:
            out.update((word_start, c) for c in _start_chars(av))
            return False
        if op is C.SUBPATTERN:
            if not _first(list(av[-1]), (flags | av[1]) & ~av[2], out, word_start, bounds):
                return False
        elif hasattr(C, "ATOMIC_GROUP") and op is C.ATOMIC_GROUP:
            if not _first(list(av), flags, out, word_start, bounds):
                return False
        elif op is C.BRANCH:
            nullable = [_first(list(branch), flags, out, word_start, bounds) for branch in av[1]]
            if not any(nullable):
                return False
        elif op in _REPEATS:
            low, high, body = av
            if high != 0 and not _first(list(body), flags, out, word_start, bounds) and low >= 1:
                return False
        else:  # any character, a negated class, a back-reference...: anywhere
            raise _NoAnchor
    return True


def _after_no_word_char(av) -> bool:
    """Whether a negative assertion is a lookbehind of one character from a class that holds `\w`."""
    direction, sub = av
    items = list(sub)
    return direction == -1 and len(items) == 1 and items[0][0] is C.IN \
        and (C.CATEGORY, C.CATEGORY_WORD) in items[0][1] and (C.NEGATE, None) not in items[0][1]


def _start_chars(items) -> set:
    chars: set = set()
    for op, av in items:
        if op is C.LITERAL:
            chars.add(chr(av))
        elif op is C.RANGE and av[1] - av[0] < 64:
            chars.update(map(chr, range(av[0], av[1] + 1)))
        elif op is C.CATEGORY and av is C.CATEGORY_DIGIT:
            chars.add(_DIGIT)
        else:
            raise _NoAnchor
    return chars


ALIGNED, ASCII = 1, 2  # text_kind(): 0 when offsets in the folded text are not the text's


def text_kind(norm: str, folded: str) -> int:
    """ASCII, ALIGNED when offsets in the case-folded text are offsets in the text and folding
    agrees with `re` there, else 0 (then every pattern is searched in full)."""
    if norm.isascii():
        return ASCII
    return ALIGNED if len(norm) == len(folded) and _UNFOLDED.isdisjoint(norm) else 0


class Matcher:
    """A rule's compiled pattern, with search() and finditer() that return exactly what
    `rx.search(norm)` and `list(rx.finditer(norm))` return, doing less work to get there.
    `kind` is text_kind(norm, folded)."""

    __slots__ = ("rx", "anchors", "relaxed", "core")

    def __init__(self, rx: re.Pattern, parsed: parser.SubPattern | None = None):
        """`parsed`: the pattern rx was compiled from, when it was compiled from a parsed one."""
        self.rx = rx
        self.anchors = start_anchors(rx.pattern if parsed is None else parsed)
        self.relaxed = None if self.anchors is not None else _relaxed(rx.pattern if parsed is None else parsed, rx.flags)
        self.core = None if self.anchors is not None else _core(rx.pattern if parsed is None else parsed, rx.flags)

    def search(self, norm: str, folded: str, kind: int) -> re.Match | None:
        return next(self._scan(norm, folded, kind), None)

    def finditer(self, norm: str, folded: str, kind: int) -> list[re.Match]:
        return list(self._scan(norm, folded, kind))

    def _scan(self, norm: str, folded: str, kind: int) -> Iterator[re.Match]:
        """rx's matches in finditer's order, found lazily (search() takes only the first): re's
        match() tried only where the folded text has one of the pattern's start anchors."""
        anchors = self.anchors
        if anchors is None or not kind:
            yield from self._scan_from(norm, 0, 0)
            return
        match, pos, given = self.rx.match, 0, 0
        if anchors.begin:
            if (m := match(norm, 0)) is not None:
                if m.end() == 0:
                    yield from self.rx.finditer(norm)  # an empty match: finditer's rules for those are subtle
                    return
                yield m
                given, pos = 1, m.end()
            else:
                pos = 1
        finder = anchors.ascii_finder if kind == ASCII else anchors.finder
        if finder is None:
            return
        find, misses = finder.search, 0
        while (start := find(folded, pos)) is not None:
            pos = start.start()
            if (m := match(norm, pos)) is not None:
                if m.end() == pos:  # cannot be (a literal or a digit starts every match), but if it were
                    yield from itertools.islice(self.rx.finditer(norm), given, None)
                    return
                yield m
                given, pos = given + 1, m.end()  # finditer goes on from a match's end
                continue
            misses += 1
            if misses == MAX_MISSES:  # no match starts before pos + 1: plain searches do the rest
                yield from self._scan_from(norm, pos + 1, given)
                return
            pos += 1

    def _search(self, norm: str, pos: int) -> re.Match | None:
        if self.core is not None and self.core.search(norm, pos) is None:
            return None  # what every match holds is not there: no need to try the whole pattern everywhere
        if self.relaxed is not None:
            # every match of rx is a match of the relaxed pattern at the same offset, so rx's first
            # match cannot start before the relaxed one's
            hint = self.relaxed.search(norm, pos)
            if hint is None:
                return None
            pos = hint.start()
        return self.rx.search(norm, pos)

    def _scan_from(self, norm: str, pos: int, given: int) -> Iterator[re.Match]:
        """The matches finditer would give from `pos` on, a match having just ended there and
        `given` matches having been yielded before."""
        while (m := self._search(norm, pos)) is not None:
            if m.end() == m.start():  # an empty match: finditer's rules for those are subtle
                yield from itertools.islice(self.rx.finditer(norm), given, None)
                return
            yield m
            given, pos = given + 1, m.end()


def _relaxed(pattern: str | parser.SubPattern, flags: int) -> re.Pattern | None:
    """The pattern without its costly top-level lookaheads (those that repeat: tried at every
    offset, `(?![\\w.]*(?:support|help)[\\w.]*@)` scans ahead each time), when it has any. It
    matches wherever the pattern does, and is a cheap way to find where to start the real search."""
    try:
        parsed = parser.parse(pattern, flags) if isinstance(pattern, str) else pattern
    except re.error:
        return None
    kept = [item for item in parsed.data if not _costly_lookahead(item)]
    # a capturing group in a dropped lookahead would renumber the others: leave such patterns be
    if len(kept) in (0, len(parsed.data)) or parsed.state.groups > 1:
        return None
    return _compiler.compile(parser.SubPattern(parsed.state, kept), flags)


def _core(pattern: str | parser.SubPattern, flags: int) -> re.Pattern | None:
    """The pattern from its first literal character on, at the top level, when something else comes
    first (`\\b[\\w.+-]+@[\\w-]+...` -> `@[\\w-]+...`): every match of the pattern holds a match of
    it, and `re` skips straight to a leading literal, where the whole pattern is tried at every
    offset. A cheap way to tell that there is no match at all, which is nearly always the answer."""
    try:
        parsed = parser.parse(pattern, flags) if isinstance(pattern, str) else pattern
    except re.error:
        return None
    if parsed.state.groups > 1:  # a back-reference into the part left out would not compile
        return None
    for i, (op, _av) in enumerate(parsed.data):
        if op is C.LITERAL:
            return _compiler.compile(parser.SubPattern(parsed.state, parsed.data[i:]), flags) if i else None
    return None


def _costly_lookahead(item) -> bool:
    op, av = item
    return op in (C.ASSERT, C.ASSERT_NOT) and av[0] == 1 and _repeats(av[1])


def _repeats(items) -> bool:
    for op, av in items:
        if op in _REPEATS:
            return True
        if op is C.SUBPATTERN:
            inner = [av[-1]]
        elif op is C.BRANCH:
            inner = av[1]
        elif op in (C.ASSERT, C.ASSERT_NOT):
            inner = [av[1]]
        elif op is C.GROUPREF_EXISTS:
            inner = [branch for branch in av[1:] if branch]
        elif hasattr(C, "ATOMIC_GROUP") and op is C.ATOMIC_GROUP:
            inner = [av]
        else:
            continue
        if any(_repeats(sub) for sub in inner):
            return True
    return False




class SplitMatcher:
    """A rule's matcher that can run only some of its top-level alternatives: those the trigger
    index woke up (guardrails/triggers.py `split_alternatives`). A big alternation, tried whole at
    every place one of its many first words occurs, becomes the one or two small patterns that can
    match at all. Same results as the whole pattern: search() takes the leftmost match (the earlier
    alternative on a tie, as `re` would); finditer() runs one alternative alone only when it is the
    only one that matches anywhere, else the whole pattern."""

    __slots__ = ("whole", "parts", "_matchers", "_flags")

    def __init__(self, rx: re.Pattern, parts: Sequence[parser.SubPattern] = ()):
        self.whole = Matcher(rx)
        self.parts, self._flags = tuple(parts), rx.flags
        self._matchers: list[Matcher | None] = [None] * len(self.parts)  # compiled on first use: most never wake

    def _part(self, i: int) -> Matcher:
        if (matcher := self._matchers[i]) is None:
            matcher = self._matchers[i] = Matcher(_compiler.compile(self.parts[i], self._flags), self.parts[i])
        return matcher

    def search(self, norm: str, folded: str, kind: int, which: Sequence[int] | None = None) -> re.Match | None:
        if which is None or not self.parts:
            return self.whole.search(norm, folded, kind)
        best = None
        for i in which:  # ascending: on a tie the earlier alternative, the one `re` tries first, stays
            m = self._part(i).search(norm, folded, kind)
            if m is not None and (best is None or m.start() < best.start()):
                best = m
        return best

    def finditer(self, norm: str, folded: str, kind: int, which: Sequence[int] | None = None) -> list[re.Match]:
        if which is None or not self.parts:
            return self.whole.finditer(norm, folded, kind)
        matching = []  # (first match, the rest of that alternative's scan) for each alternative that matches
        for i in which:
            scan = self._part(i)._scan(norm, folded, kind)
            if (first := next(scan, None)) is not None:
                matching.append((first, scan))
        if not matching:
            return []
        if len(matching) == 1:  # the only alternative that matches anywhere: its matches are the pattern's
            first, scan = matching[0]
            return [first, *scan]
        return self.whole.finditer(norm, folded, kind)
