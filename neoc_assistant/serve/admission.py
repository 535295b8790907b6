"""How many ``/api/ask`` questions are answered at once, how many may wait, and when to say "busy".

Why: every question used to go straight to the server's thread pool. A burst of
200 filled it (40 threads, all answering at once on 2 cores), so ``/health``
waited behind them for up to 7 s, threads grew from 23 to 106, and clients
timed out at 60 s. Now at most ``serve.api_max_running`` answers run - on their
own threads, so health checks and the UI keep the server's pool - and more wait
in line (first come, first served) while the line is shorter than
``serve.max_waiting`` and the wait it implies at the recent answer time is
within ``serve.max_wait_seconds``; the rest get 503 at once with
``Retry-After`` (that wait). One who still waited ``serve.max_wait_seconds``
without a slot gets the same 503 rather than an answer nobody waits for any more.
The line is sized by time, not only by count, because the same count means 3 s
of quoted answers or minutes of written ones.
"""

from __future__ import annotations

import math
import threading
import time

import anyio

from neoc_assistant.errors import BusyError


class QueueFull(BusyError):
    """No slot and no room to wait; ``retry_after`` is the estimated wait in seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    def __init__(self, *, running: int, waiting: int, max_wait_seconds: float, initial_seconds: float = 1.0):
        self.running = max(1, running)
        self.waiting = max(0, waiting)
        self.max_wait = max_wait_seconds
        self._slots = anyio.CapacityLimiter(self.running)
        self._threads = anyio.CapacityLimiter(self.running)  # never contended: a slot is held first
        self._inside = 0  # running + waiting
        self._seconds = initial_seconds  # moving average of one answer's time
        self._lock = threading.Lock()
        self.refused = 0

    def retry_after(self, ahead: int | None = None) -> int:
        """Seconds until a question joining now would likely start (at least 1)."""
        with self._lock:
            ahead = self._inside if ahead is None else ahead
            return max(1, min(300, math.ceil(self._seconds * (ahead + 1) / self.running)))

    def snapshot(self) -> dict:
        with self._lock:
            inside = self._inside
        return {"running": min(inside, self.running), "waiting": max(0, inside - self.running),
                "max_running": self.running, "max_waiting": self.waiting, "refused": self.refused,
                "answer_seconds": round(self._seconds, 3)}

    def _busy(self, why: str) -> QueueFull:
        self.refused += 1
        wait = self.retry_after()
        return QueueFull(f"The assistant is busy ({why}): try again in {wait} s.", wait)

    async def run(self, fn, *args):
        """``fn(*args)`` on one of the answer threads once a slot is free; ``QueueFull`` if there is
        no room to wait or no slot came within ``max_wait_seconds``."""
        with self._lock:
            ahead = self._inside - self.running + 1  # questions that would start before this one
            expected = max(0, ahead) * self._seconds / self.running
            full = self._inside >= self.running + self.waiting or expected > self.max_wait
            if not full:
                self._inside += 1
        if full:
            raise self._busy(f"{min(self._inside, self.running)} answering, "
                             f"{max(0, self._inside - self.running)} waiting")
        try:
            acquired = False
            with anyio.move_on_after(self.max_wait):
                await self._slots.acquire()
                acquired = True
            if not acquired:
                raise self._busy(f"no answer slot within {self.max_wait:g} s")
            try:
                started = time.perf_counter()
                result = await anyio.to_thread.run_sync(fn, *args, limiter=self._threads)
                with self._lock:
                    self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - started)
                return result
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._inside -= 1
