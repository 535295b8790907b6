"""Claim verification on real passages of the default knowledge base, with the real embedding model.

Each test plants the kind of mistake a small model makes (a figure it made up,
figures swapped between rows, a negation, a loop) and checks it never reaches
the officer, while what the passage says does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neoc_assistant.settings import Settings
from neoc_assistant.language.facts import extract_facts, missing_facts
from neoc_assistant.verify.sentences import split_claims, split_passage
from neoc_assistant.verify.support import SupportChecker, SupportThresholds
from neoc_assistant.verify.verifier import AnswerVerifier

KB = Path(__file__).resolve().parents[2] / "knowledge_base"


def section(file: str, heading: str) -> str:
    """One '## ...' section of a KB document, as a chunk would hold it."""
    text = (KB / file).read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end > 0 else None]


WATER = section("11-minimum-standards-wash-shelter.md", "## 2. Water supply")
LEVELS = section("01-eoc-activation-levels.md", "## 2. Summary table")
FLOOD = section("03-flood-response-sop.md", "## 2.")


@pytest.fixture(scope="module")
def verifier(embedder) -> AnswerVerifier:
    s = Settings(data_dir=Path("/nonexistent"))
    return AnswerVerifier(SupportChecker(embedder, SupportThresholds.from_settings(s.verification)))


def shown(verifier, answer: str, passages: list[str], question: str = ""):
    return verifier.verify(question, passages, answer)


# -- splitting --------------------------------------------------------------------------------------
def test_table_rows_keep_their_column_names():
    rows = [s.text for s in split_passage(LEVELS) if s.kind == "row"]
    assert any("Level: 1" in r and "Authorised by: Secretary, Ministry of Home Affairs" in r
               and "Staff in place within: 4 hours" in r for r in rows)


def test_claims_take_markers_written_after_the_full_stop():
    claims = split_claims("The minimum is 15 litres [1]. Survival needs 7.5 litres. [2]\n1. Open the shelter [3].")
    assert [c.text for c in claims] == ["The minimum is 15 litres.", "Survival needs 7.5 litres.", "Open the shelter."]
    assert [c.cited for c in claims] == [[1], [2], [3]] and claims[2].marker == "1. "


def test_figures_are_normalised_the_same_way_on_both_sides():
    assert not missing_facts(extract_facts("five teams and 1000 kits"), [extract_facts("5 teams, 1,000 kits")])
    assert not missing_facts(extract_facts("call +977 1 4200105"), [extract_facts("Phone: 01-4200105")])
    assert missing_facts(extract_facts("15 kcal"), [extract_facts("15 litres per person")]) == ["15 kcal"]


# -- the verifier -------------------------------------------------------------------------------------
def test_the_made_up_water_figure_never_reaches_the_user(verifier):
    answer = ("The minimum daily water supply is 2,100 kcal per person per day (2.1 litre per person per day) [1].\n"
              "The average minimum is 15 litres per person per day [1].")
    text, v = shown(verifier, answer, [WATER], "How much drinking water per person per day must a shelter provide?")
    assert "2.1" not in text and "2,100" not in text and "kcal" not in text
    assert "15 litres per person per day [1]" in text
    assert v.status == "partial"
    removed = v.unsupported
    assert len(removed) == 1 and "2.1" in removed[0].reason


def test_a_planted_wrong_number_is_removed_and_the_rest_kept(verifier):
    answer = "Level 2 staff are in place within 2 hours [1]. Level 1 staff are in place within 6 hours [1]."
    text, v = shown(verifier, answer, [LEVELS])
    assert "2 hours" in text and "6 hours" not in text
    assert [c.supported for c in v.claims] == [True, False]


def test_figures_swapped_between_rows_are_removed(verifier):
    text, v = shown(verifier, "Level 2 staff must be in place within 4 hours [1].", [LEVELS])
    assert text == "" and v.status == "extractive"
    text, _ = shown(verifier, "At Devghat on the Narayani the warning level is 8.4 m and the danger level is 7.5 m.",
                    [FLOOD])
    assert text == ""


def test_negation_of_the_passage_is_removed(verifier):
    text, _ = shown(verifier, "Level 1 does not need to be authorised by the Secretary, Ministry of Home Affairs.",
                    [LEVELS])
    assert text == ""


def test_general_knowledge_is_removed(verifier):
    text, v = shown(verifier, "Boil drinking water for at least one minute before use.", [WATER])
    assert text == "" and v.unsupported


def test_citations_are_reattached_and_renumbered(verifier):
    # The model cites [3], but the claim is in passage 2 (the first passage cited, so it becomes [1]).
    answer = "The average water minimum is 15 litres per person per day [3]."
    stream = verifier.stream("", [LEVELS, WATER, FLOOD])
    text = stream.feed(answer) + stream.finish()
    assert text == "The average water minimum is 15 litres per person per day [1]."
    assert stream.cited_passages() == [1]  # 0-based: the water passage


def test_streaming_shows_only_checked_claims_and_drops_repeats(verifier):
    stream = verifier.stream("", [WATER])
    out = []
    sentence = "The average minimum is 15 litres per person per day. "
    for piece in ["The minimum is 2.1 litres per person per day. ", sentence, sentence, sentence]:
        for chunk in (piece[:10], piece[10:]):
            out.append(stream.feed(chunk))
    out.append(stream.finish())
    text = "".join(out)
    assert text.count("15 litres") == 1 and "2.1" not in text
    reasons = [c.reason for c in stream.verification().claims]
    assert reasons.count("repeated") == 2


def test_a_lead_in_is_shown_only_before_a_verified_item(verifier):
    text, _ = shown(verifier, "The standards are:\n- Queuing time at a water point is no more than 30 minutes.", [WATER])
    assert text.startswith("The standards are:\n- Queuing time")
    text, _ = shown(verifier, "The standards are:\n- Queuing time is 3 hours.", [WATER])
    assert text == ""


def test_the_models_refusal_is_not_shown_as_a_fact(verifier):
    text, v = shown(verifier, "The documents provided do not contain this information.", [WATER])
    assert text == "" and v.status == "extractive" and not v.unsupported
