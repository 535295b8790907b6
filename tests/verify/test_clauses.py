"""What each figure of a sentence measures, as the clause reader reads it (pure text rules).

The binding check is only as good as this reading: a clause without a subject of its own
measures the sentence's subject; a parallel noun phrase replaces it; a leading condition scopes
every clause; a run of figures or "or more" is never cut.
"""

from __future__ import annotations

import pytest

from neoc_assistant.verify.clauses import read_clauses


def measured(sentence: str) -> list[tuple[list[str], set[str]]]:
    """(figure labels, names they measure) per clause."""
    return [([f.label for f in c.figures], c.names) for c in read_clauses(sentence)]


def test_a_clause_without_a_subject_measures_the_sentences():
    (oil, oil_names), (noise, noise_names) = measured(
        "Generator oil is changed every 250 hours and must stay below 55 dB.")
    assert oil == ["250 hour"] and noise == ["55"]
    assert {"generator", "oil"} <= noise_names  # "must stay below 55 dB" is said of the oil


def test_a_bare_noun_phrase_after_an_object_keeps_the_subject():
    _, (figures, names) = measured("The Khokana station on the Bagmati has a warning level of 4.0 m and a "
                                   "danger level of 6.0 m.")
    assert figures == ["6 m"] and {"khokana", "station", "danger", "level"} <= names


@pytest.mark.parametrize("sentence, second, not_in", [
    ("Bathing soap is 250 g per person per month and laundry soap 200 g.", "200 g", "bath"),
    ("A tap serves at most 250 people and a hand pump at most 500 people.", "500 people", "tap"),
    ("Queuing time at a water point is no more than 30 minutes and the distance to the nearest water point "
     "is no more than 500 m.", "500 m", "queu"),
    ("Tier 1 must be reached within 15 minutes, and Tier 2 within 60 minutes.", "tier 2", "reach"),
])
def test_a_clause_with_its_own_subject_does_not_take_the_first(sentence, second, not_in):
    figures, names = measured(sentence)[1]
    assert second in figures and not_in not in names


def test_a_code_of_the_subject_goes_with_a_subjectless_clause():
    _, (figures, _) = measured("Level 2 is authorised by the NEOC Chief, and its staff must be in place within "
                               "4 hours.")
    assert figures == ["4 hour", "level 2"]  # so 4 hours must stand in Level 2's row


def test_a_leading_condition_scopes_every_clause():
    clauses = read_clauses("For an earthquake of magnitude 6.0 or greater, Level 1 is automatic and the "
                           "Secretary confirms the activation within 6 hours.")
    assert [f.label for c in clauses for f in c.figures] == ["level 1", "6 hour"]
    assert all("magnitud" in c.scope_words and [f.label for f in c.scope_figures] == ["6"] for c in clauses)


@pytest.mark.parametrize("sentence, figures", [
    ("Drinking needs 2.5 to 3 litres per person per day.", [["2.5 l", "3 l"]]),
    ("A Landslide Watch is issued at 100 mm or more in 24 hours, or 200 mm or more in 72 hours.",
     [["100 mm", "24 hour"], ["200 mm", "72 hour"]]),
    ("The day shift runs from 08:00 to 20:00.", [["8:00", "20:00"]]),
    ("The operational period is 12 hours during Level 1 and 24 hours at Level 2.",
     [["12 hour", "level 1"], ["24 hour", "level 2"]]),
    ("Call the Deputy Chief on +977-98-555-0105.", [["977985550105"]]),
])
def test_figures_are_read_whole(sentence, figures):
    assert [[f.label for f in c.figures] for c in read_clauses(sentence)] == figures
