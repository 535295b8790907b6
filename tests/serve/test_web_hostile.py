"""The JSON endpoints against a hostile or overwhelming client: password guessing on ``/health``,
bodies no JSON reader takes, wrong methods, and more questions at once than the server can answer.

The real app (``create_app``) with a scripted assistant; the burst runs on a real uvicorn
server in a thread (real sockets, real concurrency), and ``/health`` is timed meanwhile.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from neoc_assistant.serve.app import create_app
from neoc_assistant.settings import Settings
from services import free_port
from ui_fixtures import ApiFake


def _fake(settings, **serve) -> ApiFake:
    fake = ApiFake(Settings(data_dir=settings.paths.data_dir, serve=serve))
    fake.health = lambda: {"healthy": True, "status": "ok", "checks": {"store": {"ok": True, "message": "12 chunks"}}}
    return fake


@pytest.fixture
def auth_client(settings):
    fake = _fake(settings, auth_username="duty", auth_password="s3cret", login_free_attempts=3,
                 login_backoff_max_seconds=60)
    with TestClient(create_app(fake, concurrency_limit=1, mode="extractive")) as client:
        yield client, fake


# -- /health was a password oracle -----------------------------------------------------------------------------
def test_a_wrong_password_on_health_looks_like_none_and_guesses_are_throttled(auth_client):
    """200 guesses against /health took 1.8 s, none throttled, and the right one unlocked ``checks``."""
    client, _ = auth_client
    nobody = client.get("/health")
    wrong = client.get("/health", auth=("duty", "guess-0"))
    assert (wrong.status_code, wrong.json()) == (nobody.status_code, nobody.json()) == (200, {"healthy": True,
                                                                                              "status": "ok"})
    drop = {"date", "content-length"}
    assert {k: v for k, v in wrong.headers.items() if k not in drop} == \
        {k: v for k, v in nobody.headers.items() if k not in drop}
    statuses = [client.get("/health", auth=("duty", f"guess-{i}")).status_code for i in range(1, 30)]
    assert statuses[:2] == [200, 200] and set(statuses[2:]) == {429}, statuses  # 3 free attempts in all
    right = client.get("/health", auth=("duty", "s3cret"))  # during the wait: not even checked
    assert right.status_code == 429 and "checks" not in right.text and int(right.headers["retry-after"]) >= 1
    assert client.get("/health").json() == {"healthy": True, "status": "ok"}  # a load balancer is never throttled
    # the same count covers the other routes that take a password
    assert client.get("/metrics", auth=("duty", "s3cret")).status_code == 429


def test_parallel_guesses_cannot_slip_past_the_count(auth_client):
    """Checked and counted in one step: a burst of guesses gets the free attempts, no more."""
    client, _ = auth_client
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda i: client.get("/health", auth=("duty", f"g{i}")).status_code, range(48)))
    assert statuses.count(200) == 3 and statuses.count(429) == 45, statuses


def test_the_right_password_shows_the_checks_and_resets_the_count(auth_client):
    client, _ = auth_client
    for i in range(2):
        client.get("/health", auth=("duty", f"guess-{i}"))
    full = client.get("/health", auth=("duty", "s3cret"))
    assert full.status_code == 200 and full.json()["checks"]["store"]["message"] == "12 chunks"
    assert [client.get("/health", auth=("duty", f"again-{i}")).status_code for i in range(4)] == [200] * 3 + [429]


# -- bodies, methods ----------------------------------------------------------------------------------------------
@pytest.fixture
def client(settings):
    with TestClient(create_app(_fake(settings), concurrency_limit=1, mode="extractive")) as c:
        yield c


@pytest.mark.parametrize("body", [
    b'{"question": "boats?", "use_cache": ' + b"9" * 5000 + b"}",  # over Python's 4300-digit int limit
    b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # nested past the JSON reader's recursion limit
    b'{"question": "boats?", "history": [[' + b"1" * 5000 + b', "an answer"]]}',
    b"[" * 100_000 + b"]" * 100_000,
])
def test_bodies_no_json_reader_takes_get_the_documented_400(client, body):
    resp = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert set(resp.json()) == {"error", "message"} and resp.json()["error"] == "InputError"
    assert '{"question"' in resp.json()["message"] and "9999" not in resp.text and "[[[" not in resp.text


def test_other_methods_are_405_and_health_answers_head(client):
    for method in ("GET", "PUT", "DELETE"):
        resp = client.request(method, "/api/ask")
        assert resp.status_code == 405 and resp.headers["allow"] == "POST"
        assert resp.json()["error"] == "MethodNotAllowed" and "POST" in resp.json()["message"]
    head = client.head("/health")
    assert head.status_code == 200 and head.content == b""
    assert client.head("/metrics").status_code == 200


# -- a burst: a bounded line, 503 + Retry-After beyond it, /health unaffected -------------------------------------
class _Server:
    """The app on a real uvicorn server in a thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _post(url: str, question: str) -> tuple[int, dict, str]:
    req = urllib.request.Request(url + "/api/ask", data=json.dumps({"question": question}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read()), ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("Retry-After", "")


def _timed_health(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(url + "/health", timeout=30) as resp:  # noqa: S310
        resp.read()
        return resp.status, time.perf_counter() - started


def test_a_burst_beyond_the_line_is_told_to_retry_and_health_stays_fast(settings):
    """200 questions at once: 8 HTTP 500s, 8 time-outs at 60 s, /health up to 7 s."""
    fake = _fake(settings, api_max_running=2, max_waiting=4, max_wait_seconds=20)
    release = threading.Event()
    answering = []
    plain_ask = fake.ask

    def slow_ask(question, **kw):
        answering.append(question)
        release.wait(20)
        return plain_ask(question, **kw)

    fake.ask = slow_ask
    with _Server(create_app(fake, concurrency_limit=1, mode="extractive")) as server, ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(_post, server.url, f"question {i}") for i in range(40)]
        deadline = time.monotonic() + 10
        while sum(f.done() for f in futures) < 34 and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = [f.result() for f in futures if f.done()]
        assert len(refused) == 34 and len(answering) == 2, (len(refused), len(answering))
        for status, body, retry_after in refused:
            assert status == 503 and body["error"] == "BusyError" and "try again in" in body["message"]
            assert int(retry_after) >= 1 and f"try again in {retry_after} s" in body["message"]
        timings = [_timed_health(server.url) for _ in range(5)]
        assert all(status == 200 for status, _ in timings) and max(t for _, t in timings) < 1.0, timings
        release.set()
        answered = [f.result() for f in futures if f.result()[0] == 200]
    assert len(answered) == 6 and all(body["answer"] for _, body, _ in answered)


def test_a_question_that_would_wait_or_waited_too_long_is_answered_503(settings):
    fake = _fake(settings, api_max_running=1, max_waiting=4, max_wait_seconds=0.5)
    block = threading.Event()
    release = threading.Event()
    plain_ask = fake.ask

    def ask(question, **kw):
        if block.is_set():
            release.wait(10)
        return plain_ask(question, **kw)

    fake.ask = ask
    with _Server(create_app(fake, concurrency_limit=1, mode="extractive")) as server, ThreadPoolExecutor(2) as pool:
        # the line is sized by time: at the initial 1 s an answer, one question ahead is already too long
        block.set()
        first = pool.submit(_post, server.url, "first")
        time.sleep(0.3)
        status, body, retry_after = _post(server.url, "second")
        assert status == 503 and "busy" in body["message"] and int(retry_after) >= 1
        release.set()
        assert first.result()[0] == 200
        # after quick answers the same line looks short, so a question waits - and gives up at 0.5 s
        block.clear()
        release.clear()
        for i in range(15):
            assert _post(server.url, f"quick {i}")[0] == 200
        block.set()
        first = pool.submit(_post, server.url, "slow")
        time.sleep(0.3)
        started = time.perf_counter()
        status, body, retry_after = _post(server.url, "behind the slow one")
        assert status == 503 and "within 0.5 s" in body["message"] and int(retry_after) >= 1
        assert 0.4 < time.perf_counter() - started < 3
        release.set()
        assert first.result()[0] == 200


def test_the_ui_refuses_a_question_when_the_line_is_full_and_says_how_long(settings):
    """The UI used to queue every question and leave the officer waiting; a full line now says so."""
    import gradio as gr

    from neoc_assistant.serve.chat_handlers import ChatHandlers
    from ui_fixtures import FakeAssistant

    chat = ChatHandlers(FakeAssistant(Settings(data_dir=settings.paths.data_dir,
                                               serve={"max_waiting": 3, "max_wait_seconds": 60})))
    chat.slots = 1
    chat.recent.add(4000, "ui", "extractive")  # answers take 4 s here
    chat.waiting = lambda: 3
    with pytest.raises(gr.Error) as refused:
        chat.add_user("Where do the boats launch?", [], None)
    assert "busy: try again in 16 s" in refused.value.message  # 4 s x (3 waiting + this one)
    chat.waiting = lambda: 2
    assert chat.add_user("Where do the boats launch?", [], None)[0] == ""  # room again: accepted
    chat.recent.add(200_000, "ui", "extractive")  # slow answers: the same short line implies too long a wait
    with pytest.raises(gr.Error):
        chat.add_user("Where do the boats launch?", [], None)


def _chat(url: str, question: str) -> tuple[int, dict]:
    body = {"model": "neoc-assistant", "messages": [{"role": "user", "content": question}]}
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_cached_answers_do_not_wait_in_line_behind_answers_being_written(settings):
    """At 50 users with 4 answer slots, 96 % of requests got 503 - most of them repeats the cache held,
    queued behind four model answers. A hit is now answered before the line; a miss still waits."""
    from ui_fixtures import make_answer

    fake = _fake(settings, api_max_running=1, max_waiting=0, max_wait_seconds=5)
    fake.cached["How much water per person?"] = make_answer("15 litres per person per day [1].", cached=True)
    release = threading.Event()
    plain_ask = fake.ask

    def slow_ask(question, **kw):
        release.wait(20)
        return plain_ask(question, **kw)

    fake.ask = slow_ask
    with _Server(create_app(fake, concurrency_limit=1, mode="extractive")) as server, ThreadPoolExecutor(2) as pool:
        writing = pool.submit(_post, server.url, "Who opens the shelter?")  # holds the one slot
        deadline = time.monotonic() + 5
        while not any(c["question"] == "Who opens the shelter?" for c in fake.calls) and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body, _ = _post(server.url, "Another question nobody asked before")
        assert status == 503 and body["error"] == "BusyError"  # a miss: no slot and no room to wait
        status, body, _ = _post(server.url, "How much water per person?")
        assert status == 200 and body["cached"] is True and "15 litres" in body["answer"]
        status, chat = _chat(server.url, "How much water per person?")  # the OpenAI route too
        assert status == 200 and "15 litres" in chat["choices"][0]["message"]["content"]
        assert not writing.done()  # both hits were answered while the slot was still taken
        release.set()
        assert writing.result()[0] == 200
