"""The deterministic fix: minimisers are rewritten, humour and blame never are."""

from __future__ import annotations

import pytest

from guardrails import CheckContext, check
from guardrails.policy import fix

SERIOUS = CheckContext(serious=True)


@pytest.mark.parametrize("draft,expected", [
    ("Just click Settings and then Reset.", "Click Settings and then Reset."),
    ("Sorry about that! Just restart the app.", "Sorry about that! Restart the app."),
    ("You can just DM us.", "You can DM us."),
    ("You only need to reset your password.", "You can reset your password."),
    ("Simply DM us your order number.", "DM us your order number."),
])
def test_minimisers_are_fixed_and_the_result_passes(draft, expected):
    result = fix(draft, check(draft, SERIOUS), SERIOUS)
    assert result is not None, draft
    text, findings = result
    assert text == expected and not [f for f in findings if f.severity == "block"]


@pytest.mark.parametrize("draft", ["Just restart it lol", "You should have read the instructions.",
                                   "All you need to do is log in again."])
def test_humour_blame_and_unfixable_rules_stay_blocked(draft):
    assert fix(draft, check(draft, SERIOUS), SERIOUS) is None
