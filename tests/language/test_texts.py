"""The fixed texts' two languages stay in step: every sentence has its Nepali twin, with the same blanks."""

from __future__ import annotations

import string

import pytest

from neoc_assistant.language.texts import LANGUAGES, TABLES, answer_text, question_language


def _fields(text) -> set[str]:
    if isinstance(text, list):
        return set().union(*(_fields(t) for t in text))
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("part", ["answer", "ui"])
def test_every_english_key_has_a_nepali_text_and_back(part):
    en, ne = TABLES["en"][part], TABLES["ne"][part]
    assert set(en) - set(ne) == set(), "in en, not in ne"
    assert set(ne) - set(en) == set(), "in ne, not in en"


@pytest.mark.parametrize("part", ["answer", "ui"])
def test_both_languages_fill_in_the_same_blanks(part):
    """A {field} only one language names would be a KeyError (or a missing figure) in the other."""
    for key, text in TABLES["en"][part].items():
        assert _fields(text) == _fields(TABLES["ne"][part][key]), key


def test_only_the_two_languages_and_their_two_parts():
    assert set(TABLES) == set(LANGUAGES) == {"en", "ne"}
    assert all(set(TABLES[lang]) == {"answer", "ui"} for lang in LANGUAGES)


def test_the_nepali_texts_are_nepali():
    """A key copied over in English would pass the key check and still show English."""
    for part in ("answer", "ui"):
        for key, text in TABLES["ne"][part].items():
            assert text != TABLES["en"][part][key], (part, key)


def test_the_question_decides_the_notice_language():
    assert question_language("How much water per person per day?") == "en"
    assert question_language("प्रति व्यक्ति प्रति दिन कति लिटर पानी?") == "ne"
    assert question_language("EOC मा हेलिकप्टर अवतरण शुल्क कति लाग्छ?") == "ne"  # English terms mixed in
    assert answer_text("nothing_about", "ne", names="'Gorkha'") == "कागजातमा 'Gorkha' बारे केही छैन।"
