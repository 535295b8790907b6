"""Normalisation: the exact-match key, tokens, morphology, typo correction."""

from __future__ import annotations

import pytest

from neoc_assistant.reading.lexicon import KBLexicon
from neoc_assistant.language.discourse import normalize_key
from neoc_assistant.language.normalize import (
    canonical_number,
    damerau_levenshtein,
    light_stem,
    tokenize,
)


@pytest.mark.parametrize(
    "a, b",
    [
        ("What are the NEOC activation levels?", "what are the neoc activation levels"),
        ("What are the NEOC activation levels?", "  WHAT   are the NEOC activation levels ???  "),
        ("What are the NEOC activation levels?", "Please, what are the NEOC activation levels?"),
        ("What are the NEOC activation levels?", "Can you tell me what are the NEOC activation levels, thanks"),
        ("What are the NEOC activation levels?", "Hi, could you please tell me what are the NEOC activation levels?"),
        ("What is NEOC-F07 used for?", "what is neoc f07 used for"),
        ("How many households were displaced (5,000)?", "how many households were displaced 5000"),
        ("What is the go-bag list?", "what is the go bag list"),
        ("What's the danger level?", "what is the danger level"),
    ],
)
def test_equivalent_wordings_share_a_key(a, b):
    assert normalize_key(a) == normalize_key(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("magnitude 6.2 earthquake", "magnitude 62 earthquake"),  # decimal point is kept
        ("evacuation routes for ward 5", "evacuation routes for ward 6"),
        ("Is isolation needed?", "Isn't isolation needed?"),
        ("Who can activate Level 2?", "Who can deactivate Level 2?"),
        ("What is ICS 215A?", "What is ICS 215?"),
    ],
)
def test_different_questions_keep_different_keys(a, b):
    assert normalize_key(a) != normalize_key(b)


def test_tokenize_numbers_times_codes_and_contractions():
    assert tokenize("Report at 2 pm, not 07:00; 6.0 or 6.50 magnitude") == [
        "report", "at", "14:00", "not", "7:00", "6", "or", "6.5", "magnitude",
    ]
    assert tokenize("ICS 205A and the 24h window") == ["ics", "205a", "and", "the", "24", "h", "window"]
    assert tokenize("The first sitrep can't wait for five hours") == [
        "the", "1st", "sitrep", "can", "not", "wait", "for", "5", "hours",
    ]
    assert tokenize("officer's log, officers' logs") == ["officer", "log", "officers", "logs"]
    assert canonical_number("007") == "7" and canonical_number("300000") == "300000"


def test_light_stem_merges_inflections_but_not_meanings():
    assert light_stem("activation") == light_stem("activate") == light_stem("activated")
    assert light_stem("activate") != light_stem("deactivate")
    assert light_stem("shelters") == light_stem("shelter")
    assert light_stem("authorize") == light_stem("authorise")
    assert light_stem("manager") != light_stem("management")
    assert light_stem("officer") != light_stem("office")
    assert light_stem("supplies") == light_stem("supply")


def test_damerau_levenshtein_counts_a_swap_as_one():
    assert damerau_levenshtein("dengeu", "dengue") == 1
    assert damerau_levenshtein("activate", "deactivate") == 2
    assert damerau_levenshtein("a", "abcdefgh", limit=3) == 4  # early exit above the limit


@pytest.mark.parametrize("a, b, limit, expected", [
    ("flood", "flood", 3, 0),
    ("", "", 3, 0),
    ("", "ward", 3, 4),             # four insertions: above the limit, so limit + 1
    ("ward", "", 4, 4),
    ("shelter", "shleter", 3, 1),   # one adjacent swap
    ("shelter", "shelters", 3, 1),  # one insertion
    ("relief", "releif", 3, 1),
    ("kathmandu", "katmandu", 3, 1),
    ("sunsari", "sunsary", 3, 1),   # one substitution
    ("humla", "jumla", 3, 1),
    ("kitten", "sitting", 3, 3),    # the textbook pair: two substitutions, one insertion
    ("ca", "abc", 3, 3),            # optimal string alignment, not unrestricted Damerau (which says 2)
    ("abcd", "badc", 3, 2),         # two separate swaps
    ("evacuation", "evacuatoin", 1, 1),
    ("evacuation", "evaucatoin", 1, 2),  # two swaps with a limit of one: limit + 1
    ("boat", "generator", 3, 4),         # far apart: limit + 1, whatever the true distance
])
def test_edit_distance_hand_values(a, b, limit, expected):
    assert damerau_levenshtein(a, b, limit) == expected


def test_typo_correction_only_towards_unique_kb_words():
    lex = KBLexicon.from_documents(
        ["Evacuation routes for each ward. The Humla and Jumla districts. The emergency activation levels."],
        common=["the", "and", "for", "each", "sings"],
    )
    assert lex.correct("evacuaton") == "evacuation"
    assert lex.correct("emergancy") == "emergency"
    assert lex.correct("humla") == "humla"  # a KB word is never "corrected"
    assert lex.correct("xumla") == "xumla"  # humla and jumla equally close: ambiguous, left alone
    assert lex.correct("sings") == "sings"  # a real English word is not a typo
