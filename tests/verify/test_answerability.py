"""The question's own constraints - places, levels, form numbers, years - must be in the passages,
read with the real knowledge base's vocabulary (the ``guard`` fixture)."""

from __future__ import annotations

import pytest

from neoc_assistant.verify.answerability import check_answerable, constraints

PASSAGES = ["Shelters in Sunsari district hold 300 people each. Fill in ICS 215 for each operational period.",
            "Level 2 activation is declared by the NEOC Chief."]


@pytest.mark.parametrize("question, missing", [
    ("What is the shelter capacity in Gorkha district?", ["gorkha"]),  # a place no passage names
    ("What is the shelter capacity in Sunsari district?", []),
    ("Who declares Level 2 activation?", []),
    ("Who declares Level 3 activation?", ["level 3"]),  # another level is not this one
    ("How do I fill in ICS 215?", []),
    ("How do I fill in ICS 214?", ["ics 214"]),
    ("What does the 2031 edition say about shelters?", ["2031"]),
])
def test_a_constraint_no_passage_covers_makes_the_question_unanswerable(guard, question, missing):
    result = check_answerable(question, PASSAGES, guard)
    assert result.missing == missing
    assert result.answerable is (not missing)


def test_the_officers_own_quantities_and_background_places_are_not_constraints(guard):
    assert constraints("We have 300 people in the school, how many toilets do we need?", guard) == ([], [])
    # the place is background: the question asks for a form
    assert constraints("120 kits approved for Bardiya. What form do we send?", guard) == ([], [])
    assert check_answerable("120 kits approved for Bardiya. What form do we send?", PASSAGES, guard).answerable


def test_a_glossary_term_is_never_an_unknown_name(guard):
    question = "What is the shelter capacity in Gorkha district?"
    assert check_answerable(question, PASSAGES, guard, known=frozenset({"gorkha"})).answerable


def test_the_message_names_what_was_not_found(guard):
    result = check_answerable("Who declares Level 3 activation in Gorkha district?", PASSAGES, guard)
    assert not result.answerable
    assert result.message == "Nothing about 'gorkha' or 'level 3' in the documents."
    assert check_answerable("Who declares Level 2 activation?", PASSAGES, guard).message == ""
