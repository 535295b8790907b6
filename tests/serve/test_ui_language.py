"""The UI in Nepali (``serve.ui_language = "ne"``): the built page's labels, and what its handlers say.

The Blocks are built as the server builds them and their components read back, so a label left in
the code (not in ``language/data/texts.toml``) or a language setting that is not passed on fails here.
"""

from __future__ import annotations

import json

import gradio as gr
import pytest

from neoc_assistant.errors import BusyError
from neoc_assistant.serve import render
from neoc_assistant.serve.chat_handlers import ChatHandlers, message_text
from neoc_assistant.serve.ui import build_ui, confirm_delete_js
from neoc_assistant.settings import Settings

from ui_fixtures import FakeAssistant, make_answer, roundtrip


def _settings(tmp_path, lang: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", kb_dir=tmp_path / "kb", models_dir=tmp_path / "models",
                    serve={"ui_language": lang})


def _texts(demo: gr.Blocks) -> dict[str, set[str]]:
    """What the page shows, by kind: button and tab texts, labels, placeholders, example questions."""
    out: dict[str, set[str]] = {"button": set(), "tab": set(), "label": set(), "placeholder": set(),
                                "example": set(), "header": set(), "markdown": set()}
    for block in demo.blocks.values():
        if isinstance(block, gr.Button):
            out["button"].add(str(block.value))
        elif isinstance(block, gr.Tab):
            out["tab"].add(str(block.label))
        elif isinstance(block, gr.Markdown):
            out["markdown"].add(str(block.value))
        if isinstance(block, (gr.File, gr.Dropdown, gr.Chatbot, gr.Dataframe)) and block.label:
            out["label"].add(str(block.label))
        if getattr(block, "placeholder", None):
            out["placeholder"].add(str(block.placeholder))
        if isinstance(block, gr.Chatbot):
            out["example"].update(e["text"] for e in block.examples or [])
        if isinstance(block, gr.Dataframe):
            out["header"].update(block.value["headers"])
    return out


def test_the_ui_built_in_nepali_shows_the_nepali_labels(tmp_path):
    demo = build_ui(FakeAssistant(_settings(tmp_path, "ne")))
    shown = _texts(demo)
    assert {"पठाउनुहोस्", "■ रोक्नुहोस्", "नयाँ कुराकानी", "ज्ञानकोषमा थप्नुहोस्", "हटाउनुहोस्"} <= shown["button"]
    assert shown["tab"] == {"कुराकानी", "ज्ञानकोष", "प्रणाली"}
    assert "कागजात हटाउनुहोस्" in shown["label"] and "समावेश गरिएका कागजातहरू" in shown["label"]
    assert any(label.startswith("कागजात थप्नुहोस् (") for label in shown["label"])
    assert any("प्रश्न सोध्नुहोस्" in p for p in shown["placeholder"])
    assert "EOC activation level हरू के-के हुन्?" in shown["example"]
    assert "स्रोत" in shown["header"] and "source" not in shown["header"]
    assert any("<h1>NEOC सहायक</h1>" in md for md in shown["markdown"])
    assert any("ज्ञानकोष खाली छ" in md for md in shown["markdown"])  # the status line
    english = {"Send", "■ Stop", "New conversation", "Delete", "Chat", "Knowledge base", "System"}
    assert not english & (shown["button"] | shown["tab"]), english & (shown["button"] | shown["tab"])
    assert json.dumps(" लाई ज्ञानकोषबाट हटाउने?") in next(f.js for f in demo.fns.values() if f.name == "delete")


def test_the_default_ui_is_english(tmp_path):
    shown = _texts(build_ui(FakeAssistant(_settings(tmp_path, "en"))))
    assert {"Send", "■ Stop", "New conversation"} <= shown["button"]
    assert shown["tab"] == {"Chat", "Knowledge base", "System"}
    assert not any("\u0900" <= c <= "\u097f" for text in set().union(*shown.values()) for c in text)


def test_the_delete_confirmation_is_valid_javascript_whatever_the_text():
    """The text goes into the page's JavaScript as JSON strings: a quote in a translation cannot end it."""
    js = confirm_delete_js("ne")
    assert js == '(s) => (s && confirm("" + s + ' + json.dumps(" लाई ज्ञानकोषबाट हटाउने?") + ')) ? s : null'
    assert confirm_delete_js("en") == '(s) => (s && confirm("Remove " + s + " from the knowledge base?")) ? s : null'


def test_a_nepali_ui_chat_waits_answers_and_stops_in_nepali(tmp_path):
    fake = FakeAssistant(_settings(tmp_path, "ne"), answer=make_answer(question="How much water?"))
    chat = build_ui(fake).neoc_handlers["chat"]
    _, messages, pending = chat.add_user("How much water?", [], None)
    assert messages[-1]["content"] == "_उत्तर-स्लट खाली हुने प्रतीक्षामा…_"
    # Stop before the answer started: the Nepali placeholder is recognised as one (no answer shown)
    stopped, _ = chat.stop(roundtrip(messages), [], None)
    assert message_text(stopped[-1]).endswith("रोकियो।_")
    updates = list(chat.respond("How much water again?", roundtrip(messages), [], None))
    final = message_text(updates[-1][0][-1])
    assert "**स्रोतहरू**" in final and "मा उत्तर" in final and "Sources" not in final


def test_the_nepali_ui_names_errors_and_feedback_in_nepali(tmp_path):
    chat = ChatHandlers(FakeAssistant(_settings(tmp_path, "ne"), error=BusyError("all slots busy")), language="ne")
    update = list(chat.respond("q", [{"role": "user", "content": "q"}], [], None))[-1]
    assert "**सहायक व्यस्त छ:**" in message_text(update[0][-1])
    assert render.error_markdown("BusyError", "x") == "> ⚠ **The assistant is busy:** x"  # English default


def test_the_setting_takes_only_the_two_languages(monkeypatch, tmp_path):
    monkeypatch.setenv("NEOC_SERVE__UI_LANGUAGE", "ne")
    assert Settings(data_dir=tmp_path).serve.ui_language == "ne"
    monkeypatch.setenv("NEOC_SERVE__UI_LANGUAGE", "fr")
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path)
