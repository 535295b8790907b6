"""A /v1 client sends our earlier answers back as the conversation: the footer we added to each
("Understood as: ...", a notice, "Sources:" and its lines) must not reach the follow-up reader as if the
officer had been told it in the answer's text (``serve/openai_schema.py``)."""

from __future__ import annotations

import pytest

from neoc_assistant.answer import Answer
from neoc_assistant.serve.openai_schema import ChatRequest, footer

BODY = "Quoted from the documents:\n\n- “At least 15 litres per person per day.” [1]\n\nAnd a second paragraph."
SOURCES = [{"n": 1, "source": "11-minimum-standards-wash-shelter.md", "page": None, "chunk_id": "c1",
            "section": "Water", "excerpt": "At least 15 litres", "score": 0.9}]


@pytest.mark.parametrize("question, understood, mode, notice", [
    ("How much water per person per day?", "", "extractive", ""),
    ("and for 300 people?", "How much water per person per day for 300 people?", "extractive", ""),
    ("and for 300 people?", "How much water for 300 people per day?", "llm", "Only the verified part is shown."),
    ("प्रति व्यक्ति कति पानी?", "", "extractive", ""),
    ("र बच्चाहरूका लागि?", "प्रति व्यक्ति प्रति दिन बच्चाहरूका लागि कति पानी?", "extractive", ""),
])
def test_the_footer_we_added_is_taken_off_what_the_client_sends_back(question, understood, mode, notice):
    answer = Answer(question=question, answer=BODY, mode=mode, sources=SOURCES, notice=notice,
                    understood_as=understood)
    sent = BODY + footer(answer)
    assert sent != BODY  # there is a footer to take off
    request = ChatRequest(model="neoc-assistant", messages=[
        {"role": "user", "content": question}, {"role": "assistant", "content": sent},
        {"role": "user", "content": "and who approves it?"}])
    last, history = request.conversation()
    assert last == "and who approves it?"
    assert history == [(question, BODY)]


def test_a_not_found_answers_understood_line_is_taken_off_too():
    answer = Answer(question="and for 300 people?", answer="Not in the knowledge base: ...", mode="not-found",
                    understood_as="How much fuel for 300 people?")
    sent = answer.answer + footer(answer)
    request = ChatRequest(model="m", messages=[
        {"role": "user", "content": "and for 300 people?"}, {"role": "assistant", "content": sent},
        {"role": "user", "content": "next?"}])
    assert request.conversation()[1] == [("and for 300 people?", "Not in the knowledge base: ...")]


def test_an_answer_without_our_footer_is_kept_whole():
    request = ChatRequest(model="m", messages=[
        {"role": "user", "content": "q"}, {"role": "assistant", "content": BODY},
        {"role": "user", "content": "next?"}])
    assert request.conversation()[1] == [("q", BODY)]
