"""Fuzzing what the page is sent: whatever a document, a model or a question contains, the HTML
has no image, script, link, event handler or address, and nothing the browser's own Markdown
renderer could still read as markup. Also: any question text through the JSON API gets an answer
or the documented error, never a 500.

Hypothesis with a fixed budget (``max_examples`` and ``deadline`` below): a few seconds in the
default test run. Inputs are built from the fragments attacks are made of, mixed with random text.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from fastapi.testclient import TestClient

from neoc_assistant.serve import render
from neoc_assistant.serve.app import create_app
from neoc_assistant.serve.safe_components import SafeChatbot
from neoc_assistant.serve.safe_html import ALLOWED_TAGS, MARKER, plain_html, text_of, to_html
from ui_fixtures import ApiFake
from ui_fixtures import make_answer

BUDGET = settings(max_examples=100, deadline=timedelta(milliseconds=500), database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FRAGMENTS = [
    "![", "](", "]", "[", "\\]", "\\[", "(", ")", "http://evil.example/x.png", "https://evil.example", "//evil.example",
    "www.evil.example", "mailto:a@evil.example", "a@evil.example", "javascript:alert(1)", "data:image/png;base64,AA",
    "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "<svg onload=alert(1)>", "<a href='http://e'>",
    "<iframe src=//e>", "<style>", "</p>", "<!--", "-->", "<", ">", "&lt;img&gt;", "&#60;", "&", '"', "'", "`", "```",
    "$$", "\\(", "[x]: http://evil.example/r.png", "[x]", "![x][x]", "<http://evil.example>", " onmouseover=", "=",
    "\n", "\n\n", "    ", "- ", "1. ", "> ", "# ", "|", "|---|", "*", "**", "_", "~~", "\u202e", "\x00", "\ufeff",
]
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=24).map("".join)

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^<>]*)>")
_TEXT_OK = re.compile(r"(?:&#\d+;|[^\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e<>])*")


def assert_inert(out: str) -> None:
    assert out.startswith(MARKER) and out.endswith("</div>") and "\n" not in out
    body = out[len(MARKER):-len("</div>")]
    for closing, name, attrs in _TAG.findall(body):
        assert name.lower() in ALLOWED_TAGS and attrs == "", (name, attrs)
    for text in _TAG.split(body)[::4]:  # the text between the tags
        assert _TEXT_OK.fullmatch(text), text  # not one ASCII punctuation mark: no Markdown, link or LaTeX
    lowered = out.lower()  # (words like "href" or "onerror=" may be text: shown, with "=" as a reference)
    for banned in ("<img", "<script", "<a ", "<a>", "<iframe", "<svg", "<style", "<object", "<embed"):
        assert banned not in lowered, banned
    assert out.count("=") == 1  # the marker's class: no attribute anywhere else, so no on*=, href= or src=


@BUDGET
@given(hostile)
def test_any_markdown_renders_inert_and_rendering_again_changes_nothing(text):
    out = to_html(text)
    assert_inert(out)
    assert to_html(out) == out  # what the browser sends back is rendered again the same way


@BUDGET
@given(hostile)
def test_a_question_is_shown_as_literal_text(question):
    out = plain_html(question)
    assert_inert(out)
    visible = "".join(question.split()).replace("\x00", "").replace("\ufeff", "")
    assert "".join(text_of(out).split()).replace("\ufffd", "").replace("\ufeff", "") == visible


@BUDGET
@given(answer=hostile, excerpt=hostile, source=hostile, notice=hostile, claim=hostile)
def test_a_whole_chat_bubble_is_inert_whatever_the_documents_say(answer, excerpt, source, notice, claim):
    ans = make_answer(answer, mode="extractive", notice=notice,
                      sources=[{"n": 1, "source": source or "a.md", "page": 2, "excerpt": excerpt}],
                      verification={"status": "partial", "claims": [{"text": claim, "supported": False}]})
    messages = SafeChatbot().postprocess([{"role": "user", "content": claim},
                                          {"role": "assistant", "content": render.answer_markdown(ans)},
                                          {"role": "assistant", "content": render.streaming_markdown(answer)}])
    for message in messages.root:
        for part in message.content:
            assert_inert(part.text)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from neoc_assistant.settings import Settings

    fake = ApiFake(Settings(data_dir=tmp_path_factory.mktemp("fuzz-api")))
    with TestClient(create_app(fake, concurrency_limit=1, mode="extractive")) as client:
        yield client


@settings(max_examples=40, deadline=timedelta(seconds=2), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(question=st.one_of(hostile, st.text(max_size=200)),
       history=st.one_of(st.none(), st.lists(st.tuples(hostile, hostile), max_size=3)),
       extra=st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)))
def test_any_question_body_gets_an_answer_or_the_documented_error(api, question, history, extra):
    payload = {"question": question, "history": history}
    if extra is not None:
        payload["use_cache"] = extra
    resp = api.post("/api/ask", content=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    assert resp.status_code in (200, 400), resp.text[:300]
    body = resp.json()
    if resp.status_code == 400:
        assert set(body) == {"error", "message"} and body["error"] == "InputError" and "\n" not in body["message"]
    else:
        assert body["answer"]
