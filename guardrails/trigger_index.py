"""The trigger index: from one Aho-Corasick pass over a case-folded text, the rules (and which of
each rule's alternatives) that might match it. What each alternative requires is read from the
rule's pattern by guardrails/triggers.py; a rule none of whose alternatives' requirements hold in
the text cannot match it and is not run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import ahocorasick

from guardrails.triggers import Requirement


class TriggerIndex:
    """Maps a text to the rules that might match it, and to which of each rule's alternatives
    might: those whose every required set has a string in the text, found in one Aho-Corasick pass."""

    def __init__(self, requirements: Iterable[Sequence[Requirement] | None]):
        self.always: list[int] = []
        self.entries: list[tuple[int, tuple[frozenset[int], ...]]] = []  # (rule, its alternative as literal ids)
        self.by_first: dict[int, list[int]] = {}  # literal id -> entries whose most selective set holds it
        self._rule_of: list[int] = []  # entry -> its rule
        self._alt_of: list[int] = []  # entry -> which of its rule's alternatives it is
        self._alternatives: dict[int, int] = {}  # rule -> how many alternatives it has
        ids: dict[str, int] = {}
        for rule, alternatives in enumerate(requirements):
            if not alternatives:
                self.always.append(rule)
                continue
            self._alternatives[rule] = len(alternatives)
            for n, alternative in enumerate(alternatives):
                as_ids = tuple(frozenset(ids.setdefault(word, len(ids)) for word in s) for s in alternative)
                for word_id in as_ids[0]:
                    self.by_first.setdefault(word_id, []).append(len(self.entries))
                self.entries.append((rule, as_ids))
                self._rule_of.append(rule)
                self._alt_of.append(n)
        # The same entries, laid out for woken(), which runs on every text, so that its work is done by
        # C set operations rather than Python loops: per literal, the entries it wakes on its own, and
        # the entries it wakes when their other sets (as set ids) are all present too.
        set_ids: dict[frozenset[int], int] = {}
        self._sets_of: dict[int, tuple[int, ...]] = dict.fromkeys(ids.values(), ())  # literal id -> the sets it is in
        for _, sets in self.entries:
            for s in sets[1:]:  # a first set is known to hold when its entry is looked at
                if s not in set_ids:
                    set_ids[s] = len(set_ids)
                    for word_id in s:
                        self._sets_of[word_id] = (*self._sets_of.get(word_id, ()), set_ids[s])
        self._wakes: dict[int, frozenset[int]] = {}
        self._pairs: dict[int, tuple[tuple[int, ...], tuple[frozenset[int], ...]]] = {}
        for word_id, entries in self.by_first.items():
            wakes = frozenset(e for e in entries if len(self.entries[e][1]) == 1)
            rest = [(e, frozenset(set_ids[s] for s in self.entries[e][1][1:])) for e in entries if e not in wakes]
            if wakes:
                self._wakes[word_id] = wakes
            if rest:
                self._pairs[word_id] = (tuple(e for e, _ in rest), tuple(needs for _, needs in rest))
        self._keys = frozenset(self.by_first)
        self.automaton = ahocorasick.Automaton()
        for word, word_id in ids.items():
            self.automaton.add_word(word, word_id)
        self.empty = not ids
        if not self.empty:
            self.automaton.make_automaton()

    def candidates(self, folded: str) -> list[int]:
        """Rule indices in their original order; `folded` is the text after str.casefold()."""
        return [rule for rule, _ in self.woken(folded)]

    def woken(self, folded: str) -> list[tuple[int, tuple[int, ...] | None]]:
        """(rule, the indices of its alternatives that might match, None for all of them), in rule order."""
        if self.empty:
            return [(rule, None) for rule in self.always]
        found = {word_id for _end, word_id in self.automaton.iter(folded)}
        if not folded.isascii() and ("ı" in folded or "\u0307" in folded):
            # `re` matches "i" to "ı" and "İ" (folded "i̇"), which folding keeps apart: "arrıved" must still
            # wake a rule that needs "arrived"
            found.update(word_id for _end, word_id in self.automaton.iter(folded.replace("ı", "i").replace("\u0307", "")))
        hit: set[int] = set()
        wakes, pairs = self._wakes, self._pairs
        present = set().union(*map(self._sets_of.__getitem__, found))  # the sets with a literal in the text
        for word_id in self._keys.intersection(found):
            if word_id in wakes:
                hit |= wakes[word_id]
            if word_id in pairs:
                entries, needs = pairs[word_id]
                hit.update(itertools.compress(entries, map(present.issuperset, needs)))
        out: list[tuple[int, tuple[int, ...] | None]] = [(rule, None) for rule in self.always]
        total, alt_of = self._alternatives, self._alt_of
        # entries are numbered in rule order, each rule's alternatives in theirs
        for rule, entries in itertools.groupby(sorted(hit), self._rule_of.__getitem__):
            alts = tuple(map(alt_of.__getitem__, entries))
            out.append((rule, None if len(alts) == total[rule] else alts))
        if self.always:
            out.sort(key=lambda pair: pair[0])
        return out
