"""The semantic-hit guard: near-misses of every kind are refused, paraphrases pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import verdict

from neoc_assistant.reading.guard import Guard
from neoc_assistant.reading.lexicon import KBLexicon

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(
    "a, b, category",
    [
        ("What are the evacuation routes for ward 5?", "What are the evacuation routes for ward 6?", "number"),
        ("What happens after a magnitude 5.5 earthquake?", "What happens after a magnitude 6.5 earthquake?", "number"),
        ("Can the Duty Officer approve NPR 200,000 of goods?", "Can the Duty Officer approve NPR 2,000,000 of goods?", "number"),
        ("What is the clearance target for a category A blockage?", "What is the clearance target for a category B blockage?", "number"),
        ("What must the RRT do within 24 hours?", "What must the RRT do within 24 days?", "unit"),
        ("Does 10 mm per hour of rain stop landslide rescue?", "Does 10 cm per hour of rain stop landslide rescue?", "unit"),
        ("Where is the relief warehouse in Pokhara?", "Where is the relief warehouse in Kathmandu?", "name"),
        ("What is the danger level at Chatara?", "What is the danger level at Devghat?", "name"),
        ("How do we request Nepal Army helicopters?", "How do we request Nepal Police helicopters?", None),
        ("What triggers Level 2 for floods?", "What triggers Level 2 for landslides?", "hazard"),
        ("What is the cholera alert threshold?", "What is the dengue alert threshold?", "hazard"),
        ("Is isolation needed for dengue patients?", "Is isolation not needed for dengue patients?", "negation"),
        ("Are volunteers with training deployed?", "Are volunteers without training deployed?", "negation"),
        ("Which figures are published by the NEOC?", "Which figures aren't published by the NEOC?", "negation"),
        ("Who can activate Level 2?", "Who can deactivate Level 2?", "antonym"),
        ("When is a shelter opened?", "When is a shelter closed?", "antonym"),
        ("What do we do before the monsoon?", "What do we do after the monsoon?", "antonym"),
        ("How do we warn upstream settlements?", "How do we warn downstream settlements?", "antonym"),
        ("What does the ICS 201 contain?", "What does the ICS 202 contain?", "form"),
        ("When is NEOC-F03 filled in?", "When is NEOC-F01 filled in?", "form"),
        ("What is ICS 215A?", "What is ICS 215?", "form"),
        ("What does the Safety Officer do?", "What does the Liaison Officer do?", None),
        ("What are the duties of the Planning Section Chief?", "What are the duties of the Logistics Section Chief?", None),
        ("What is the sitrep schedule today?", "What is the sitrep schedule tomorrow?", "date_time"),
        ("What checks are done every Monday?", "What checks are done every Wednesday?", "date_time"),
        ("How should children be evacuated?", "How should elderly people be evacuated?", "target_group"),
        ("What should women bring in the go-bag?", "What should men bring in the go-bag?", None),
        ("What are the evacuation routes for ward 5?", "What are the evacuation shelters for ward 5?", "term"),
        ("What is the danger level at Chisapani?", "What is the warning level at Chisapani?", None),
        ("Does the District EOC report to the Province EOC?", "Does the Province EOC report to the District EOC?", "direction"),
        ("Do we move from Level 3 to Level 1 directly?", "Do we move from Level 1 to Level 3 directly?", "direction"),
        ("Who does the shelter manager report to?", "Who reports to the shelter manager?", "direction"),
        ("Who approves the IAP?", "When is the IAP approved?", "question_type"),
        ("What is the Koshi danger level?", "What is the Dudhkoshi danger level?", None),  # a place the KB never mentions
        ("How many people per toilet?", "How many toilets per person?", "direction"),
        ("Is the Koshi at danger level?", "What is the Koshi danger level?", "question_type"),
        ("Do all shelters need a green tag?", "Do some shelters need a green tag?", None),
        ("What happens at 9 am?", "What happens at 9 pm?", "number"),
        ("Is the building safe?", "Is the building unsafe?", "antonym"),
    ],
)
def test_near_misses_are_refused(guard, a, b, category):
    v = verdict(guard, a, b)
    assert not v.ok, f"guard accepted {a!r} vs {b!r}"
    assert v.reason
    if category is not None:
        assert v.category == category, v.reason
    # symmetric: which one was cached does not matter
    assert not verdict(guard, b, a).ok


@pytest.mark.parametrize(
    "a, b",
    [
        ("What are the NEOC activation levels?", "Can you please tell me what the NEOC activation levels are?"),
        ("What are the EOC activation levels?", "wht are the EOC activaton levels?"),
        ("What are the warning signs of a landslide?", "What are the warning sings of a landslide?"),
        ("What is the reorder point for core relief items?", "What is the re-order point for core relief items?"),
        ("What should staff do during an earthquake?", "What should staff do during a quake?"),
        ("Who approves Level 1 activation?", "Who authorizes Level 1 activation?"),
        ("What do older people need during a cold wave?", "What do elderly people need during a cold wave?"),
        ("When does DHM issue flood warnings?", "When does the Department of Hydrology and Meteorology issue flood warnings?"),
        ("What are the Level 2 triggers?", "What are the Partial Activation triggers?"),
        ("What triggers Level 2 activation?", "What are the triggers of Level 2 activation?"),
        ("For a cholera outbreak, who leads the response?", "Who leads the response for a cholera outbreak?"),
        ("To whom does the shelter manager report?", "The shelter manager reports to whom?"),
        ("How long is each duty shift?", "How many hours is each duty shift?"),
        ("What does the Planning Section Chief do?", "What is the Planning Section Chief responsible for?"),
    ],
)
def test_paraphrases_pass(guard, a, b):
    v = verdict(guard, a, b)
    assert v.ok, v.reason
    assert verdict(guard, b, a).ok


def _pairs():
    return [json.loads(line) for line in (DATA / "cache_pairs.jsonl").read_text().splitlines() if line.strip()]


def test_labelled_set_is_big_and_balanced():
    rows = _pairs()
    assert len(rows) >= 250
    cats = {r["category"] for r in rows if not r["should_hit"]}
    assert {"number", "unit", "place", "proper_name", "hazard", "negation", "antonym", "ics_form", "ics_role",
            "date_time", "target_group"} <= cats
    assert {r["split"] for r in rows} == {"dev", "test"}


def test_guard_alone_refuses_every_labelled_near_miss(guard):
    """Both splits, no similarity threshold at all: the guard is the safety, not the cosine."""
    accepted = [
        (r["category"], r["cached"], r["incoming"])
        for r in _pairs()
        if not r["should_hit"] and verdict(guard, r["cached"], r["incoming"]).ok
    ]
    assert accepted == []


def test_guard_accepts_most_labelled_paraphrases(guard):
    for split in ("dev", "test"):
        rows = [r for r in _pairs() if r["should_hit"] and r["split"] == split and r["category"] != "loose_paraphrase"]
        ok = sum(verdict(guard, r["cached"], r["incoming"]).ok for r in rows)
        assert ok / len(rows) >= 0.85, (split, ok, len(rows))


def test_names_one_letter_apart_are_never_typos():
    """Many place names differ by one letter; an unknown name is not a typo of a known one."""
    lex = KBLexicon.from_documents(
        ["The relief stock in Jumla district is checked monthly. The Kathmandu warehouse serves Bagmati."],
        common=["the", "relief", "stock", "in", "district", "is", "checked", "monthly", "warehouse", "serves", "what"],
    )
    g = Guard(lex)
    for a, b in [
        ("What is the relief stock in Jumla?", "What is the relief stock in Humla?"),  # Humla: not in this KB
        ("What is the relief stock in Bara?", "What is the relief stock in Para?"),  # neither is in the KB
    ]:
        v = g.compare(g.features(a), g.features(b))
        assert not v.ok, (a, b)
    # a missing letter in a long name is still a typo
    v = g.compare(g.features("What does the Kathmandu warehouse serve?"), g.features("What does the Katmandu warehouse serve?"))
    assert v.ok, v.reason
