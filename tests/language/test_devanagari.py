"""Nepali (Devanagari) text reads as words and numbers: tokens, one spelling, stems, facts.

Before: the tokenizer kept ASCII letters only, so a Nepali question had no words (the guard,
the asks and the word weights saw nothing), and "१५" was not the number 15.
"""

from __future__ import annotations

import unicodedata

import pytest

from neoc_assistant.language.facts import extract_facts, missing_facts
from neoc_assistant.language.normalize import light_stem, tokenize
from neoc_assistant.language.words import content_stems

FLOOD = "बाढी आएमा तुरुन्त अग्लो स्थानमा जानुहोस्। प्रत्येक व्यक्तिलाई दैनिक १५ लिटर पानी चाहिन्छ।"


def test_a_nepali_sentence_is_whole_words_with_their_vowel_signs():
    assert tokenize(FLOOD) == [
        "बाढी", "आएमा", "तुरुन्त", "अग्लो", "स्थानमा", "जानुहोस्",
        "प्रत्येक", "व्यक्तिलाई", "दैनिक", "15", "लिटर", "पानी", "चाहिन्छ",
    ]


def test_mixed_nepali_and_english_keep_both():
    assert tokenize("वडा नं. ५ को EOC मा 24h") == ["वडा", "नं", "5", "को", "eoc", "मा", "24", "h"]


@pytest.mark.parametrize("digits, number", [("१५", "15"), ("०७", "7"), ("२.५", "2.5"), ("१,०००", "1000")])
def test_devanagari_digits_are_numbers(digits, number):
    assert tokenize(digits) == [number]


def test_the_same_word_typed_two_ways_is_one_token():
    """A nukta letter precomposed or as letter + nukta; a zero-width joiner inside a conjunct."""
    precomposed, decomposed = "\u095b\u0930\u0942\u0930\u0940", "\u091c\u093c\u0930\u0942\u0930\u0940"  # ज़रूरी
    assert precomposed != decomposed and unicodedata.normalize("NFC", precomposed) == decomposed
    assert tokenize(precomposed) == tokenize(decomposed) == [decomposed]
    assert tokenize("पा\u200dनी") == tokenize("पानी\u200c") == ["पानी"]


@pytest.mark.parametrize("word, stem", [
    ("पानीको", "पानी"), ("व्यक्तिलाई", "व्यक्ति"), ("स्थानमा", "स्थान"), ("व्यक्तिहरूलाई", "व्यक्ति"),
])
def test_joined_postpositions_are_stripped(word, stem):
    assert light_stem(word) == stem


def test_short_words_and_verbs_keep_their_ending():
    """"सीमा" (border) is not "सी" + "मा"; "नजानुहोस्" (do not go) stays apart from "जानुहोस्"."""
    assert [light_stem(w) for w in ("सीमा", "आमा", "नजानुहोस्", "सीमाको")] == ["सीमा", "आमा", "नजानुहोस्", "सीमा"]


def test_content_words_of_a_nepali_question():
    assert content_stems("प्रत्येक व्यक्तिलाई दैनिक कति पानी चाहिन्छ?") == [
        "प्रत्येक", "व्यक्ति", "दैनिक", "पानी", "चाहिन्छ"]


def test_a_nepali_quantity_is_a_number_with_its_unit():
    facts = extract_facts(FLOOD)
    assert facts.quantities == {("15", "u:l")}
    assert extract_facts("५ जना, ३ दिन, २ घण्टा, १० किलो, ५०० मिटर").quantities == {
        ("5", "u:people"), ("3", "u:day"), ("2", "u:hour"), ("10", "u:kg"), ("500", "u:m")}


def test_a_claim_in_either_script_is_held_to_the_nepali_passage():
    passage = [extract_facts("प्रत्येक व्यक्तिलाई दैनिक १५ लिटर पानी चाहिन्छ।")]
    assert missing_facts(extract_facts("Each person needs 15 litres a day."), passage) == []
    assert missing_facts(extract_facts("दैनिक १६ लिटर पानी"), passage) == ["16 l"]
