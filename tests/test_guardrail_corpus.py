"""The guardrails and triage on our labelled corpus (evals/corpus): the floors of issue 3.

The corpus is authored and labelled by us, plus real brand replies and customer messages read
by id from ../shared/datasets when present (skipped, with the count, when not). The floors are
on blocking decisions: a draft that must block and does not is a miss; one that must pass and
is blocked is a false positive.
"""

from __future__ import annotations

import pytest

from evals.guardrails_eval import BLOCKING_FAMILIES, load_draft_cases, load_triage_cases, score_drafts, score_triage

LANGUAGES = ("en", "id", "ro", "zh")
PRECISION_FLOOR, RECALL_FLOOR, F1_FLOOR, SERIOUS_F1_FLOOR = 0.95, 0.90, 0.85, 0.80

CASES, _ = load_draft_cases()
SCORES = score_drafts(CASES)
TRIAGE_ROWS, _ = load_triage_cases()


def _errors(key: str) -> str:
    return "\n".join(f"{e['kind']}: {e['id']}: {e['text'][:90]!r}" for e in SCORES[key].errors[:15])


def test_corpus_is_big_enough_without_the_datasets():
    authored = [c for c in CASES if not c.id.startswith("twcs-")]
    assert len(authored) >= 500, len(authored)
    for lang in LANGUAGES:
        mine = [c for c in authored if c.lang == lang]
        assert len(mine) >= 100, (lang, len(mine))
        for family in BLOCKING_FAMILIES:
            assert sum(family in c.expect for c in mine) >= 10, (lang, family)
        assert sum(not c.expect for c in mine) >= 50, (lang, "must-pass drafts")
    assert len([r for r in TRIAGE_ROWS if "dataset" not in r]) >= 150
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


def test_blocking_precision_and_recall_overall():
    overall = SCORES["all/all"]
    assert overall.precision >= PRECISION_FLOOR, _errors("all/all")
    assert overall.recall >= RECALL_FLOOR, _errors("all/all")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_f1_per_language(lang):
    assert SCORES[f"all/{lang}"].f1 >= F1_FLOOR, _errors(f"all/{lang}")


@pytest.mark.parametrize("family", BLOCKING_FAMILIES)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_f1_per_family_and_language(family, lang):
    assert SCORES[f"{family}/{lang}"].f1 >= F1_FLOOR, _errors(f"{family}/{lang}")


def test_triage_serious_f1():
    scores = score_triage(TRIAGE_ROWS)
    serious = scores["serious/all"]
    assert serious.f1 >= SERIOUS_F1_FLOOR, "\n".join(f"{e['kind']}: {e['id']}" for e in serious.errors[:20])
    for lang in LANGUAGES:
        assert scores[f"serious/{lang}"].n >= 30, lang


def test_every_rule_and_cue_has_a_prefilter():
    """A rule with no literal every match must contain would scan every draft: rewrite its pattern."""
    from guardrails.engine import available_languages, rules_for
    from guardrails.triage import _cues

    rules = [r for lang in available_languages() for r in rules_for(lang)]
    cues = [c for family in ("seriousness", "sentiment", "troll") for c in _cues(family)]
    assert not [r.full_id for r in rules + cues if not r.triggers]
