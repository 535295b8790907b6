"""The response cache's statistics: this process's figures and its share of every process's totals.

Every lookup, store, removal and disk error is counted here and reported as
an event (``on_event(name)``: ``hit_l1``, ``hit_l2``, ``miss``,
``guard_refusal``, ``store``, ``store_refused``, ``remove``, ``kb_evicted``,
``l1_shed``, ``clear``, ``l2_error``) for the Prometheus metrics. Counts that
make the machine-wide totals (``cache stats``) are added to the L2 at most
every ``FLUSH_SECONDS`` and when the process exits, so a short CLI run still
adds its counts.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from typing import Callable

from neoc_assistant.cache.counters import Counters
from neoc_assistant.cache.shared_tier import TierUnavailable
from neoc_assistant.cache.tiers import CacheTiers
from neoc_assistant.figures import latency_summary

log = logging.getLogger(__name__)


class CacheStatistics:
    FLUSH_SECONDS = 10.0

    def __init__(self, tiers: CacheTiers, on_event: Callable[[str], None] | None, latency_window: int):
        self.counts = Counters()
        self._tiers = tiers
        self.on_event = on_event
        self._latencies: deque[float] = deque(maxlen=max(10, int(latency_window)))
        self._latency_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._last_flush = time.monotonic()
        atexit.register(_flush_at_exit, weakref.ref(self))

    # -- what happened -------------------------------------------------------------------------
    def lookup(self, tier: str | None, match: str | None, refusal_category: str | None, latency_ms: float) -> None:
        with self._latency_lock:
            self._latencies.append(latency_ms)
        events = []
        if tier is not None:
            self.counts.add("lookups", "hits", f"hits_{tier}", f"hits_{match}")
            events.append(f"hit_{tier}")
        else:
            self.counts.add("lookups", "misses")
            events.append("miss")
        if refusal_category:
            self.counts.add("guard_refusals", f"refusal:{refusal_category}")
            events.append("guard_refusal")
        for name in events:
            self.emit(name)
        self.maybe_flush()

    def store_refused(self, reason: str) -> None:
        self.counts.add(f"store_refusal:{reason}", shared=False)
        self.counts.add("store_refusals")
        self.emit("store_refused")

    def stored(self) -> None:
        self.counts.add("stores")
        self.emit("store")
        self.maybe_flush()

    def removed(self) -> None:
        self.counts.add("removals")
        self.emit("remove")

    def shed(self, n: int) -> None:
        self.counts.add("l1_shed", n=n, shared=False)
        if n:
            self.emit("l1_shed")

    def kb_evicted(self, n: int) -> None:
        self.counts.add("kb_evictions", n=n)
        self.emit("kb_evicted")

    def cleared(self) -> None:
        self.counts.drop_pending()
        self.emit("clear")

    def l2_error(self, where: str, exc: Exception) -> None:
        # a tier known to be down said so once (redis_tier.RedisLink); each call is then only counted
        (log.debug if isinstance(exc, TierUnavailable) else log.warning)(
            "response cache: shared tier error during %s: %s", where, exc)
        self.counts.add("l2_errors", shared=False)
        self.emit("l2_error")

    def emit(self, name: str) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(name)
        except Exception:  # noqa: BLE001 - monitoring must not break answering
            log.debug("on_event(%s) failed", name, exc_info=True)

    # -- figures --------------------------------------------------------------------------------
    def figures(self) -> dict:
        """This process's counts, refusals by reason and lookup latency (the ``stats()`` core)."""
        counts = self.counts.snapshot()
        with self._latency_lock:
            latencies = list(self._latencies)
        lookups, hits = counts.get("lookups", 0), counts.get("hits", 0)
        summary = latency_summary(latencies)
        return {
            "lookups": lookups,
            "hits": hits,
            **{name: counts.get(name, 0) for name in ("hits_l1", "hits_l2", "hits_exact", "hits_semantic", "misses")},
            "hit_rate": round(hits / lookups, 4) if lookups else None,
            "guard_refusals": counts.get("guard_refusals", 0),
            "guard_refusals_by_reason": _by_prefix(counts, "refusal:"),
            "stores": counts.get("stores", 0),
            "store_refusals": _by_prefix(counts, "store_refusal:"),
            **{name: counts.get(name, 0) for name in ("removals", "kb_evictions", "l1_shed", "l2_errors")},
            "latency_ms": {"n": summary["n"], "p50": summary["p50"], "p95": summary["p95"], "p99": summary["p99"],
                           "mean": summary["avg"]},
        }

    # -- the shared totals ------------------------------------------------------------------------
    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self, force: bool = False) -> None:
        l2 = self._tiers.l2_if_open
        if l2 is None:
            return
        with self._flush_lock:
            if not self.counts.has_pending() or (not force and time.monotonic() - self._last_flush < self.FLUSH_SECONDS):
                return
            deltas = self.counts.take_pending()
            self._last_flush = time.monotonic()
        try:
            l2.add_counters(deltas)
        except Exception as exc:  # noqa: BLE001
            self.l2_error("counters", exc)


def _by_prefix(counts: dict[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix):]: n for name, n in counts.items() if name.startswith(prefix)}


def _flush_at_exit(ref) -> None:
    stats = ref()
    if stats is not None:
        try:
            stats.flush(force=True)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass
