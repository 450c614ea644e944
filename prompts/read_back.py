"""What counts as a model reading its prompt back instead of answering: a sentence that is an FAQ's
title (the customer's question, in the brand's mouth), the prompt's own wording, its rules reworded
in the customer's voice, or one of its internal labels. prompts/segments.py takes such sentences out
of each part, and out of the model's direct message, before judging what is left.
"""

from __future__ import annotations

import re
from functools import lru_cache

from guardrails.engine import echoes

# Small models read the instruction back ("Invite them to send us a direct message..."): a part
# mostly copied from its instruction is not the model's answer. Higher than the customer-echo
# share because a good part may well reuse a phrase of it ("send us a direct message").
INSTRUCTION_ECHO = 0.75
QUESTION_WORDS = 4  # "My order hasn't arrived" (my/order/hasn/t/arrived); a Han character is a word
REWORDED_WORDS = 4  # "Something went wrong." is a fair reply; "You are a serious matter." is the prompt reworded
RULES_RUN = 4  # words in a row of the prompt's rules (their -> your): "specific problem and how"
SHORT_CLAUSE = 3  # a direction past a reply-like instruction's ";" this short counts whole: "promise nothing else"
SENTENCE = re.compile(r"[^.!?。！？\n]+(?:[.!?。！？]+[\"'”’)]*|\n|$)")


def from_scaffold(text: str, scaffold: str) -> bool:
    """A part that is the prompt's own wording ("No jokes, no emoji.", "You are a serious matter...")."""
    if not scaffold:
        return False
    words = _words(text)
    return (len(words.split()) >= 3 and words in _word_string(scaffold)) or echoes(text, scaffold, INSTRUCTION_ECHO)


def without_read_back(text: str, questions: str, scaffold: str = "") -> str:
    """The part without the sentences that read back an FAQ's title or the prompt's own instructions:
    "I received the wrong item. What should I do?" is the customer's voice (FAQ titles are their
    questions), "One short apology, once." is the prompt's, while the answer around them is the
    model's to keep. A sentence counts when all its words, QUESTION_WORDS or more, are a run of a
    title's words, when it is one of a title's sentences whole ("What happens now?") or holds one of
    QUESTION_WORDS or more ("You know I was told my refund was issued, but I can't see it."), when all
    its words, three or more, are a run of the instructions', when it is the rules reworded (four or
    more words, every one of them the rules' own, three in a row as the rules have them: "You are a
    serious matter." from "This is a serious matter"), when it holds four words in a row of the
    rules or instructions with "their" read as "your" ("Please acknowledge your specific problem and
    how it feels."), or
    when it names one of the prompt's internal labels ("media_risk"). Reusing a phrase of either is fine."""
    if not questions and not scaffold:
        return text
    asked = f" {_word_string(questions)} "
    whole = _title_sentences(questions)
    told = f" {_word_string(scaffold)} "
    labels = _label_words(scaffold)
    rules_vocab, rules_runs, spoken_runs = _rules_words(scaffold)
    sentences = SENTENCE.findall(text)

    def reworded(words: list[str]) -> bool:
        if len(words) >= REWORDED_WORDS and rules_vocab.issuperset(words) and any(
                " ".join(words[i:i + 3]) in rules_runs for i in range(len(words) - 2)):
            return True
        # any run will do: each of the 18 recorded drafts with "serious matter" in them was read back from
        # "This is a serious matter (...): no jokes, no emoji", "It is a serious matter of financial management"
        # among them; asking for half the sentence in runs let 7 of the 9 read-backs in the replay through
        spoken = [_TO_CUSTOMER.get(w, w) for w in words]
        return any(" ".join(spoken[i:i + k]) in spoken_runs for k in (RULES_RUN, SHORT_CLAUSE)
                   for i in range(len(spoken) - k + 1))

    def read_back(sentence: str) -> bool:
        words = _words(sentence)
        n = len(words.split())
        return ((n >= QUESTION_WORDS and f" {words} " in asked) or (n >= 2 and words in whole)
                or any(len(t.split()) >= QUESTION_WORDS and f" {t} " in f" {words} " for t in whole)
                or (n >= 3 and f" {words} " in told) or bool(labels.intersection(_LABEL_WORD.findall(sentence)))
                or reworded(words.split()))

    kept = [s for s in sentences if not read_back(s)]
    if len(kept) == len(sentences):
        return text
    # sentences not found whole (stray punctuation): drop the part rather than guess where they end
    return "".join(kept).strip() if "".join(sentences) == text else ""


@lru_cache(maxsize=32)  # one request's scaffold is read for every part of every draft
def _rules_words(scaffold: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The words of the prompt's rules (not of the parts' instructions, which are worded like replies:
    "send us a direct message so we can look into it") and their three-word runs; and the runs of
    RULES_RUN words of the rules and of the instructions no reply is worded like (RESOLVE's and
    PRIVATE's only past their ";"), with the customer spoken to: "acknowledge your specific problem
    and how you feel"."""
    lines = [line for line in scaffold.splitlines() if not _PART_LINE.match(line)]
    runs = {" ".join(w[i:i + 3]) for line in lines if len(w := _words(line).split()) >= 3 for i in range(len(w) - 2)}
    spoken_runs = set()
    for line in scaffold.splitlines():
        # in a reply-like instruction, what follows its ";" is a direction to the model, never reply
        # wording: "...so we can look into it; ask for no details here" must not reach the customer
        reply_like = bool(_REPLY_LIKE_LINE.match(line))
        for clause in line.split(";")[1:] if reply_like else [line]:
            spoken = [_TO_CUSTOMER.get(x, x) for x in _words(clause).split()]
            spoken_runs.update(" ".join(spoken[i:i + RULES_RUN]) for i in range(len(spoken) - RULES_RUN + 1))
            # "...contact them directly today; promise nothing else", read back in a recorded escalation
            if reply_like and len(spoken) == SHORT_CLAUSE:
                spoken_runs.add(" ".join(spoken))
    return frozenset(_words("\n".join(lines)).split()), frozenset(runs), frozenset(spoken_runs)


@lru_cache(maxsize=32)  # one request's scaffold is read for every part of every draft
def _label_words(scaffold: str) -> frozenset[str]:
    return frozenset(_LABEL_WORD.findall(scaffold))


@lru_cache(maxsize=32)
def _title_sentences(questions: str) -> frozenset[str]:
    return frozenset(_words(s) for title in questions.splitlines() for s in SENTENCE.findall(title))


def _words(text: str) -> str:
    """The text's words, case-folded, one space apart: a run of them is a substring of another's."""
    return " ".join(_WORDS.findall(text.casefold()))


@lru_cache(maxsize=32)  # a request's scaffold is compared with every part of every draft
def _word_string(text: str) -> str:
    return _words(text)


_WORDS = re.compile(r"[\u4e00-\u9fff]|[^\W_]+")
# the rules spoken to the customer; "is"/"are"/"am" as one, so "This is a serious matter" read back as
# "You are a serious matter, please apologize..." is still its run "is a serious matter" (README request, 2026-11-24)
_TO_CUSTOMER = {"their": "your", "they": "you", "them": "you", "theirs": "yours", "themselves": "yourself",
                "are": "is", "am": "is"}
_PART_LINE = re.compile(r"^\s*-\s*(?:RESPOND|APOLOGISE|RESOLVE|THANK|PRIVATE):")  # a part's instruction line
_REPLY_LIKE_LINE = re.compile(r"^\s*-\s*(?:RESOLVE|PRIVATE):")  # instructions worded as a reply would be
_LABEL_WORD = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")  # triage's categories as the prompt names them
