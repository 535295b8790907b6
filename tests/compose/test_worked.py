"""Worked figures: the officer's count through a rate the answer quotes, computed by code."""

from __future__ import annotations

import pytest

from neoc_assistant.compose.worked import WORKED_LABEL, render_worked, worked_figures

TABLE = """Quoted from the documents:
- “Indicator: Communal toilets, early emergency phase; Minimum: 1 toilet per 50 people” [1]
- “Indicator: Average water for drinking, cooking and personal hygiene; Minimum: 15 litres per person per day” [1]
- “Source: Tap (tap stand outlet); Maximum users: 250 people per tap” [1]
- “Hygiene promoters: 2 hygiene promoters per 1,000 people” [2]
- “Rations: 30 kg of rice per household per month” [2]"""


@pytest.mark.parametrize("question, expected", [
    ("Our shelter in the school has 300 people, how many toilets do we need?", "= 6 toilets"),
    ("We have 301 people - how many toilets?", "= 7 toilets"),  # rounded up: 6.02 toilets is 7
    ("Camp of 1800 IDPs in Bardiya - how much water do we truck in each day?", "= 27,000 litres per day"),
    ("How many taps for a shelter of 260?", "= 2 taps"),
    ("How many hygiene promoters for 380 people?", "= 1 hygiene promoters"),
    ("120 households registered, how much rice each month?", "= 3,600 kg of rice per month"),
])
def test_the_figure_follows_from_the_count_and_the_quoted_rate(question, expected):
    figures = worked_figures(question, TABLE)
    assert figures and expected in figures[0].text, [f.text for f in figures]


def test_no_figure_without_a_count_or_with_units_that_do_not_agree():
    assert worked_figures("How many toilets does a shelter need?", TABLE) == []
    assert worked_figures("How much rice for 40 people?", TABLE) == []  # the rate is per household
    assert worked_figures("The 2015 flood: how many toilets?", TABLE) == []  # a year is not a count


def test_only_rates_about_what_was_asked():
    texts = [f.text for f in worked_figures("We have 500 people: how many toilets?", TABLE)]
    assert texts and all("toilet" in t for t in texts)


def test_the_figure_is_labelled_as_a_calculation():
    block = render_worked(worked_figures("300 people, how many toilets?", TABLE))
    assert block.startswith(WORKED_LABEL) and "not stated in the documents" in block


# rates written other ways than "X per person" (compose/rates.py)
@pytest.mark.parametrize("question, shown, expected", [
    # a number in words, said of its subject
    ("Plant has 140 workers on shift. How big does the tornado shelter area need to be?",
     "- “Consider the amount of space you will need. Adults require about six square feet of space; nursing home "
     "and hospital patients require more.” [1]", "= 840 square feet of space"),
    ("300 people, how many blankets?", "- “Each person needs 2 blankets in winter.” [1]", "= 600 blankets"),
    ("Shelter of 80, how much water?", "- “Keep one gallon of water per person per day.” [1]", "= 80 gallons of water"),
    # the parts of a rate in brackets: the one the question names comes first
    ("How much is just drinking water for 45 people?",
     "- “Store at least 1 gallon of water per person, per day (3 quarts for drinking, 1 quart” [1]",
     "= 135 quarts per day"),
    # a family package's contents, per household
    ("We've got 120 households, how much rice in total?",
     "Standard family relief kit (household of 5):\n- “Food basket (separate item, 15 days for 5 people): rice 30 kg, "
     "lentils 3 kg, cooking oil 2 litres.” [1]", "= 3,600 kg"),
])
def test_rates_in_other_forms(question, shown, expected):
    figures = worked_figures(question, shown)
    assert figures and expected in figures[0].text, [f.text for f in figures]


def test_a_package_item_only_when_asked_and_only_per_household():
    kit = ("Standard family relief kit (household of 5):\n- “Food basket: rice 30 kg, lentils 3 kg, "
           "cooking oil 2 litres.” [1]")
    assert all("lentils" not in f.text for f in worked_figures("120 households, how much rice?", kit))
    assert worked_figures("120 households, how much sugar for the basket?", kit) == []  # not an item of it
    assert worked_figures("600 people, how much rice in the basket?", kit) == []  # per household, not per person
    plain = "- “Food basket: rice 30 kg, lentils 3 kg.” [1]"  # no family or household named: per what?
    assert worked_figures("120 households, how much rice in the basket?", plain) == []


def test_a_subject_rate_is_not_read_from_a_count_of_people():
    # "20 people need 1 toilet": not "each needs 1" - the subject must be the per-head one
    assert worked_figures("300 people, how many toilets?", "- “Each 20 people need 1 toilet.” [1]") == []


def test_a_count_carried_on_from_the_conversation_only_by_a_question_that_carries_on():
    shown = "- “Approximately 80 percent of evacuees will seek shelter with friends or relatives.” [1]"
    earlier = ["9500 people in the evacuation zone. How many need a public shelter?"]
    carried = worked_figures("and how many just go to friends and relatives?", shown, earlier=earlier)
    assert carried and "= about 7,600" in carried[0].text
    assert worked_figures("Who shelters with friends or relatives?", shown, earlier=earlier) == []
    assert worked_figures("and how many just go to friends and relatives?", shown) == []
