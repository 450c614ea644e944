"""The trigger index: from one Aho-Corasick pass over a case-folded text, the rules (and which of
each rule's alternatives) that might match it. What each alternative requires is read from the
rule's pattern by guardrails/triggers.py; a rule none of whose alternatives' requirements hold in
the text cannot match it and is not run.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable, Sequence

import ahocorasick

from guardrails.triggers import Requirement


_OTHER_DIGIT = re.compile(r"[^\W0-9_](?<=\d)")  # \d that is not 0-9: Arabic-Indic, full-width, ...


class TriggerIndex:
    """Maps a text to the rules that might match it, and to which of each rule's alternatives
    might: those whose every required set has a string in the text, found in one Aho-Corasick pass.

    This runs on every draft, so the bookkeeping is done with Python ints as bit sets, where one `|`
    or `&` does in C what loops over sets did in Python. An entry is one alternative of a rule; each
    literal maps to one int with a bit for every entry whose rarest set holds it, one for every
    entry whose second-rarest set holds it, and one for every further set it is in. OR-ing the
    values of every literal found, then AND-ing the first two regions, gives the entries whose two
    rarest sets hold (few: most literals are rare, or only one of an entry's sets); those with more
    sets are woken when the rest hold too."""

    def __init__(self, requirements: Iterable[Sequence[Requirement] | None], sample: Iterable[str] = ()):
        """`sample`: case-folded texts like those the index will see (the rules' own examples). Each
        alternative is then looked at through the set of its literals that is rarest there: "that"
        or "you" would make it a candidate in most drafts, "fault" in few."""
        self.always: list[int] = []
        entries: list[tuple[int, int, tuple[frozenset[str], ...]]] = []  # (rule, which alternative, its sets)
        self._alternatives: dict[int, int] = {}  # rule -> how many alternatives it has
        for rule, alternatives in enumerate(requirements):
            if not alternatives:
                self.always.append(rule)
                continue
            self._alternatives[rule] = len(alternatives)
            entries.extend((rule, n, tuple(alternative)) for n, alternative in enumerate(alternatives))
        seen = _document_frequency({word for _, _, sets in entries for s in sets for word in s}, sample)
        if seen:  # the rarest set first; stable, so without a sample the most selective (triggers.py) stays first
            entries = [(rule, n, tuple(sorted(sets, key=lambda s: sum(seen.get(w, 0) for w in s))))
                       for rule, n, sets in entries]
        set_bit: dict[frozenset[str], int] = {}
        for _, _, sets in entries:
            for s in sets[2:]:
                set_bit.setdefault(s, 1 << len(set_bit))
        # bits: [the sets past each entry's second (S)][entry e's first set holds (E)][its second set holds (E)]
        self._shift, n = len(set_bit), len(entries)
        value: dict[str, int] = {}  # literal -> the bits it sets
        for s, bit in set_bit.items():
            for word in s:
                value[word] = value.get(word, 0) | bit
        for e, (_, _, sets) in enumerate(entries):
            for region, s in ((0, sets[0]), (n, sets[1] if len(sets) > 1 else sets[0])):
                for word in s:
                    value[word] = value.get(word, 0) | 1 << (self._shift + region + e)
        self._size = n
        # an entry whose first two sets hold needs each of its other sets to hold as well
        self._needs = [functools.reduce(operator.or_, (set_bit[s] for s in sets[2:]), 0) for _, _, sets in entries]
        self._entry = [(rule, n) for rule, n, _ in entries]  # numbered in rule order, alternatives in theirs
        self._sets_mask, self._entries_mask = (1 << self._shift) - 1, (1 << n) - 1
        self.automaton = ahocorasick.Automaton()
        for word, bits in value.items():
            self.automaton.add_word(word, bits)
        self.empty = not value
        if not self.empty:
            self.automaton.make_automaton()

    def candidates(self, folded: str) -> list[int]:
        """Rule indices in their original order; `folded` is the text after str.casefold()."""
        return [rule for rule, _ in self.woken(folded)]

    def _bits(self, text: str) -> int:
        """The OR of the values of every literal occurrence in `text` (in C: no Python loop)."""
        return functools.reduce(operator.or_, map(operator.itemgetter(1), self.automaton.iter(text)), 0)

    def woken(self, folded: str) -> list[tuple[int, tuple[int, ...] | None]]:
        """(rule, the indices of its alternatives that might match, None for all of them), in rule order."""
        out: list[tuple[int, tuple[int, ...] | None]] = [(rule, None) for rule in self.always]
        if self.empty:
            return out
        if not folded.isascii() and _OTHER_DIGIT.search(folded):
            # a rule's "\d{3}" is looked up as "000" ... "999" (guardrails/triggers.py): "１２３" must wake it too
            folded = _OTHER_DIGIT.sub(lambda m: str(int(m.group(0))), folded)
        bits = self._bits(folded)
        if not folded.isascii() and ("ı" in folded or "\u0307" in folded):
            # `re` matches "i" to "ı" and "İ" (folded "i̇"), which folding keeps apart: "arrıved" must still
            # wake a rule that needs "arrived"
            bits |= self._bits(folded.replace("ı", "i").replace("\u0307", ""))
        present, first = bits & self._sets_mask, bits >> self._shift
        looked_at = first & (first >> self._size) & self._entries_mask
        needs, entry, total = self._needs, self._entry, self._alternatives
        rule, alts = -1, []
        while looked_at:  # lowest bit first: entries in rule order
            low = looked_at & -looked_at
            looked_at ^= low
            e = low.bit_length() - 1
            if needs[e] and needs[e] & present != needs[e]:
                continue
            r, n = entry[e]
            if r != rule:
                if alts:
                    out.append((rule, None if len(alts) == total[rule] else tuple(alts)))
                rule, alts = r, []
            alts.append(n)
        if alts:
            out.append((rule, None if len(alts) == total[rule] else tuple(alts)))
        if self.always:
            out.sort(key=lambda pair: pair[0])
        return out


def _document_frequency(words: set[str], sample: Iterable[str]) -> dict[str, int]:
    """In how many of the sample texts each word occurs."""
    if not words:
        return {}
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    counts: dict[str, int] = {}
    for text in sample:
        for word in {word for _, word in automaton.iter(text)}:
            counts[word] = counts.get(word, 0) + 1
    return counts
