"""The centre's own words read with the documents' words (``reading/glossary.py``, ``weights.py``)."""

from __future__ import annotations

from neoc_assistant.reading.glossary import Glossary, default_glossary
from neoc_assistant.reading.weights import WeightRules, question_weights
from neoc_assistant.language.words import content_stems


def test_terms_are_glossed_in_place_once_and_as_whole_words():
    g = default_glossary()
    assert g.gloss("Cloudburst above a small khola.") == "Cloudburst above a small khola (stream river)."
    assert g.gloss("Jumla DEOC asks") == "Jumla DEOC (district eoc district emergency operations centre) asks"
    assert g.gloss("the sitrep (situation report) is late") == "the sitrep (situation report) is late"  # already said
    assert g.gloss("Kholagaun ward office") == "Kholagaun ward office"  # not a word of its own
    assert Glossary({"sat phone": "satellite phone"}).gloss("the Sat Phone is down") == \
        "the Sat Phone (satellite phone) is down"


def test_background_words_weigh_less_than_the_asking_clause():
    words = question_weights("Lab result shows E.coli in the tap water. What standard must we meet?", None,
                             Glossary({}), WeightRules(background_weight=0.5))
    assert words.weights["standard"] == 1.0 and words.weights["tap"] == 0.5


def test_a_glossary_term_is_covered_by_its_meaning():
    glossary = Glossary({"khola": "stream | river", "sitrep": "situation report"})
    words = question_weights("How fast does the khola rise?", None, glossary)
    (khola,) = content_stems("khola")
    assert khola in words.covered(set(content_stems("the river rises within hours")))
    assert khola not in words.covered(set(content_stems("the road is closed")))
    sitrep = question_weights("When is the sitrep due?", None, glossary)
    assert set(content_stems("sitrep")) <= sitrep.covered(set(content_stems("the situation report is issued")))


def test_bare_ics_form_numbers_are_read_with_their_prefix():
    from neoc_assistant.reading.glossary import default_glossary

    g = default_glossary()
    assert g.gloss("Who signs off the 204s?") == "Who signs off the 204s (ICS 204)?"
    assert g.gloss("who starts the 221?") == "who starts the 221 (ICS 221)?"
    assert g.gloss("the 215As go to planning") == "the 215As (ICS 215A) go to planning"
    # a count, a form already named, and a number that is no ICS form are left alone
    for text in ("a shelter for the 250 people", "Who fills the ICS 209?", "the 300s are full", "the 999?"):
        assert g.gloss(text) == text
