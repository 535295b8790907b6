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

    async def enter(self) -> "Ticket":
        """Wait in line for an answer slot and hold it until ``Ticket.release()``; ``QueueFull`` if there
        is no room to wait or no slot came within ``max_wait_seconds``. Why a ticket and not only ``run``:
        a streamed answer holds its slot while the response is being sent, long after the route returned."""
        with self._lock:
            ahead = self._inside - self.running + 1  # questions that would start before this one
            expected = max(0, ahead) * self._seconds / self.running
            full = self._inside >= self.running + self.waiting or expected > self.max_wait
            if not full:
                self._inside += 1
        if full:
            raise self._busy(f"{min(self._inside, self.running)} answering, "
                             f"{max(0, self._inside - self.running)} waiting")
        acquired, borrower = False, object()  # a borrower of its own: released from any task or callback
        try:
            with anyio.move_on_after(self.max_wait):
                await self._slots.acquire_on_behalf_of(borrower)
                acquired = True
        finally:
            if not acquired:
                with self._lock:
                    self._inside -= 1
        if not acquired:
            raise self._busy(f"no answer slot within {self.max_wait:g} s")
        return Ticket(self, borrower)

    def _left(self, borrower: object, seconds: float | None) -> None:
        """A slot is given back (on the event loop's thread: anyio's limiter belongs to it); ``seconds``,
        the answer's time, moves the average (None: it failed, and says nothing about answer times)."""
        self._slots.release_on_behalf_of(borrower)
        with self._lock:
            self._inside -= 1
            if seconds is not None:
                self._seconds = 0.8 * self._seconds + 0.2 * seconds

    async def run(self, fn, *args):
        """``fn(*args)`` on one of the answer threads once a slot is free (``enter``)."""
        ticket = await self.enter()
        ok = False
        try:
            result = await anyio.to_thread.run_sync(fn, *args, limiter=self._threads)
            ok = True
            return result
        finally:
            ticket.release(timed=ok)


class Ticket:
    """A held answer slot; ``release()`` once, from the event loop (later calls do nothing)."""

    def __init__(self, admission: Admission, borrower: object):
        self._admission = admission
        self._borrower = borrower
        self._started = time.perf_counter()
        self._released = False

    def release(self, *, timed: bool = True) -> None:
        if not self._released:
            self._released = True
            self._admission._left(self._borrower, time.perf_counter() - self._started if timed else None)
