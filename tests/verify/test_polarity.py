"""A claim that says the opposite of its best statement - negated, an antonym, roles swapped - is
flagged, however many words it shares; limits and identical wording are not."""

from __future__ import annotations

import pytest

from neoc_assistant.verify.polarity import conflicting_polarity


@pytest.mark.parametrize("claim, statement, conflict", [
    ("Do not use the lift during a fire.", "Use the lift during a fire.", "negation"),
    ("Use the lift during a fire.", "Do not use the lift during a fire.", "negation"),
    ("The shelter is closed at night.", "The shelter is open at night.", "antonym: clos/open"),
    ("The formal briefing starts at 08:00.", "The informal briefing starts at 08:00.", "antonym: formal/informal"),
    ("The report is prepared by the district office and given to the NEOC.",
     "The report is prepared by the NEOC and given to the district office.", "roles swapped: 'by district' vs 'by neoc'"),
])
def test_the_opposite_is_a_conflict(claim, statement, conflict):
    assert conflicting_polarity(claim, statement) == conflict


@pytest.mark.parametrize("claim, statement", [
    ("Use the stairs during a fire.", "Use the stairs during a fire."),
    ("Arrive no more than 30 minutes after the alert.", "Arrive within 30 minutes after the alert."),  # a limit
    ("Teams report no later than 18:00.", "Teams report by 18:00."),
    ("Boats are stored at the Sunsari depot.", "Boats are stored at the Sunsari depot, not in the open."),
])
def test_the_same_sense_is_no_conflict(claim, statement):
    assert conflicting_polarity(claim, statement) == ""
