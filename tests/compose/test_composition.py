"""What the officer is shown, composed by the reader from the default knowledge base (no model).

Through the ``Assistant`` front door with the real embedder, store and documents: the answer is the
passage's answering lines with the context they need, or not-found - never related quotes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_fixtures import quoted_lines

from neoc_assistant.container import Container
from neoc_assistant.settings import Settings

KB = Path(__file__).resolve().parents[2] / "knowledge_base"


@pytest.fixture(scope="module")
def assistant(embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("compose")
    container = Container(Settings(data_dir=data, kb_dir=KB, models_dir=data / "models", cache_enabled=False),
                          embedder=embedder)
    container.assistant.ingest([KB])
    return container.assistant


def test_a_table_answer_keeps_its_heading_and_column_names(assistant):
    answer = assistant.ask("Our shelter in the school has 300 people, how many toilets do we need?")
    assert answer.mode == "extractive"
    lines = answer.answer.splitlines()
    assert lines[0] == "Quoted from the documents:"
    quoted = quoted_lines(answer.answer)
    assert any("1 toilet per 50 people" in q and "Minimum:" in q for q in quoted), answer.answer
    assert all(q.rstrip().endswith("]") for q in quoted)  # every quoted line is cited
    heading = lines[lines.index(next(line for line in lines if "1 toilet per 50" in line)) - 1]
    assert heading.endswith(":") and "\u201c" not in heading  # the section it comes from, not a quote
    assert "technical minimums" not in answer.answer  # a neighbouring pointer is not the answer


def test_a_list_answer_keeps_its_lead_in_and_step_numbers(assistant):
    answer = assistant.ask("What has to be in an evacuation order when we send it out?")
    assert answer.mode == "extractive"
    assert "states:" in answer.answer  # the sentence that introduces the list
    for step in ("1.", "3.", "4.", "7."):
        assert any(line.startswith(f"{step} \u201c") for line in answer.answer.splitlines()), answer.answer
    assert "assembly point and the shelter" in answer.answer


def test_related_text_is_not_shown_when_nothing_gives_what_is_asked(assistant):
    answer = assistant.ask("How many doses of oral cholera vaccine does each person get in the campaign?")
    assert answer.mode == "not-found", answer.answer
    assert "\u201c" not in answer.answer  # no quotes at all
    assert "doses" in answer.answer  # says what the documents did not give
    listed = [line for line in answer.answer.splitlines() if line.startswith("- ")]
    assert listed and len(listed) == len(set(listed))  # each nearest document once


def test_a_local_word_does_not_veto_a_question_the_documents_answer(assistant):
    answer = assistant.ask("Cloudburst reported above a hill village on a small khola. "
                           "How much rain in 3 hrs means we order evacuation?")
    assert answer.mode == "extractive" and "100 mm in 3 hours" in answer.answer, answer.answer
    deoc = assistant.ask("Jumla DEOC asks: how much forecast snowfall triggers a cold alert in the high mountain "
                         "districts?")
    assert deoc.mode == "extractive" and "30 cm" in deoc.answer, deoc.answer


def test_a_place_the_documents_never_name_is_still_not_found(assistant):
    answer = assistant.ask("What is the shelter capacity in Jajarkot district?")
    assert answer.mode == "not-found" and "jajarkot" in answer.answer.lower(), answer.answer


def test_sources_carry_the_quoted_statements_to_highlight(assistant):
    answer = assistant.ask("How much drinking water per person per day must a shelter provide?")
    assert answer.mode == "extractive"
    quoted = [q for s in answer.sources for q in s["quoted"]]
    assert quoted and all(any(q in s["text"] or q.split(": ")[-1] in s["text"] for s in answer.sources)
                          for q in quoted)
    assert any("15 litres per person per day" in q for q in quoted)


def test_a_measured_thing_no_document_names_is_not_found(assistant):
    # the outbreak thresholds for AWD and cholera are on topic, but no document names leptospirosis
    answer = assistant.ask("How many leptospirosis cases after the floods count as an outbreak?")
    assert answer.mode == "not-found" and "leptospirosis" in answer.answer.lower(), answer.answer


def test_a_rate_of_pay_needs_money_in_the_answer(assistant):
    # the call-down list's "80% of listed people" is a figure, not an allowance
    answer = assistant.ask("What daily allowance do RRT members get when they deploy to the field?")
    assert answer.mode == "not-found", answer.answer


def test_the_counted_thing_may_be_named_by_its_glossary_alternative(assistant):
    # "HHs" is the officers' word; the documents write "households"
    answer = assistant.ask("how many HHs displaced in one event before we're talking full activation?")
    assert answer.mode == "extractive" and "households displaced" in answer.answer, answer.answer


def test_an_english_word_the_documents_capitalise_is_no_name_to_veto_on(assistant):
    # the forms guide writes "Demobilization Check-out"; "check-out" in lower case is not a name
    answer = assistant.ask("Team is leaving tomorrow. Which sign-offs do they collect on the demob check-out?")
    assert answer.mode == "extractive" and "sign-offs" in answer.answer, answer.answer


def test_a_lead_in_brings_what_it_introduces(embedder, tmp_path):
    # plain text as PDFs give it: the lead-in repeats the question's words, the signs are the answer
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "first-aid.txt").write_text(
        "Treating shock\n\nIt is common for a person in shock to be fully coherent and not complaining of pain. "
        "Pay attention to subtle clues, as failure to recognize shock has serious consequences. "
        "Main signs of shock:\n\nRapid and shallow breathing.\nCapillary refill of greater than two seconds.\n"
        "Failure to follow simple commands.\n\nKeep the casualty lying down and warm.\n", encoding="utf-8")
    container = Container(Settings(data_dir=tmp_path / "data", kb_dir=kb, models_dir=tmp_path / "models",
                                   cache_enabled=False), embedder=embedder)
    container.assistant.ingest([kb])
    answer = container.assistant.ask("What signs tell a first aider a casualty is going into shock?")
    assert answer.mode == "extractive", answer.answer
    for sign in ("shallow breathing", "two seconds", "simple commands"):
        assert sign in answer.answer, answer.answer
