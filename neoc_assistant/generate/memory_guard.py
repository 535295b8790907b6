"""Memory guards run before and after every generation.

Why: on an 8 GB laptop the assistant shares RAM with the browser, the
embedding model, Chroma and the response cache. An out-of-memory kill in the
middle of an emergency is the worst failure, so before each answer (and after
it, when memory may have grown) the process RSS and the system memory use are
compared with ``guard_rss_limit_mb`` / ``guard_system_memory_percent``. Above
a limit the guard escalates one step at a time, re-measuring after each, and
stops as soon as memory is back under the limits:

1. ``gc_collect``  - Python garbage collection (cheap, often enough);
2. ``shed_cache``  - drop in-memory (L1) response-cache entries;
3. ``shrink_pool`` - free idle model contexts (their KV caches);
4. ``refuse``      - before a generation only: refuse it with a one-line
   ``MemoryGuardError`` so the officer retries later instead of the process
   being killed.

Every action is counted (``actions``) and reported through ``on_action`` so
monitoring can alert on memory pressure.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import psutil

from neoc_assistant.errors import MemoryGuardError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryReading:
    rss_mb: float
    system_percent: float


def read_memory(process: psutil.Process | None = None) -> MemoryReading:
    proc = process or psutil.Process()
    return MemoryReading(proc.memory_info().rss / (1 << 20), psutil.virtual_memory().percent)


class MemoryGuard:
    ACTIONS = ("gc_collect", "shed_cache", "shrink_pool", "refuse")

    def __init__(
        self,
        rss_limit_mb: float,
        system_percent_limit: float,
        *,
        shed_cache: Callable[[], int] | None = None,
        shrink_pool: Callable[[], int] | None = None,
        on_action: Callable[[str], None] | None = None,
        probe: Callable[[], MemoryReading] | None = None,
    ):
        self.rss_limit_mb = rss_limit_mb
        self.system_percent_limit = system_percent_limit
        self.shed_cache = shed_cache
        self.shrink_pool = shrink_pool
        self.on_action = on_action
        self._process = psutil.Process()
        self.probe = probe or (lambda: read_memory(self._process))
        self.actions: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.last_reading: MemoryReading | None = None

    def over(self, reading: MemoryReading) -> bool:
        return reading.rss_mb > self.rss_limit_mb or reading.system_percent > self.system_percent_limit

    def _count(self, name: str) -> None:
        with self._lock:
            self.actions[name] += 1
        if self.on_action is not None:
            try:
                self.on_action(name)
            except Exception:  # monitoring must never break generation
                log.exception("on_guard_action callback failed")

    def check(self, stage: str, *, may_refuse: bool) -> MemoryReading:
        """Measure; escalate while over a limit; raise ``MemoryGuardError`` last if allowed."""
        reading = self.probe()
        self.last_reading = reading
        if not self.over(reading):
            return reading
        steps: list[tuple[str, Callable[[], object]]] = [("gc_collect", gc.collect)]
        if self.shed_cache is not None:
            steps.append(("shed_cache", self.shed_cache))
        if self.shrink_pool is not None:
            steps.append(("shrink_pool", self.shrink_pool))
        for name, action in steps:
            self._count(name)
            try:
                freed = action()
            except Exception:
                log.exception("memory guard action %s failed", name)
                freed = None
            reading = self.probe()
            self.last_reading = reading
            log.warning("memory guard (%s): %s -> freed %s; now rss=%.0f MB, system=%.0f%%",
                        stage, name, freed, reading.rss_mb, reading.system_percent)
            if not self.over(reading):
                return reading
        if may_refuse:
            self._count("refuse")
            raise MemoryGuardError(self.refusal_message(reading))
        return reading

    def refusal_message(self, reading: MemoryReading) -> str:
        parts = []
        if reading.rss_mb > self.rss_limit_mb:
            parts.append(f"assistant uses {reading.rss_mb:.0f} MB > {self.rss_limit_mb:.0f} MB limit")
        if reading.system_percent > self.system_percent_limit:
            parts.append(f"system memory {reading.system_percent:.0f}% > {self.system_percent_limit:.0f}% limit")
        return (
            "memory is too tight to start a new answer (" + "; ".join(parts) + "): retry in a minute, "
            "close other programs, or use a smaller model / lower NEOC_POOL_MAX_SIZE"
        )

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: self.actions.get(name, 0) for name in self.ACTIONS}
