"""The OpenAI-compatible backend's stream against a stand-in server on loopback (real HTTP, real SSE):
what the stream tells its backend - the answer ended, the server broke - reaches it through the
two callables it was given, and the slot and the server are given back either way. The stand-in is
not what is tested (our client is): it ends its stream the ways real servers do, including the bare
``[DONE]`` with no ``finish_reason`` that ``llama_cpp.server`` sends when another request interrupts
an answer, and the connection closed before ``[DONE]``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neoc_assistant.answer import SERVER_CUT_NOTICE, SERVERS_DOWN_NOTICE
from neoc_assistant.generate.openai_backend import OpenAIBackend
from neoc_assistant.settings import GenerationSettings

from openai_fixtures import WATER, small_kb_container

MESSAGES = [{"role": "user", "content": "How many litres of water per person per day?"}]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    pieces: list[str] = []
    fail_after: int | None = None  # send an error event after this many pieces
    # how the stream ends: "stop" | "length" (a finish_reason, then [DONE]); "bare-done" ([DONE] with no
    # finish_reason: llama_cpp.server interrupted); "dropped" (the connection closes before [DONE]);
    # "stop-dropped" (finish_reason "stop", then the connection closes before [DONE])
    ending = "stop"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)  # no /tokenize: the backend estimates token counts
            return
        assert body["stream"] is True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for n, piece in enumerate(self.server.pieces):
            if self.server.fail_after is not None and n == self.server.fail_after:
                self._event({"error": {"message": "out of memory"}})
                return
            self._event({"choices": [{"delta": {"content": piece}, "finish_reason": None}]})
        ending = self.server.ending
        if ending in ("stop", "length", "stop-dropped"):
            self._event({"choices": [{"delta": {}, "finish_reason": ending.split("-")[0]}],
                         "usage": {"prompt_tokens": 21, "completion_tokens": len(self.server.pieces)}})
        if ending in ("stop", "length", "bare-done"):
            self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, payload: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()


@pytest.fixture
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.pieces = ["Each person ", "needs 15 litres ", "a day."]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _backend(server) -> OpenAIBackend:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return OpenAIBackend(GenerationSettings(backend="openai", server_urls=url, server_model="stand-in",
                                            server_max_concurrent=1))


def test_a_whole_answer_streams_and_its_end_reaches_the_backend(server):
    backend = _backend(server)
    for _ in range(2):  # one slot: the second answer starts only if the first gave it back
        with backend.stream(MESSAGES) as stream:
            assert "".join(stream) == "Each person needs 15 litres a day."
        assert stream.stats["finish_reason"] == "stop" and stream.stats["generated_tokens"] == 3
        assert stream.stats["prompt_tokens"] == 21  # the server's own count replaces the estimate
    stats = backend.pool_stats()
    assert stats["requests"] == 2 and stats["generated_tokens"] == 6 and stats["in_use"] == 0
    assert stats["servers"][0]["up"] and stats["servers"][0]["in_flight"] == 0


def test_a_broken_stream_marks_its_server_down_and_frees_the_slot(server):
    server.fail_after = 1
    backend = _backend(server)
    with backend.stream(MESSAGES) as stream:
        assert "".join(stream) == "Each person "
    assert stream.stats["finish_reason"] == "error" and "out of memory" in stream.stats["error"]
    (state,) = backend.pool_stats()["servers"]
    assert not state["up"] and "stream broke" in state["last_error"] and state["in_flight"] == 0
    assert not backend.available()


def test_closing_early_ends_the_answer_once(server):
    backend = _backend(server)
    stream = backend.stream(MESSAGES)
    assert next(stream) == "Each person "
    stream.close()
    stream.close()
    assert stream.stats["finish_reason"] == "cancelled"
    assert list(stream) == []
    assert backend.pool_stats()["in_use"] == 0
    with backend.stream(MESSAGES) as again:  # the slot is free again
        assert "".join(again).endswith("a day.")


@pytest.mark.parametrize("ending", ["bare-done", "dropped", "stop-dropped"])
def test_a_stream_that_ends_without_saying_why_is_not_a_whole_answer(server, ending):
    server.ending = ending
    backend = _backend(server)
    with backend.stream(MESSAGES) as stream:
        text = "".join(stream)
    assert text == "Each person needs 15 litres a day."  # every piece arrived, yet the end was not said
    assert stream.stats["finish_reason"] == "error"
    (state,) = backend.pool_stats()["servers"]
    assert not state["up"] and state["in_flight"] == 0 and backend.pool_stats()["in_use"] == 0
    if ending == "bare-done":
        assert "--interrupt_requests False" in stream.stats["error"]


def test_a_length_cut_is_reported_as_length_and_the_server_stays_up(server):
    server.ending = "length"
    backend = _backend(server)
    with backend.stream(MESSAGES) as stream:
        assert "".join(stream) == "Each person needs 15 litres a day."
    assert stream.stats["finish_reason"] == "length"
    assert backend.pool_stats()["servers"][0]["up"]


WATER_ANSWER = ["Each person needs ", "15 litres of water ", "per person per day [1]."]


@pytest.fixture
def answering(server, embedder, tmp_path):
    """The whole chain over a small knowledge base, its answers written by the stand-in server."""
    server.pieces = WATER_ANSWER
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return small_kb_container(tmp_path, embedder, generation={
        "backend": "openai", "server_urls": url, "server_model": "stand-in"}).assistant


def test_an_answer_the_server_cut_short_is_labelled_and_never_cached(server, answering):
    server.ending = "bare-done"  # llama_cpp.server started without --interrupt_requests False
    answer = answering.ask(WATER)
    assert answer.finish_reason == "error"
    assert SERVER_CUT_NOTICE in answer.notice or (answer.mode == "extractive" and SERVERS_DOWN_NOTICE in answer.notice)
    again = answering.ask(WATER)
    assert not again.cached


def test_a_whole_answer_through_the_chain_is_shown_as_written_and_cached(server, answering):
    answer = answering.ask(WATER)
    assert answer.mode == "llm" and answer.finish_reason == "stop", answer.notice
    assert "15 litres" in answer.answer and answer.notice == ""
    assert answering.ask(WATER).cached
