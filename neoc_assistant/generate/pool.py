"""A bounded, fair pool of model contexts shared by all requests.

Why a pool: the weights are mapped once, but every concurrent answer needs its
own llama.cpp context (KV cache + compute buffers, tens to hundreds of MB).
Creating one per request would let a burst of requests allocate without bound
and get the process killed; a fixed pool sized from the memory budget caps
memory, and requests beyond it wait in a FIFO queue for at most
``pool_wait_timeout_seconds`` and then get a one-line ``BusyError``.

Contexts are created lazily up to the size (an idle assistant holds one),
idle ones can be freed by the memory guard (``shrink``), and the pool prefers
the idle context whose cached tokens share the longest prefix with the new
prompt, so the fixed system prompt (and a repeated question) is not
re-evaluated.

Leases and cancellation: a lease is *active* only while its stream is
computing. A stream that is suspended between tokens (the client is slow, or
gone) and whose cancel event is set (or that was closed) is reclaimed by the pool at once - the
next ``acquire``/``stats`` call returns its context to the idle list - so a
stopped client never holds a context while it waits to be garbage-collected.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Generic, TypeVar

from neoc_assistant.errors import BusyError, ModelError

T = TypeVar("T")

_POLL_SECONDS = 0.05  # waiters re-check cancelled leases this often


class Lease(Generic[T]):
    """One request's hold on a context."""

    __slots__ = ("context", "cancel", "stop", "lock", "active", "revoked", "released", "created_new")

    def __init__(self, context: T, cancel: threading.Event, created_new: bool):
        self.context = context
        self.cancel = cancel  # the caller's event (never set by us)
        self.stop = threading.Event()  # set by close()/shutdown
        self.lock = threading.Lock()
        self.active = False
        self.revoked = False
        self.released = False
        self.created_new = created_new

    def stopped(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def is_set(self) -> bool:  # lets a lease stand in for an Event in cancellation checks
        return self.stopped()


class ContextPool(Generic[T]):
    def __init__(
        self,
        factory: Callable[[], T],
        closer: Callable[[T], None],
        size: int,
        *,
        affinity: Callable[[T, object], int] | None = None,
    ):
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.size = size
        self._factory = factory
        self._closer = closer
        self._affinity = affinity
        self._cond = threading.Condition()
        self._idle: list[T] = []  # most recently released last
        self._leases: set[Lease[T]] = set()
        self._created = 0
        self._queue: deque[object] = deque()
        self._closed = False
        self.busy_rejections = 0
        self.reclaimed = 0

    # -- acquiring ---------------------------------------------------------
    def acquire(self, timeout: float, cancel: threading.Event, hint: object = None) -> Lease[T] | None:
        """Wait (FIFO) up to ``timeout`` s for a context. ``None`` if ``cancel`` was set meanwhile."""
        deadline = time.monotonic() + timeout
        ticket = object()
        create = False
        context: T | None = None
        with self._cond:
            self._reap_locked()
            self._queue.append(ticket)
            try:
                while True:
                    if self._closed:
                        raise ModelError("the generation engine is shutting down: retry in a moment")
                    if cancel.is_set():
                        return None
                    if self._queue[0] is ticket:
                        if self._idle:
                            context = self._pick_idle_locked(hint)
                            break
                        if self._created < self.size:
                            self._created += 1
                            create = True
                            break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.busy_rejections += 1
                        raise BusyError(
                            f"all {self.size} answer slot(s) are busy (waited {timeout:.0f}s): "
                            f"retry in a few seconds"
                        )
                    self._cond.wait(min(remaining, _POLL_SECONDS))
                    self._reap_locked()
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
        if create:
            try:
                context = self._factory()
            except BaseException:
                with self._cond:
                    self._created -= 1
                    self._cond.notify_all()
                raise
        lease: Lease[T] = Lease(context, cancel, created_new=create)  # type: ignore[arg-type]  # reused or created above
        with self._cond:
            self._leases.add(lease)
        return lease

    def _pick_idle_locked(self, hint: object) -> T:
        best_i = len(self._idle) - 1  # default: most recently used (warm)
        if self._affinity is not None and hint is not None and len(self._idle) > 1:
            best_score = -1
            for i in range(len(self._idle) - 1, -1, -1):
                score = self._affinity(self._idle[i], hint)
                if score > best_score:
                    best_i, best_score = i, score
        return self._idle.pop(best_i)

    # -- releasing ----------------------------------------------------------
    def release(self, lease: Lease[T]) -> None:
        with self._cond:
            self._release_locked(lease)

    def _release_locked(self, lease: Lease[T]) -> None:
        if lease.released:
            return
        lease.released = True
        self._leases.discard(lease)
        if lease.revoked:
            return  # already returned by the reaper
        self._give_back_locked(lease.context)

    def _give_back_locked(self, context: T) -> None:
        """A context leaves use: idle again, or freed if the pool is closing."""
        if self._closed:
            self._created -= 1
            self._closer(context)
        else:
            self._idle.append(context)
        self._cond.notify_all()

    def _reap_locked(self) -> None:
        """Return contexts of cancelled, currently suspended streams to the idle list."""
        for lease in list(self._leases):
            if not lease.stopped():
                continue
            with lease.lock:
                if lease.active or lease.released:
                    continue
                lease.revoked = True
                lease.released = True
            self._leases.discard(lease)
            self.reclaimed += 1
            self._give_back_locked(lease.context)

    # -- memory --------------------------------------------------------------
    def shrink(self) -> int:
        """Free every idle context (they are recreated lazily). Returns how many."""
        with self._cond:
            self._reap_locked()
            idle, self._idle = self._idle, []
            self._created -= len(idle)
            for context in idle:
                self._closer(context)
            self._cond.notify_all()
            return len(idle)

    def stats(self) -> dict:
        with self._cond:
            self._reap_locked()
            return {
                "size": self.size,
                "created": self._created,
                "in_use": len(self._leases),
                "idle": len(self._idle),
                "waiting": len(self._queue),
                "busy_rejections": self.busy_rejections,
                "reclaimed": self.reclaimed,
            }

    def close(self, wait_seconds: float = 10.0) -> bool:
        """Cancel leases, free idle contexts; True if every context was freed."""
        with self._cond:
            self._closed = True
            for lease in self._leases:
                lease.stop.set()
            deadline = time.monotonic() + wait_seconds
            while True:
                self._reap_locked()
                idle, self._idle = self._idle, []
                self._created -= len(idle)
                for context in idle:
                    self._closer(context)
                if not self._leases or time.monotonic() >= deadline:
                    break
                self._cond.wait(_POLL_SECONDS)
            self._cond.notify_all()
            return not self._leases
