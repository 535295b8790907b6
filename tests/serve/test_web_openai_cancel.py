"""The OpenAI-compatible API when the client goes away mid-answer, and against wrong keys.

The server is real (uvicorn on 127.0.0.1) and so is the client (the ``openai`` package). What
stands behind the API here is the UI tests' scripted assistant, which streams a long answer
slowly and honours ``cancel`` like the real chain: the point is what the API does with a
client that leaves - stop the answer and give its slot back - not the answer itself.
"""

from __future__ import annotations

import time

import openai
import pytest

from neoc_assistant.settings import Settings

from openai_fixtures import LiveServer, make_key, serve_app
from ui_fixtures import FakeAssistant

MODEL = "neoc-assistant"


class SlowAssistant(FakeAssistant):
    def __init__(self, settings):
        super().__init__(settings, tokens=[f"word{i} " for i in range(400)], token_delay=0.01)
        self.sent = 0
        self.ended = None

    def validate_question(self, question, history=()):
        return question.strip()

    def ask_stream(self, question, *, history=None, filters=None, use_cache=True, cancel=None, asker=None):
        for event in super().ask_stream(question, history=history, cancel=cancel):
            self.sent += event.kind == "token"
            if event.kind == "done":
                self.ended = time.monotonic()
            yield event


@pytest.fixture
def slow(settings):
    key, hashed = make_key()
    fake = SlowAssistant(Settings(data_dir=settings.paths.data_dir, serve={
        "api_keys": {"tester": hashed}, "login_free_attempts": 2, "login_backoff_max_seconds": 60}))
    app = serve_app(fake)
    with LiveServer(app) as server:
        server.key, server.fake, server.app = key, fake, app
        yield server


def test_a_stream_closed_mid_answer_cancels_the_answer_and_frees_its_slot(slow):
    client = openai.OpenAI(base_url=slow.base_url, api_key=slow.key, max_retries=0)
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "long one"}],
                                            stream=True)
    got = []
    for chunk in stream:
        got.append(chunk.choices[0].delta.content or "")
        if len(got) >= 6:
            break
    assert "".join(got).startswith("word0 word1 ")
    closed = time.monotonic()
    stream.close()  # the client goes away: the connection is closed
    cancel = slow.fake.calls[-1]["cancel"]
    assert cancel.wait(5), "the answer was not cancelled when its client left"
    deadline = time.monotonic() + 5
    while slow.fake.ended is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.fake.ended is not None and slow.fake.ended - closed < 2
    assert slow.fake.sent < 200, f"{slow.fake.sent} of 400 words written for nobody"
    admission = slow.app.state.admission
    deadline = time.monotonic() + 5
    while admission.snapshot()["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert admission.snapshot()["running"] == 0


def test_wrong_keys_are_throttled_like_wrong_passwords(slow):
    wrong = openai.OpenAI(base_url=slow.base_url, api_key="neoc-guess", max_retries=0)
    for _ in range(2):  # the free attempts: checked, refused
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    right = openai.OpenAI(base_url=slow.base_url, api_key=slow.key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:  # not even checked while the wait runs
        right.models.list()
    assert caught.value.body["type"] == "rate_limit_error" and "try again in" in caught.value.body["message"]
    assert int(caught.value.response.headers["retry-after"]) >= 1
    time.sleep(1.1)
    assert [m.id for m in right.models.list().data] == [MODEL]  # the right key clears the count


def test_a_placeholder_key_works_when_no_keys_and_no_login_are_configured(settings):
    """Open WebUI and the openai package always send a key; an open server must not refuse them."""
    fake = SlowAssistant(Settings(data_dir=settings.paths.data_dir))
    fake.tokens = ["Fine [1]."]
    with LiveServer(serve_app(fake)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
        reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "q"}])
    assert reply.choices[0].message.content.startswith("Fine [1].")
    assert fake.calls[-1]["question"] == "q"


def test_the_ui_login_also_opens_the_api_for_a_person_with_curl(settings):
    import httpx

    key, hashed = make_key()
    fake = SlowAssistant(Settings(data_dir=settings.paths.data_dir, auth_username="duty", auth_password="s3cret",
                                  serve={"api_keys": {"tester": hashed}}))
    fake.tokens = ["Fine."]
    with LiveServer(serve_app(fake)) as server:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "q"}]}
        assert httpx.post(server.base_url + "/chat/completions", json=body, auth=("duty", "s3cret")).status_code == 200
        refused = httpx.post(server.base_url + "/chat/completions", json=body)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
        assert httpx.get(server.base_url + "/nope", auth=("duty", "s3cret")).json()["error"]["code"] == "unknown_url"
        wrong_method = httpx.get(server.base_url + "/chat/completions", auth=("duty", "s3cret"))
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
