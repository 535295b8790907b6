"""Threshold alerts on the metrics window, logged as structured warnings.

Thresholds come from the monitoring settings (``alert_p95_seconds``, ``alert_error_rate``,
``alert_cache_hit_rate``, ``alert_memory_percent``). Rules:

* evaluated at most every ``interval_seconds`` (calls in between return the
  current state without re-evaluating or logging);
* the latency, error-rate and hit-rate rules need ``min_samples`` requests in
  the window (for the hit rate: answers the cache could have served - model-written
  answers and hits; extractive / not-found answers are never cached), so one slow first request (model load, cold cache) does not
  page anyone; the memory rule needs only a reading;
* an alert is logged (WARNING, JSON message, the same dict in ``extra``) when it
  starts firing and again every ``repeat_seconds`` while it keeps firing; its
  resolution is logged at INFO.

Each alert is a dict: ``{"alert", "value", "threshold", "samples", "message"}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from neoc_assistant.settings import MonitoringSettings

log = logging.getLogger("neoc_assistant.alerts")

ALERT_NAMES = ("latency_p95", "error_rate", "cache_hit_rate", "memory")


class AlertMonitor:
    def __init__(
        self,
        settings: MonitoringSettings,
        *,
        registry: CollectorRegistry | None = None,
        min_samples: int = 20,
        interval_seconds: float = 30.0,
        repeat_seconds: float = 600.0,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.min_samples = max(1, int(min_samples))
        self.interval_seconds = interval_seconds
        self.repeat_seconds = repeat_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_eval: float | None = None
        self._active: dict[str, dict] = {}
        self._last_logged: dict[str, float] = {}
        self.fired_total = self.active_gauge = None
        if registry is not None:
            self.fired_total = Counter("neoc_alerts", "Times an alert started firing.", ["alert"], registry=registry)
            self.active_gauge = Gauge("neoc_alert_active", "1 while an alert is firing.", ["alert"], registry=registry)
            for name in ALERT_NAMES:
                self.fired_total.labels(alert=name)
                self.active_gauge.labels(alert=name).set(0)

    def active(self) -> list[dict]:
        with self._lock:
            return [dict(a) for a in self._active.values()]

    def check(self, snap: dict) -> list[dict]:
        """Pure rule evaluation on a snapshot (no logging, no rate limit)."""
        s = self.settings
        alerts: list[dict] = []
        total = snap.get("latency_ms", {}).get("total", {})
        n_lat = total.get("n", 0) or 0
        p95 = total.get("p95")
        if n_lat >= self.min_samples and p95 is not None and p95 / 1000.0 > s.alert_p95_seconds:
            alerts.append(_alert("latency_p95", round(p95 / 1000.0, 3), s.alert_p95_seconds, n_lat,
                                 f"p95 latency {p95 / 1000.0:.1f}s over the last {n_lat} requests "
                                 f"exceeds {s.alert_p95_seconds:g}s"))
        n_req = (snap.get("window", {}).get("requests", 0) or 0) - (snap.get("cancelled") or 0) \
            - (snap.get("rejected_input") or 0)
        rate = snap.get("error_rate")
        if n_req >= self.min_samples and rate is not None and rate > s.alert_error_rate:
            alerts.append(_alert("error_rate", rate, s.alert_error_rate, n_req,
                                 f"{rate:.1%} of the last {n_req} requests failed "
                                 f"(threshold {s.alert_error_rate:.0%})"))
        # Over answers the cache could have served (model-written ones and hits): in extractive
        # mode nothing is cacheable, so no alert; otherwise the overall hit rate as a fallback.
        if "cacheable_answers" in snap:
            answered, hit = snap.get("cacheable_answers") or 0, snap.get("cacheable_hit_rate")
        else:
            answered = snap.get("answered", n_req - (snap.get("errors") or 0)) or 0
            hit = snap.get("hit_rate")
        if answered >= self.min_samples and hit is not None and hit < s.alert_cache_hit_rate:
            alerts.append(_alert("cache_hit_rate", hit, s.alert_cache_hit_rate, answered,
                                 f"cache hit rate {hit:.0%} over the last {answered} cacheable answers is "
                                 f"below {s.alert_cache_hit_rate:.0%}"))
        mem = (snap.get("memory") or {}).get("system_percent")
        if mem is not None and mem > s.alert_memory_percent:
            alerts.append(_alert("memory", mem, s.alert_memory_percent, 1,
                                 f"system memory {mem:.0f}% in use exceeds {s.alert_memory_percent:g}%"))
        return alerts

    def evaluate(self, snap: dict, *, force: bool = False) -> list[dict]:
        """Rate-limited evaluation with logging; returns the active alerts."""
        now = self._clock()
        with self._lock:
            if not force and self._last_eval is not None and now - self._last_eval < self.interval_seconds:
                return [dict(a) for a in self._active.values()]
            self._last_eval = now
            firing = {a["alert"]: a for a in self.check(snap)}
            started = [n for n in firing if n not in self._active]
            resolved = [self._active[n] for n in self._active if n not in firing]
            to_log = [a for n, a in firing.items()
                      if n in started or now - self._last_logged.get(n, 0.0) >= self.repeat_seconds]
            for a in to_log:
                self._last_logged[a["alert"]] = now
            self._active = firing
        for name in started:
            if self.fired_total is not None:
                self.fired_total.labels(alert=name).inc()
        if self.active_gauge is not None:
            for name in ALERT_NAMES:
                self.active_gauge.labels(alert=name).set(1 if name in firing else 0)
        for a in to_log:
            payload = {"event": "alert", **a}
            log.warning(json.dumps(payload, sort_keys=True), extra={"neoc_alert": payload})
        for a in resolved:
            payload = {"event": "alert_resolved", "alert": a["alert"]}
            log.info(json.dumps(payload, sort_keys=True), extra={"neoc_alert": payload})
        return [dict(a) for a in firing.values()]


def _alert(name: str, value: float, threshold: float, samples: int, message: str) -> dict:
    return {"alert": name, "value": value, "threshold": threshold, "samples": samples, "message": message}
