"""An answer's notices are in its question's language, whatever the UI's language, on every path.

The real default knowledge base, no model (the answers a laptop without one gives): a question the
documents do not answer gets the not-found notice and the nearest documents in English for an English
question and in Nepali for a Nepali one; the chat bubble (an English UI) and the ``/v1`` footer
carry the same sentences. Document names and quotes are never translated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neoc_assistant.container import Container
from neoc_assistant.language.devanagari import has_devanagari
from neoc_assistant.serve import openai_schema
from neoc_assistant.serve.render import md_escape
from neoc_assistant.serve.chat_handlers import ChatHandlers, message_text
from neoc_assistant.settings import Settings

from ui_fixtures import make_answer, run_turn

KB_DIR = Path(__file__).resolve().parents[2] / "knowledge_base"
# Nothing in the default knowledge base says what a helicopter landing costs; "EOC" finds passages.
NEPALI_Q = "EOC मा हेलिकप्टर अवतरण शुल्क कति लाग्छ?"
ENGLISH_Q = "How many helicopters are stationed in Gorkha?"


@pytest.fixture(scope="module")
def kb(embedder, tmp_path_factory) -> Container:
    """The default knowledge base, ingested once for this module."""
    data_dir = tmp_path_factory.mktemp("kb-notices")
    container = Container(Settings(data_dir=data_dir, kb_dir=KB_DIR, models_dir=data_dir / "models"), embedder=embedder)
    summary = container.ingestor.ingest([KB_DIR])
    assert summary.ok and summary.count("added") == 17
    return container


def _listed(answer_text: str) -> list[str]:
    return [line[2:] for line in answer_text.splitlines() if line.startswith("- ")]


def test_an_english_question_gets_the_english_not_found(kb):
    answer = kb.assistant.ask(ENGLISH_Q)
    assert answer.mode == "not-found"
    assert answer.notice.startswith("Not in the") and not has_devanagari(answer.answer)


def test_a_nepali_question_gets_the_nepali_not_found_each_nearest_document_once(kb):
    answer = kb.assistant.ask(NEPALI_Q)
    assert answer.mode == "not-found", answer.answer
    assert answer.notice.startswith("कागजातमा भेटिएन:"), answer.notice
    lines = answer.answer.splitlines()
    assert lines[0] == answer.notice and lines[1] == "सबैभन्दा नजिकका कागजातहरू:"
    listed = _listed(answer.answer)
    names = [s["source"] for s in answer.sources]
    assert listed and len(listed) == len(set(listed))  # each document once
    assert [line.split(" (पृष्ठ ")[0] for line in listed] == names  # the names themselves untranslated
    assert all((KB_DIR / name).is_file() for name in names)
    assert "Not in" not in answer.answer and "nearest" not in answer.answer


def test_the_english_ui_shows_a_nepali_questions_notice_in_nepali(kb):
    chat = ChatHandlers(kb.assistant)  # serve.ui_language: en
    bubble = message_text(run_turn(chat, NEPALI_Q)[-1][0][-1])
    assert "कागजातमा भेटिएन" in bubble and "सबैभन्दा नजिकका कागजातहरू" in bubble
    names = {s["source"] for s in kb.assistant.ask(NEPALI_Q).sources}
    assert names and all(bubble.count(md_escape(name)) == 1 for name in names), bubble  # the bubble's Markdown


def test_the_v1_footer_is_in_the_questions_language():
    nepali = make_answer(question="पानी कति चाहिन्छ?", understood_as="प्रति व्यक्ति पानी कति चाहिन्छ?")
    footer = openai_schema.footer(nepali)
    assert "यसरी बुझियो: प्रति व्यक्ति पानी कति चाहिन्छ?" in footer and "\nस्रोतहरू:\n" in footer
    assert "Sources:" not in footer and "Understood as" not in footer
    sent_back = "उत्तर [1]." + openai_schema.footer(make_answer(question="पानी कति चाहिन्छ?"))
    assert openai_schema._without_sources(sent_back) == "उत्तर [1]."  # a client's history loses the Nepali footer too
    english = openai_schema.footer(make_answer(question="How much water?"))
    assert "\nSources:\n" in english and not has_devanagari(english)
