"""The cache guard reads Nepali questions: their words, their numbers in either script.

Before: a Nepali question had no tokens but its digits, so "where is the shelter in ward 5"
and "where is the hospital in ward 5" were the same question to the guard, and "वडा ५" (ward
5 in Devanagari digits) was not "वडा 5".
"""

from __future__ import annotations

import pytest
from conftest import verdict


@pytest.mark.parametrize("a, b, category", [
    ("वडा ५ मा आश्रयस्थल कहाँ छ?", "वडा ५ मा अस्पताल कहाँ छ?", "term"),  # shelter / hospital
    ("बाढी आएमा कहाँ जानुहोस्?", "बाढी आएमा कहाँ नजानुहोस्?", "term"),  # go / do not go
    ("दैनिक कति लिटर पानी चाहिन्छ?", "दैनिक कति किलो चामल चाहिन्छ?", None),  # litres of water / kilos of rice
])
def test_different_nepali_questions_are_kept_apart(guard, a, b, category):
    v = verdict(guard, a, b)
    assert not v.ok, v
    if category:
        assert v.category == category, v


def test_ward_5_is_ward_5_in_either_digits_and_not_ward_6(guard):
    ward5 = "वडा ५ मा आश्रयस्थल कहाँ छ?"
    assert verdict(guard, ward5, "वडा 5 मा आश्रयस्थल कहाँ छ?").ok
    v = verdict(guard, ward5, "वडा ६ मा आश्रयस्थल कहाँ छ?")
    assert not v.ok and v.category == "number" and v.detail == "['5'] vs ['6']", v


def test_the_same_nepali_question_with_a_joined_postposition_passes(guard):
    """"पानीको" (of water) and "पानी" (water): one content word, read (not skipped) by the guard."""
    a, b = "पानीको मात्रा कति छ?", "पानी मात्रा कति छ?"
    assert set(guard.features(a).content) >= {"पानी", "मात्रा"}
    assert verdict(guard, a, b).ok
