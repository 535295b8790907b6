"""Follow-up questions read as standalone ones (``reading/followup.py``), with the real embedder."""

from __future__ import annotations

import pytest

from neoc_assistant.reading.followup import resolve, resolve_conversation


@pytest.fixture(scope="module")
def encode(embedder):
    return lambda texts: embedder.encode(list(texts))


def test_a_slot_is_replaced_by_the_most_similar_part(encode):
    r = resolve("and laundry soap?", ["How much bathing soap per person per month?"], encode)
    assert r.kind == "slot" and r.question == "How much laundry soap per person per month?"
    assert resolve("and for Level 1?", ["What time do sitreps go out at Level 2?"], encode).question == \
        "What time do sitreps go out at Level 1?"
    assert resolve("and 12?", ["Which agency coordinates ESF 9?"], encode).question == "Which agency coordinates ESF 12?"
    assert resolve("and a fire?", ["What's the sitrep hazard code for an earthquake?"], encode).question == \
        "What's the sitrep hazard code for an fire?"
    assert resolve("same for Chisapani?", ["What's the danger level at Chatara on the Koshi?"], encode).question \
        .startswith("What's the danger level at Chisapani")


def test_a_new_topic_carries_nothing(encode):
    previous = ["What's the survival water minimum per person per day?"]
    for follow_up in ("And what's the HEOC duty desk number?", "ok. separate question, who signs off full activation?",
                      "New topic: how many key informants per ward for the IRA?"):
        r = resolve(follow_up, previous, encode)
        assert "water" not in r.question.lower() and r.kind in ("standalone", "topic-change"), r


def test_a_word_pointing_back_carries_the_previous_question_visibly(encode):
    r = resolve("who arranges them?", ["We need to move 430 people from the assembly point. How many buses?"], encode)
    assert r.kind == "pointing" and r.question == "who arranges the buses?"
    r = resolve("and how much water for them per day?", ["Our shelter has 300 people, how many toilets?"], encode)
    assert r.question == "how much water for 300 people per day?"
    r = resolve("when does it start?", ["Who leads the Post-Disaster Needs Assessment?"], encode)
    assert r.question == "when does it start? [after: Who leads the Post-Disaster Needs Assessment]"
    # an unrelated question with an "it" of its own is not tied to the previous one
    r = resolve("And what winds make it a blizzard warning?", ["How many responders could a Type 3 incident involve?"],
                encode)
    assert "responders" not in r.question


def test_a_condition_is_added_and_a_conversation_resolves_turn_by_turn(encode):
    r = resolve("and if the communal services are outside the site?", ["How much land does a camp for 2000 people need?"])
    assert r.question == "How much land does a camp for 2000 people need, if the communal services are outside the site?"
    turns = resolve_conversation(["What rainfall puts a hill district on landslide watch?", "and for a warning?",
                                  "what does that mean for the families below?"], encode)
    assert [t.kind for t in turns] == ["standalone", "slot", "pointing"]
    assert "warning" in turns[1].question and "watch" not in turns[1].question
    assert "warning" in turns[2].question  # the resolved previous turn is what is carried


def test_a_topic_put_first_stands_in_for_the_pronoun_and_nothing_else_is_carried(encode):
    previous = ["What do the tsunami evacuation route signs look like?"]
    r = resolve("what about the 214s, where do they end up?", previous, encode)
    assert r.question == "Where do the 214s end up?" and r.kind == "topic-change"
    r = resolve("What about the pre-monsoon count - when's that due?", ["Monthly count is off by 3 percent. Report it?"])
    assert r.question == "When's the pre-monsoon count due?"
    r = resolve("And the tactics meeting - how long before the planning meeting?", previous, encode)
    assert r.question == "The tactics meeting: how long before the planning meeting?"
    # "one" names the thing the previous question asked about
    r = resolve("and a dry chem one, how long does it last?", ["What's the range on a standard water extinguisher?"])
    assert r.question == "How long does a dry chem extinguisher last?" and r.kind == "slot"
    # a condition put first is still a condition, and a situation told first is not a topic
    assert resolve("and if it's cloudy, how many drops?", ["How much bleach for 25 gallons?"]).kind == "condition"
    r = resolve("Quake just hit and a driver is on the road, what's he supposed to do?",
                ["Who actually gets the IAP at the ops period briefing?"], encode)
    assert r.kind == "standalone" and r.question == r.asked


def test_when_is_a_question_of_its_own_and_a_subject_pronoun_always_points_back(encode):
    r = resolve("and when do we test run it?", ["Gen fuel is showing 40% at shift start, is that ok?"], encode)
    assert r.kind == "pointing" and r.question.startswith("and when do we test run it? [after: Gen fuel")
    r = resolve("can they head home before all the boxes are signed?",
                ["Releasing a strike team tonight. Who starts the 221?"], encode)
    assert r.kind == "pointing" and "221" in r.question
