"""The deterministic fix: minimisers are rewritten, humour and blame never are."""

from __future__ import annotations

import pytest

from guardrails import CheckContext, check
from guardrails.policy import apply_fixes, fix
from guardrails.triage import detect_language

SERIOUS = CheckContext(serious=True)


@pytest.mark.parametrize("draft,expected", [
    ("Just click Settings and then Reset.", "Click Settings and then Reset."),
    ("Sorry about that! Just restart the app.", "Sorry about that! Restart the app."),
    ("You can just DM us.", "You can DM us."),
    ("You only need to reset your password.", "You need to reset your password."),
    ("You'll just need to pop into a branch.", "You'll need to pop into a branch."),
    ("Cukup klik Pengaturan lalu Reset ya kak.", "Klik Pengaturan lalu Reset ya kak."),
    ("Doar apăsați butonul Retur.", "Apăsați butonul Retur."),
    ("您只需点击设置即可。", "您点击设置即可。"),
    ("Simply DM us your order number.", "DM us your order number."),
])
def test_minimisers_are_fixed_and_the_result_passes(draft, expected):
    context = CheckContext(serious=True, language=detect_language(draft))
    result = fix(draft, check(draft, context), context)
    assert result is not None, draft
    text, findings = result
    assert text == expected and not [f for f in findings if f.severity == "block"]


@pytest.mark.parametrize("draft", ["Just restart it lol", "You should have read the instructions.",
                                   "All you need to do is log in again."])
def test_humour_blame_and_unfixable_rules_stay_blocked(draft):
    assert fix(draft, check(draft, SERIOUS), SERIOUS) is None


def test_brand_policy_overrides_the_default_family_by_family(tmp_path):
    from guardrails.policy import load_policy

    default, acme = load_policy("no-such-brand"), load_policy("acme")
    joke = check("Sorry about that 😂", SERIOUS)
    assert default.repair(joke) == "reask" and acme.repair(joke) == "block"
    assert acme.families["blame"] == default.families["blame"] == ["reask"]  # not named by acme: inherited
    assert acme.reask_rounds == 2 and default.reask_rounds == 1


def test_warn_downgrades_what_a_brand_accepts(tmp_path):
    from guardrails.policy import load_policy

    (tmp_path / "default.yaml").write_text("brand: default\nfamilies: {minimising: [fix]}\n")
    (tmp_path / "relaxed.yaml").write_text("brand: relaxed\nrules: {en.minimising.just-imperative: [warn]}\n")
    findings = check("Just click Reset.", SERIOUS)
    relaxed = load_policy("relaxed", tmp_path).apply(findings)
    assert [f.severity for f in relaxed] == ["warn"]
    assert [f.severity for f in load_policy("other", tmp_path).apply(findings)] == ["block"]


@pytest.mark.parametrize("body,words", [
    ("brand: x\nfamilies: {blame: [fix, block]}\n", "stand alone"),
    ("brand: x\nfamilies: {blame: [shout]}\n", "shout"),
    ("brand: x\nreask_rounds: 9\n", "reask_rounds"),
    ("brand: x\nunknown: 1\n", "unknown"),
    ("- not a mapping\n", "mapping"),
])
def test_a_bad_policy_file_is_a_clear_error(tmp_path, body, words):
    from guardrails.policy import PolicyError, load_policy

    (tmp_path / "default.yaml").write_text(body)
    with pytest.raises(PolicyError) as err:
        load_policy(None, tmp_path)
    assert "default.yaml" in str(err.value) and words in str(err.value)


def test_the_shipped_policies_load():
    from guardrails.policy import POLICY_DIR, load_policy

    for path in POLICY_DIR.glob("*.yaml"):
        assert load_policy(path.stem).brand in {path.stem, "default"}


def test_overlapping_spans_the_widest_wins_and_no_orphan_punctuation():
    text = "Haha, just click Reset ."
    findings = check(text, SERIOUS)
    assert apply_fixes(text, findings) == "Click Reset."
