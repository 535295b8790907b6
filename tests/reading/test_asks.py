"""What a question asks for, and whether a statement supplies it (``reading/asks.py``)."""

from __future__ import annotations

import pytest

from neoc_assistant.reading.asks import asking_clause, names_codes, read_ask, supplies


@pytest.mark.parametrize("question, kind, detail", [
    ("How many doses of oral cholera vaccine does each person get?", "quantity", ""),
    ("Hygiene distro next week - how many grams of laundry soap per person per month?", "quantity", ""),
    ("What night-shift allowance in NPR do duty officers get?", "quantity", ""),
    ("how long do we keep the paper log books?", "time", "duration"),
    ("By when do we have to hold the first coordination meeting?", "time", "when"),
    ("How long can a sitrep be?", "quantity", ""),
    ("chief is out - who can approve the 14:00 sitrep?", "person", ""),
    ("Need to ring the DHM flood desk, what's the number?", "contact", "phone"),
    ("Trying to raise Humla on HF after dark - which frequency?", "contact", "frequency"),
    ("Which form do I record the activation on?", "form", ""),
    ("Chatara gauge went past warning level. What do I do?", "steps", ""),
    ("What does 'unity of command' mean?", "open", ""),
    # "phone" alone is a way of doing something, not a request for a number
    ("The building is evacuated - can we do the handover over the phone?", "open", ""),
    # the first question word of the asking clause decides
    ("What do we do when the river reaches danger level?", "steps", ""),
    # a phrase's last word in its plural asks the same ("frequency" / "frequencies", "ratio")
    ("Which radio frequencies did the DEOC assign for the flood net?", "contact", "frequency"),
    ("What forms do we file at demob?", "form", ""),
    ("What's the recommended caregiver-to-resident staffing ratio in a shelter?", "quantity", ""),
])
def test_the_kind_of_thing_asked_for(question, kind, detail):
    ask = read_ask(question)
    assert (ask.kind, ask.detail) == (kind, detail), ask


def test_how_many_counts_the_head_noun_and_names_the_unit():
    assert read_ask("How many Nepal Red Cross ambulances are on standby in Bardiya?").counted == ("ambulances",)
    assert read_ask("How many leptospirosis cases after the floods count as an outbreak?").counted == ("cases",)
    ask = read_ask("how many grams of soap per person?")
    assert ask.unit == "u:g" and ask.counted == ()
    assert read_ask("how many wards can one team cover in a day?").unit is None  # "a day" is the rate, not the unit


def test_the_asking_clause_is_after_the_situation():
    assert asking_clause("Planning the IRA in Dolakha hills - roughly how many wards a day?") == "roughly how many wards a day?"
    assert asking_clause("Jumla DEOC asks: how much snowfall triggers a cold alert?") == "how much snowfall triggers a cold alert?"
    assert asking_clause("Police say 12 dead. Which figure goes in the sitrep?") == "Which figure goes in the sitrep?"


def test_what_supplies_each_kind():
    count = read_ask("How many doses of oral cholera vaccine does each person get?")
    assert not supplies(count, "Oral cholera vaccination campaigns are decided by MoHP.")
    assert supplies(count, "Each person gets 2 doses, 14 days apart.")
    grams = read_ask("how many grams of laundry soap per person per month?")
    assert supplies(grams, "Laundry soap: 200 g per person per month")
    assert not supplies(grams, "Laundry soap: 2 bars per person per month")
    duration = read_ask("how long do we keep the paper log books?")
    assert supplies(duration, "Log books are kept for at least 10 years.")
    assert not supplies(duration, "The Duty Log is kept in two forms: a bound paper log book with numbered pages.")
    phone = read_ask("what number do I call for the HEOC duty desk?")
    assert supplies(phone, "HEOC duty desk: +977-1-555-0130")
    assert not supplies(phone, "Test call every Wednesday at 11:00 to a Province EOC satellite phone.")
    person = read_ask("who can approve the sitrep?")
    assert supplies(person, "If the NEOC Chief is not available, the Deputy Chief approves.")
    assert supplies(read_ask("What does unity of command mean?"), "anything at all")


@pytest.mark.parametrize("question, shown, gives", [
    # a figure must stand beside the thing counted, not anywhere in the extract
    ("How many levees in the country are in the federal inspection program?",
     "The entire levee should be patrolled at least once per day during Phase I.", False),
    ("How many billion-dollar climate disasters hit the US in 2022?",
     "2022 accounted for 18 climate-related disasters that cost at least $1 billion.", True),
    ("How many toilets do we need for 300 people?", "1 toilet per 50 people.", True),
    # an allowance or a rate of pay is money: a percentage or a count is not it
    ("What daily allowance do RRT members get when they deploy to the field?",
     "The target is that 80% of listed people are reached within 30 minutes.", False),
    ("What daily allowance do RRT members get when they deploy to the field?",
     "RRT members get NPR 1,500 per day in the field.", True),
])
def test_what_the_extract_must_hold(question, shown, gives):
    assert supplies(read_ask(question), shown) is gives


@pytest.mark.parametrize("question, passage, named", [
    # a code the question names must be the passage's: IS-100.c is not IS-100.d
    ("When is IS-100.d replacing the IS-100.c course?", "IS-0100.c: An Introduction to ICS, March 2025", False),
    ("When is IS-100.d replacing the IS-100.c course?", "IS-100.d replaces IS 100.c from 1 June 2026.", True),
    ("What wind speed makes a tornado an EF5?", "EF3 tornadoes have winds of 136-165 mph.", False),
    ("What score do they need on the IS-700 final exam?", "IS-700.b Instructor Guide\nA score of 75% passes.", True),
])
def test_the_passage_must_name_the_codes_asked_about(question, passage, named):
    assert names_codes(read_ask(question), passage) is named


def test_codes_are_glued_letters_and_figures_not_measures_or_counts():
    assert read_ask("What does a FEMA P-361 safe room cost?").codes == (("p", 361, ""),)
    assert read_ask("Deaths in the M7.8 Gorkha quake?").codes == ()
    assert read_ask("How long is the break on the 16-hour shift?").codes == ()
    assert read_ask("What costs are eligible for reimbursement?").unit is None  # a list, not a figure


def test_the_measured_thing_is_not_its_unit():
    from neoc_assistant.reading.asks import measured_words
    assert measured_words("how many grams of laundry soap per person per month?") == []
    assert measured_words("How much temephos larvicide do we put per water tank?") == ["temephos", "larvicide"]


def test_a_range_of_parts_is_no_phone_number_and_the_questions_own_acronym_no_person():
    phone = read_ask("Hazmat incident meets the criteria. What number do we phone the notice to?")
    assert not supplies(phone, "Per the Code of Federal Regulations (49 CFR Parts 100-185), notify at once.")
    assert supplies(phone, "Each notice shall be given telephonically to the Department at (800) 424-8802.")
    who = read_ask("Who fills in the ICS 220?")
    assert not supplies(who, "ICS 220 - the summary of air operations.")
    assert supplies(who, "The ICS 220 is completed by the Air Operations Branch Director.")


def test_a_table_rows_column_names_do_not_part_a_thing_from_its_figure():
    ask = read_ask("Bardiya camp has 900 people. How many tap stands do we need?")
    row = "Source: Tap (tap stand outlet); Maximum users: 250 people per tap; Assumed flow: 7.5 litres per minute"
    assert supplies(ask, row)
    # the figure still has to stand by the thing counted, not anywhere in the row
    assert not supplies(ask, "Source: Tap stand; Notes: inspect the outlet weekly and record the flow in the log; "
                             "Flow: 7.5 litres per minute")
