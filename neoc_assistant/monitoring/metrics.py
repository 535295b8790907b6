"""Request metrics: Prometheus collectors, a sliding window, and a rolling history file.

Three views of the same requests:

* **Prometheus** - a real ``prometheus_client.CollectorRegistry`` per ``Metrics``
  instance (tests stay isolated): per-stage latency histograms, counters for
  outcomes, tokens, guard actions and cache events, gauges for memory, CPU and
  the model-context pool. ``prometheus_text()`` is ``generate_latest(registry)``;
  the UI mounts it at ``/metrics`` via ``metrics_response()``.
* **Sliding window** - the last ``monitoring.metrics_window`` requests, for
  p50/p95/p99 of total and per-stage latency, cache hit rate and error rate
  (``snapshot()``: the ``stats`` command and the UI System tab).
* **History file** - every request is also appended as one JSON line to
  ``<log_dir>/metrics/requests.jsonl`` (rotated at ``history_max_bytes``, one
  backup kept), which ``stats`` reads from another process (``history.py``);
  the background sampler adds a ``sample`` line every
  ``persist_sample_seconds``. (``stats --url`` reads a running server's
  ``/metrics``.) Outcomes and window statistics: ``window.py``.

The request path (``record_request`` and friends) is cheap and thread-safe:
a few histogram observations, a deque append and one ``write()`` of ~200 bytes
to an already-open, line-buffered file - no psutil calls. psutil is sampled in
``sample()``, which ``snapshot()``, ``prometheus_text()`` and the optional
background sampler (``start_sampler()``) call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Callable

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter as PromCounter, Gauge, Histogram
from prometheus_client import generate_latest

from neoc_assistant.monitoring.alerts import AlertMonitor
from neoc_assistant.monitoring.history import HistoryLog, history_path
from neoc_assistant.monitoring.window import OUTCOMES, STAGES, clean_timings, error_outcome, label, summarize
from neoc_assistant.settings import MonitoringSettings

log = logging.getLogger(__name__)

#: Content type for the ``/metrics`` endpoint (Prometheus text format 0.0.4).
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

CACHE_EVENTS = ("hit_l1", "hit_l2", "miss", "guard_refusal")
GUARD_ACTIONS = ("gc_collect", "shed_cache", "shrink_pool", "refuse")

# Seconds; request latencies on a 2-core CPU span ~1 ms (L1 hit) to minutes (long LLM answer).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
                   30.0, 60.0, 120.0, 300.0)

# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------
class Metrics:
    def __init__(
        self,
        settings: MonitoringSettings,
        log_dir: Path,
        registry: CollectorRegistry | None = None,
        *,
        pool_stats: Callable[[], dict | None] | None = None,
        backend: str = "llamacpp",
        persist: bool = True,
        history_max_bytes: int = 2_000_000,
        persist_sample_seconds: float = 30.0,
        alert_min_samples: int = 20,
        alert_interval_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._pool_stats = pool_stats
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[tuple[float, str, dict]] = deque(maxlen=settings.metrics_window)
        self._requests: Counter[str] = Counter()
        self._tokens: Counter[str] = Counter()
        self._guard: Counter[str] = Counter()
        self._cache: Counter[str] = Counter()
        self._started = clock()
        self._pid = os.getpid()
        self._process = psutil.Process()
        self._last_sample: dict = {}
        self._last_sample_at = 0.0
        self._last_persisted_sample = 0.0
        self.persist_sample_seconds = persist_sample_seconds
        self.history = HistoryLog(history_path(log_dir), history_max_bytes) if persist else None
        self._sampler: threading.Thread | None = None
        self._sampler_stop = threading.Event()

        r = self.registry
        self.latency = Histogram("neoc_stage_latency_seconds", "Request latency by pipeline stage.",
                                 ["stage"], registry=r, buckets=LATENCY_BUCKETS)
        self.requests_total = PromCounter("neoc_requests", "Requests by outcome (llm, extractive, not-found, "
                                          "cached_l1, cached_l2, error:<kind>).", ["outcome"], registry=r)
        self.tokens_total = PromCounter("neoc_tokens", "Model tokens by kind (prompt, completion).", ["kind"],
                                        registry=r)
        self.guard_total = PromCounter("neoc_guard_actions", "Memory-guard actions.", ["action"], registry=r)
        self.cache_total = PromCounter("neoc_cache_events", "Response-cache events.", ["event"], registry=r)
        self.rss_gauge = Gauge("neoc_process_rss_bytes", "Resident memory of the assistant process.", registry=r)
        self.sysmem_gauge = Gauge("neoc_system_memory_percent", "System memory in use, percent.", registry=r)
        self.cpu_gauge = Gauge("neoc_process_cpu_percent", "CPU use of the assistant process since the last "
                               "sample, percent of one core.", registry=r)
        self.pool_size_gauge = Gauge("neoc_pool_size", "Model contexts in the pool.", registry=r)
        self.pool_in_use_gauge = Gauge("neoc_pool_in_use", "Model contexts generating now.", registry=r)
        self.pool_queue_gauge = Gauge("neoc_pool_queue_length", "Requests waiting for a model context.", registry=r)
        self.window_p95_gauge = Gauge("neoc_window_latency_p95_seconds",
                                      "p95 of total latency over the last metrics_window requests.", registry=r)
        self.window_hit_gauge = Gauge("neoc_window_cache_hit_rate", "Cache hit rate over the window.", registry=r)
        self.window_error_gauge = Gauge("neoc_window_error_rate", "Error rate over the window.", registry=r)
        # Which answer writer this instance uses (join on it: one backend per instance), and its servers.
        Gauge("neoc_generation_backend_info", "The generation backend of this instance (value 1).", ["backend"],
              registry=r).labels(backend=label(backend)).set(1)
        self.server_up_gauge = Gauge("neoc_llm_server_up", "LLM server not marked down (1) or down (0).",
                                     ["backend", "server"], registry=r)
        self.server_in_flight_gauge = Gauge("neoc_llm_server_in_flight", "Answers this instance streams from "
                                            "the server now.", ["backend", "server"], registry=r)
        self.shared_cache_up_gauge = Gauge("neoc_cache_shared_tier_up", "The shared cache tier answers (1) or "
                                           "is down and the cache runs on L1 only (0).", registry=r)
        self.shared_cache_up_gauge.set(1)
        self._backend = label(backend)
        self.alerts = AlertMonitor(settings, registry=r, min_samples=alert_min_samples,
                                   interval_seconds=alert_interval_seconds, clock=clock)
        # Label values known up front appear (as 0) from the first scrape.
        for stage in STAGES:
            self.latency.labels(stage=stage)
        for outcome in OUTCOMES:
            self.requests_total.labels(outcome=outcome)
        for kind in ("prompt", "completion"):
            self.tokens_total.labels(kind=kind)
        for action in GUARD_ACTIONS:
            self.guard_total.labels(action=action)
        for event in CACHE_EVENTS:
            self.cache_total.labels(event=event)
        self._process.cpu_percent(None)  # prime: the next call measures from here

    # -- request path (cheap, thread-safe) -----------------------------------------
    def record_request(self, outcome: str, timings_ms: dict | None = None, tokens: dict | None = None) -> None:
        outcome = label(outcome)
        timings = clean_timings(timings_ms)
        toks = {}
        for kind in ("prompt", "completion"):
            try:
                n = int((tokens or {}).get(kind) or 0)
            except (TypeError, ValueError):
                n = 0
            if n > 0:
                toks[kind] = n
        self._record(outcome, timings, toks)

    def record_error(self, kind: str, timings_ms: dict | None = None) -> None:
        """A request that failed with ``kind`` (e.g. the exception class: BusyError, StoreError)."""
        self._record(error_outcome(kind), clean_timings(timings_ms), {})

    def _record(self, outcome: str, timings: dict[str, float], toks: dict[str, int]) -> None:
        now = self._clock()
        self.requests_total.labels(outcome=outcome).inc()
        for stage, ms in timings.items():
            if stage in STAGES:
                self.latency.labels(stage=stage).observe(ms / 1000.0)
        for kind, n in toks.items():
            self.tokens_total.labels(kind=kind).inc(n)
        with self._lock:
            self._window.append((now, outcome, timings))
            self._requests[outcome] += 1
            for kind, n in toks.items():
                self._tokens[kind] += n
        if self.history is not None:
            record = {"ts": round(now, 3), "pid": self._pid, "outcome": outcome, "t": timings}
            if toks:
                record["tok"] = toks
            self.history.append(record)

    def count_guard_action(self, action: str) -> None:
        action = label(action)
        self.guard_total.labels(action=action).inc()
        with self._lock:
            self._guard[action] += 1
        if self.history is not None:  # rare, and worth seeing from `stats`
            self.history.append({"ts": round(self._clock(), 3), "pid": self._pid, "kind": "guard", "action": action})

    def cache_event(self, event: str) -> None:
        event = label(event)
        if event in ("l2_down", "l2_up"):
            self.shared_cache_up_gauge.set(1 if event == "l2_up" else 0)
        self.cache_total.labels(event=event).inc()
        with self._lock:
            self._cache[event] += 1

    # -- sampling (psutil; never on the request path) --------------------------------
    def sample(self) -> dict:
        """Read process/system memory, CPU and pool figures into the gauges."""
        try:
            rss = self._process.memory_info().rss
            vm = psutil.virtual_memory()
            cpu = self._process.cpu_percent(None)
        except psutil.Error as exc:  # pragma: no cover - /proc unreadable
            log.debug("psutil sample failed: %s", exc)
            return dict(self._last_sample)
        pool = None
        if self._pool_stats is not None:
            try:
                pool = self._pool_stats()
            except Exception as exc:  # noqa: BLE001 - monitoring must not raise
                log.debug("pool_stats failed: %s", exc)
        self.rss_gauge.set(rss)
        self.sysmem_gauge.set(vm.percent)
        self.cpu_gauge.set(cpu)
        if pool:
            self.pool_size_gauge.set(pool.get("size", 0) or 0)
            self.pool_in_use_gauge.set(pool.get("in_use", 0) or 0)
            self.pool_queue_gauge.set(pool.get("waiting", pool.get("queue", 0)) or 0)
            for server in pool.get("servers") or ():
                labels = {"backend": self._backend, "server": server["url"]}  # from settings: few
                self.server_up_gauge.labels(**labels).set(1 if server["up"] else 0)
                self.server_in_flight_gauge.labels(**labels).set(server["in_flight"])
        reading = {
            "rss_bytes": rss,
            "system_percent": vm.percent,
            "system_available_bytes": vm.available,
            "system_total_bytes": vm.total,
            "cpu_percent": cpu,
            "pool": _pool_summary(pool),
        }
        now = self._clock()
        with self._lock:
            self._last_sample = reading
            self._last_sample_at = now
        return reading

    def _fresh_sample(self, max_age: float = 1.0) -> dict:
        with self._lock:
            fresh = self._last_sample and self._clock() - self._last_sample_at < max_age
            reading = dict(self._last_sample)
        return reading if fresh else self.sample()

    # -- views ----------------------------------------------------------------------------
    def snapshot(self, *, evaluate_alerts: bool = True) -> dict:
        """Everything the ``stats`` command and the UI System tab show."""
        with self._lock:
            records = list(self._window)
            totals = {
                "requests": dict(sorted(self._requests.items())),
                "tokens": dict(self._tokens),
                "guard_actions": dict(self._guard),
                "cache_events": dict(self._cache),
            }
        snap = summarize(records, self.settings.metrics_window)
        snap["totals"] = totals
        reading = self._fresh_sample()
        snap["memory"] = {k: reading.get(k) for k in ("rss_bytes", "system_percent", "system_available_bytes",
                                                      "system_total_bytes")}
        snap["cpu_percent"] = reading.get("cpu_percent")
        snap["pool"] = reading.get("pool")
        snap["pid"] = self._pid
        snap["uptime_seconds"] = round(self._clock() - self._started, 1)
        snap["source"] = "live"
        self._set_window_gauges(snap)
        snap["alerts"] = self.alerts.evaluate(snap) if evaluate_alerts else self.alerts.active()
        return snap

    def _set_window_gauges(self, snap: dict) -> None:
        p95 = snap["latency_ms"].get("total", {}).get("p95")
        self.window_p95_gauge.set((p95 or 0.0) / 1000.0)
        self.window_hit_gauge.set(snap["hit_rate"] or 0.0)
        self.window_error_gauge.set(snap["error_rate"] or 0.0)

    def prometheus_text(self) -> bytes:
        """The registry in the Prometheus text exposition format (``generate_latest``).

        A scrape also refreshes the window gauges and evaluates alerts (rate-limited).
        """
        self.snapshot()
        return generate_latest(self.registry)

    def metrics_response(self) -> tuple[bytes, str]:
        """``(body, content_type)`` for a ``/metrics`` HTTP handler."""
        return self.prometheus_text(), METRICS_CONTENT_TYPE

    # -- background sampler ------------------------------------------------------------
    def start_sampler(self, interval_seconds: float = 5.0) -> None:
        """Sample gauges, evaluate alerts and persist a ``sample`` line periodically (server only)."""
        if self._sampler is not None and self._sampler.is_alive():
            return
        self._sampler_stop.clear()
        self._sampler = threading.Thread(target=self._sampler_loop, args=(interval_seconds,),
                                         name="neoc-metrics-sampler", daemon=True)
        self._sampler.start()

    def stop_sampler(self, timeout: float = 5.0) -> None:
        self._sampler_stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout)
            self._sampler = None

    def _sampler_loop(self, interval: float) -> None:
        while not self._sampler_stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep sampling
                log.exception("metrics sampler failed")
            self._sampler_stop.wait(interval)

    def tick(self) -> None:
        """One sampler iteration: gauges, alerts, and (every ``persist_sample_seconds``) a history line."""
        reading = self.sample()
        self.snapshot()  # evaluates alerts (rate-limited inside AlertMonitor)
        now = self._clock()
        if self.history is not None and now - self._last_persisted_sample >= self.persist_sample_seconds:
            self._last_persisted_sample = now
            self.history.append({"ts": round(now, 3), "pid": self._pid, "kind": "sample",
                                 "rss_bytes": reading.get("rss_bytes"),
                                 "system_percent": reading.get("system_percent"),
                                 "cpu_percent": reading.get("cpu_percent"), "pool": reading.get("pool")})

    def close(self) -> None:
        self.stop_sampler()
        if self.history is not None:
            self.history.close()


def _pool_summary(pool: dict | None) -> dict | None:
    if not pool:
        return None
    keys = ("size", "in_use", "idle", "waiting", "busy_rejections", "model_loaded", "backend", "servers")
    return {k: pool[k] for k in keys if k in pool}


def metrics_response(metrics: Metrics) -> tuple[bytes, str]:
    """``(body, content_type)`` for mounting ``/metrics`` (e.g. a FastAPI ``Response``)."""
    return metrics.metrics_response()
