"""The HTTP side of the ``openai`` backend: one streamed ``POST /v1/chat/completions`` per answer.

Kept apart from ``openai_backend.py`` (which chooses servers, packs prompts and
counts slots) because this is the part that owns sockets: each answer gets its
own connection, so Stop (the ``cancel`` event, watched by ``CancelWatcher``, or
``RemoteStream.close()``) can shut it down at once, from any thread, in any
phase - connecting, queued at the server, prefilling, streaming - and the server
sees the client gone and frees its slot. The standard library's ``http.client``
is enough for the protocol (see ``openai_backend.py`` for why not LangChain).
The stream applies the same hygiene as the local engine's: chat markers are
never shown and a looping answer is ended (``stream_guard.py``). An answer is
whole only when the server gives ``finish_reason`` "stop" or "length" and then
``[DONE]``; a stream cut any other way (dropped connection, an error event, a
bare ``[DONE]``) ends with ``finish_reason = "error"``, so the chain labels
what was verified as cut off and never caches it.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Callable, Iterator
from urllib.parse import urlsplit

from neoc_assistant.errors import InputError
from neoc_assistant.generate.backend import ClosingStream
from neoc_assistant.generate.chat_template import ALWAYS_STOP
from neoc_assistant.generate.stream_guard import LoopDetector, StopScanner


# A stream is complete only when the server says why it ended ("stop" or "length") and then sends
# [DONE]. llama_cpp.server started without ``--interrupt_requests False`` ends a running answer with
# a bare [DONE] as soon as another request arrives: the stub would otherwise pass for the whole answer.
UNFINISHED = ("the server ended the stream without a finish_reason, so the answer was cut short "
              "(llama_cpp.server does this when another request arrives, unless started with "
              "--interrupt_requests False)")


class ServerFailure(Exception):
    """This server cannot answer now (connection, timeout, 5xx, refused key): try another."""


class Exchange:
    """One HTTP request on its own connection; ``abort()`` (any thread) shuts its socket down."""

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, headers: dict[str, str]):
        parts = urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(parts.hostname, parts.port, timeout=connect_timeout)  # type: ignore[arg-type]
        self.prefix = parts.path.rstrip("/")
        self.read_timeout = read_timeout
        self.headers = headers
        self.aborted = False
        self.response: http.client.HTTPResponse | None = None

    def post(self, path: str, body: dict) -> http.client.HTTPResponse:
        """Send; returns the response once its headers arrived. Raises ServerFailure or OSError."""
        try:
            self.conn.connect()
        except OSError as exc:
            if self.aborted:
                raise ConnectionAbortedError("cancelled") from exc
            raise ServerFailure(f"cannot connect: {exc}") from exc
        if self.aborted:
            raise ConnectionAbortedError("cancelled")
        self.conn.sock.settimeout(self.read_timeout)
        data = json.dumps(body).encode("utf-8")
        try:
            self.conn.request("POST", self.prefix + path, body=data,
                              headers={"Content-Type": "application/json", **self.headers})
            self.response = self.conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if self.aborted:
                raise ConnectionAbortedError("cancelled") from exc
            raise ServerFailure(f"no response: {exc}") from exc
        return self.response

    def abort(self) -> None:
        self.aborted = True
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.conn.close()


def check_status(response: http.client.HTTPResponse) -> None:
    """4xx other than auth/not-found is the request's fault (InputError); the rest, the server's."""
    if response.status == 200:
        return
    detail = response.read(2000).decode("utf-8", "replace").strip().replace("\n", " ")[:300]
    if response.status == 400:
        raise InputError(f"the LLM server refused the request: {detail} (a long question? raise the server's "
                         "context or lower NEOC_N_CTX)")
    raise ServerFailure(f"HTTP {response.status}: {detail}")


class CancelWatcher:
    """One thread per backend that aborts a stream's connection as soon as its cancel event is set
    (the consumer may be blocked reading, or not reading at all)."""

    POLL_SECONDS = 0.02

    def __init__(self):
        self._watched: dict[int, tuple[threading.Event, Exchange]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, cancel: threading.Event, exchange: Exchange) -> None:
        with self._lock:
            self._watched[id(exchange)] = (cancel, exchange)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="neoc-llm-cancel", daemon=True)
                self._thread.start()

    def unwatch(self, exchange: Exchange) -> None:
        with self._lock:
            self._watched.pop(id(exchange), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.POLL_SECONDS)
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return
                fired = [ex for ev, ex in self._watched.values() if ev.is_set() and not ex.aborted]
            for exchange in fired:
                exchange.abort()


class RemoteStream(ClosingStream, Iterator[str]):
    """Text pieces of one streamed answer (see ``TextStream`` in ``backend.py``).

    The backend hears of it through two callables bound to this answer's server and connection -
    ``on_failed(reason)`` when the stream broke, ``on_end(stats)`` exactly once - and never the
    other way round: the stream reads none of the backend's state."""

    def __init__(self, exchange: Exchange | None, cancel: threading.Event, stats: dict, *, loop_guard: bool,
                 on_failed: Callable[[str], None], on_end: Callable[[dict], None]):
        self._exchange, self.cancel = exchange, cancel
        self._loop_guard, self._on_failed, self._on_end = loop_guard, on_failed, on_end
        self.stats = stats
        self._lock = threading.Lock()
        self._done = exchange is None  # an answer cancelled before it started
        self._active = self._closing = False
        self._n = 0
        self._t0 = time.perf_counter()
        self._pieces = self._read() if exchange is not None else iter(())

    def __iter__(self) -> "RemoteStream":
        return self

    def __next__(self) -> str:
        with self._lock:
            if self._done:
                raise StopIteration
            self._active = True
        piece = None
        try:
            piece = next(self._pieces, None)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._failed(exc)
        finally:
            with self._lock:
                self._active = False
        if piece is None:
            self._finish("stop")
            raise StopIteration
        return piece

    def _read(self) -> Iterator[str]:
        stops = StopScanner(ALWAYS_STOP)
        loop = LoopDetector() if self._loop_guard else None
        for event in _sse_events(self._exchange.response):  # type: ignore[union-attr, arg-type]  # read only when there is an exchange
            if event.get("usage"):
                usage = event["usage"]
                self.stats.update(prompt_tokens=usage.get("prompt_tokens", self.stats["prompt_tokens"]),
                                  server_completion_tokens=usage.get("completion_tokens"))
            if "error" in event:
                raise ValueError(f"server error: {str(event['error'])[:300]}")
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                if choice.get("finish_reason"):
                    self.stats["finish_reason"] = _ended_as(choice["finish_reason"])
                if not text:
                    continue
                self._n += 1
                if self._n == 1:
                    self.stats["ttft_seconds"] = time.perf_counter() - self._t0
                shown, stopped = stops.feed(text)
                if stopped:
                    self.stats.update(finish_reason="stop", stopped_on=stops.stopped_on)
                elif loop is not None and loop.feed(text):
                    self.stats.update(finish_reason="loop", loop=loop.reason)
                if shown:
                    yield shown
                if stopped or self.stats.get("finish_reason") == "loop":
                    return
        if self.stats.get("finish_reason") is None:
            raise ConnectionError(UNFINISHED)
        tail = stops.flush()
        if tail:
            yield tail

    def _failed(self, exc: Exception) -> None:
        if self._closing or self.cancel.is_set():
            self.stats["finish_reason"] = "cancelled"
            return
        self.stats.update(finish_reason="error", error=f"{type(exc).__name__}: {exc}"[:300])
        self._on_failed(f"stream broke: {exc}")

    def _finish(self, reason: str) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        stats = self.stats
        if stats.get("finish_reason") is None:
            stats["finish_reason"] = reason
        stats["generated_tokens"] = stats.get("server_completion_tokens") or self._n
        stats["decode_seconds"] = time.perf_counter() - self._t0 - stats.get("ttft_seconds", 0.0)
        self._on_end(stats)

    def close(self) -> None:
        """Stop now: the connection is shut down, so the server stops writing this answer."""
        with self._lock:
            if self._done:
                return
            self._closing = True
            busy = self._active
        self._exchange.abort()  # type: ignore[union-attr]  # not done: there is an exchange
        if not busy:
            self._finish("cancelled")



def _ended_as(finish_reason: str) -> str:
    """The server's reason, if it is one of the two that end an answer; any other ("abort",
    "content_filter", a tool call we never asked for) means the text is not the whole answer."""
    if finish_reason in ("stop", "length"):
        return finish_reason
    raise ValueError(f"the server ended the answer with finish_reason {finish_reason!r}")


def _sse_events(response: http.client.HTTPResponse) -> Iterator[dict]:
    """The JSON ``data:`` payloads of a server-sent-event stream, until ``[DONE]``."""
    while True:
        line = response.readline()
        if not line:  # a complete stream ends with [DONE]; this one was cut (or aborted by us)
            raise ConnectionError("the server closed the stream before it ended")
        line = line.strip()
        if not line.startswith(b"data:"):
            continue  # comments (": ping"), event names, blank separators
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        yield json.loads(payload)
