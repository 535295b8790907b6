"""The OpenAI-compatible backend's stream against a stand-in server on loopback (real HTTP, real SSE):
what the stream tells its backend - the answer ended, the server broke - reaches it through the
two callables it was given, and the slot and the server are given back either way."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neoc_assistant.generate.openai_backend import OpenAIBackend
from neoc_assistant.settings import GenerationSettings

MESSAGES = [{"role": "user", "content": "How many litres of water per person per day?"}]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    pieces: list[str] = []
    fail_after: int | None = None  # send an error event after this many pieces


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
        self._event({"choices": [{"delta": {}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 21, "completion_tokens": len(self.server.pieces)}})
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
