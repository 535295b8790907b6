"""Which LLM server gets the next answer, and which ones are down.

The ``openai`` backend (``openai_backend.py``) may be given several servers
(``NEOC_LLM_URLS``). Each request goes to the healthy server with the fewest
answers in flight *from this instance* (ties: the one used least, so equal
servers share the load). A server that refuses a connection, times out or
answers 5xx is marked down and skipped until its retry time; each further
failure doubles the wait (up to ten times ``server_retry_seconds``), so a dead
server costs one failed connection per retry period, not one per question.
The first success brings it back. No background probing: the retry *is* the
probe, made by a real request, which then falls through to the next server
if the probe fails.

In-flight counts are per instance: two instances do not know each other's
load. That is enough in practice - a busy server answers slower, and each
instance's count of its own slow answers rises with it - and it needs no
coordination. A server's own queue (llama-server's ``--parallel`` slots)
does the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

MAX_BACKOFF_FACTOR = 10


@dataclass
class Server:
    url: str  # base URL, ending in /v1
    in_flight: int = 0
    served: int = 0
    failures: int = 0  # consecutive
    down_until: float = 0.0
    last_error: str = ""
    tokenize_path: str | None = None  # the tokenizer endpoint that works on it, once found
    tokenize_probed: bool = False

    @property
    def root(self) -> str:
        """The server's root URL (tokenizer endpoints live there, not under /v1)."""
        return self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url


def base_url(url: str) -> str:
    """``http://host:8080`` and ``http://host:8080/v1/`` both mean ``http://host:8080/v1``."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class ServerPool:
    def __init__(self, urls: list[str], retry_seconds: float, clock: Callable[[], float] = time.monotonic):
        if not urls:
            raise ValueError("no LLM server URLs")
        self.servers = [Server(base_url(u)) for u in dict.fromkeys(urls)]
        self.retry_seconds = float(retry_seconds)
        self._clock = clock
        self._lock = threading.Lock()

    def _up(self, server: Server, now: float) -> bool:
        return server.down_until <= now

    def any_up(self) -> bool:
        now = self._clock()
        with self._lock:
            return any(self._up(s, now) for s in self.servers)

    def acquire(self, exclude: set[str] | frozenset[str] = frozenset()) -> Server | None:
        """The least-busy server that is up (not in ``exclude``), counted as in flight; None if none."""
        now = self._clock()
        with self._lock:
            ready = [s for s in self.servers if s.url not in exclude and self._up(s, now)]
            if not ready:
                return None
            server = min(ready, key=lambda s: (s.in_flight, s.served))
            server.in_flight += 1
            server.served += 1
            return server

    def release(self, server: Server) -> None:
        with self._lock:
            server.in_flight = max(0, server.in_flight - 1)

    def succeeded(self, server: Server) -> None:
        with self._lock:
            was_down = server.failures > 0
            server.failures = 0
            server.down_until = 0.0
            server.last_error = ""
        if was_down:
            log.warning("LLM server %s is answering again", server.url)

    def failed(self, server: Server, error: str) -> None:
        """Mark ``server`` down until its retry time (doubling per consecutive failure)."""
        with self._lock:
            server.failures += 1
            factor = min(2 ** (server.failures - 1), MAX_BACKOFF_FACTOR)
            wait = self.retry_seconds * factor
            server.down_until = self._clock() + wait
            server.last_error = error
        log.warning("LLM server %s marked down for %.0f s: %s", server.url, wait, error)

    def snapshot(self) -> list[dict]:
        """Each server's state, for health, the System tab and metrics."""
        now = self._clock()
        with self._lock:
            return [{"url": s.url, "up": self._up(s, now), "in_flight": s.in_flight, "served": s.served,
                     "failures": s.failures, "retry_in_seconds": round(max(0.0, s.down_until - now), 1),
                     "last_error": s.last_error} for s in self.servers]
