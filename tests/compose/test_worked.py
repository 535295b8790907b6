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
