"""Metrics: real prometheus registries (parsed back), the sliding window, the history file, alerts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from neoc_assistant.monitoring.alerts import AlertMonitor
from neoc_assistant.figures import percentile
from neoc_assistant.monitoring.history import HistoryLog
from neoc_assistant.monitoring.metrics import METRICS_CONTENT_TYPE, Metrics, metrics_response
from neoc_assistant.monitoring.remote import histogram_quantile, require_loopback, summarize_exposition
from neoc_assistant.errors import InputError
from neoc_assistant.settings import Settings


def _settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", kb_dir=tmp_path / "kb", models_dir=tmp_path / "models", **kw)


def _sections(settings: Settings) -> tuple:
    """What the container gives ``Metrics``: the monitoring section and the log folder."""
    return settings.monitoring, settings.paths.log_dir


def _samples(metrics: Metrics) -> dict[tuple, float]:
    """{(sample_name, frozenset(labels)): value} from the real exposition text."""
    text = metrics.prometheus_text().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_prometheus_exposition_parses_and_counts(tmp_path):
    m = Metrics(*_sections(_settings(tmp_path)))
    m.record_request("llm", {"cache": 2.0, "embed": 8.0, "retrieve": 40.0, "generate": 1500.0, "total": 1560.0},
                     {"prompt": 400, "completion": 60})
    m.record_request("cached_l1", {"cache": 1.5, "total": 2.0}, {"prompt": 0, "completion": 0})
    m.record_request("llm", {"total": 12_000.0, "generate": 11_900.0}, {"prompt": 100, "completion": 5})
    m.record_error("BusyError")
    m.count_guard_action("shed_cache")
    m.cache_event("hit_l1")
    m.cache_event("miss")
    m.cache_event("miss")
    s = _samples(m)
    assert s[("neoc_requests_total", frozenset({("outcome", "llm")}))] == 2
    assert s[("neoc_requests_total", frozenset({("outcome", "cached_l1")}))] == 1
    assert s[("neoc_requests_total", frozenset({("outcome", "error:BusyError")}))] == 1
    assert s[("neoc_requests_total", frozenset({("outcome", "not-found")}))] == 0  # pre-declared label
    assert s[("neoc_tokens_total", frozenset({("kind", "prompt")}))] == 500
    assert s[("neoc_tokens_total", frozenset({("kind", "completion")}))] == 65
    assert s[("neoc_guard_actions_total", frozenset({("action", "shed_cache")}))] == 1
    assert s[("neoc_cache_events_total", frozenset({("event", "miss")}))] == 2
    total = frozenset({("stage", "total")})
    assert s[("neoc_stage_latency_seconds_count", total)] == 3
    assert s[("neoc_stage_latency_seconds_sum", total)] == pytest.approx(13.562)
    # 12 s lands above the 10 s bucket, 1.56 s inside 2.5 s
    assert s[("neoc_stage_latency_seconds_bucket", frozenset({("stage", "total"), ("le", "2.5")}))] == 2
    assert s[("neoc_stage_latency_seconds_bucket", frozenset({("stage", "total"), ("le", "10.0")}))] == 2
    assert s[("neoc_stage_latency_seconds_bucket", frozenset({("stage", "total"), ("le", "20.0")}))] == 3
    assert s[("neoc_stage_latency_seconds_count", frozenset({("stage", "embed")}))] == 1
    # gauges are sampled at exposition time
    assert s[("neoc_process_rss_bytes", frozenset())] > 10 * 2**20
    assert 0 < s[("neoc_system_memory_percent", frozenset())] <= 100
    body, ctype = metrics_response(m)
    assert ctype == METRICS_CONTENT_TYPE and ctype.startswith("text/plain")
    assert b"neoc_requests_total" in body


def test_registries_are_isolated(tmp_path):
    a = Metrics(*_sections(_settings(tmp_path)), persist=False)
    b = Metrics(*_sections(_settings(tmp_path)), persist=False)  # a second instance must not clash with the first
    a.record_request("llm", {"total": 5.0}, {})
    assert _samples(a)[("neoc_requests_total", frozenset({("outcome", "llm")}))] == 1
    assert _samples(b)[("neoc_requests_total", frozenset({("outcome", "llm")}))] == 0


def test_percentile_interpolates():
    data = sorted(float(x) for x in range(1, 101))  # 1..100
    assert percentile(data, 50) == pytest.approx(50.5)
    assert percentile(data, 95) == pytest.approx(95.05)
    assert percentile(data, 99) == pytest.approx(99.01)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 95) is None


def test_window_percentiles_hit_rate_error_rate(tmp_path):
    m = Metrics(*_sections(_settings(tmp_path, metrics_window=20)), persist=False)
    for i in range(30):  # the first 10 fall out of the window
        m.record_request("llm", {"total": 100_000.0, "retrieve": 1.0}, {})
    for i in range(1, 21):  # 20 requests, totals 10..200 ms
        outcome = "cached_l1" if i % 4 == 0 else ("cached_l2" if i % 5 == 0 else "extractive")
        m.record_request(outcome, {"total": 10.0 * i, "retrieve": float(i)}, {})
    snap = m.snapshot()
    assert snap["window"]["requests"] == 20 and snap["window"]["capacity"] == 20
    total = snap["latency_ms"]["total"]
    assert total["n"] == 20
    assert total["p50"] == pytest.approx(105.0)
    assert total["p95"] == pytest.approx(190.5)
    assert total["max"] == 200.0
    assert snap["latency_ms"]["retrieve"]["avg"] == pytest.approx(10.5)
    # hits: multiples of 4 (5) + multiples of 5 not of 4 (20 excluded: 5, 10, 15) = 8 of 20
    assert snap["hit_rate"] == pytest.approx(0.4)
    assert snap["cacheable_answers"] == 8 and snap["cacheable_hit_rate"] == 1.0  # no llm answers in window
    assert snap["error_rate"] == 0.0
    assert snap["totals"]["requests"]["llm"] == 30  # cumulative, not windowed
    assert len(snap["recent"]) == 20 and snap["recent"][-1][1:] == (200.0, "cached_l1")

    for _ in range(4):
        m.record_error("ModelError")
    m.record_error("input")  # user typed nothing: not an assistant failure
    m.record_error("cancelled")  # user pressed stop
    snap = m.snapshot()
    assert snap["outcomes"]["error:ModelError"] == 4
    assert snap["errors"] == 4 and snap["cancelled"] == 1 and snap["rejected_input"] == 1
    # window = last 20: 14 answered + 4 errors + 2 excluded -> 4/18
    assert snap["error_rate"] == pytest.approx(round(4 / 18, 4))
    assert snap["answered"] == 14


def test_request_path_is_cheap_and_never_calls_psutil(tmp_path, monkeypatch):
    m = Metrics(*_sections(_settings(tmp_path)))
    calls = []
    real_vm = psutil.virtual_memory
    monkeypatch.setattr(psutil, "virtual_memory", lambda *a, **k: calls.append("vm") or real_vm())
    monkeypatch.setattr(psutil.Process, "memory_info", lambda self: calls.append("rss"))
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        m.record_request("llm", {"cache": 1.0, "retrieve": 20.0, "generate": 900.0, "total": 925.0},
                         {"prompt": 300, "completion": 40})
        m.cache_event("miss")
    per_request = (time.perf_counter() - t0) / n
    assert calls == []
    assert per_request < 500e-6, f"{per_request * 1e6:.0f} us per request"
    lines = m.history.path.read_text().splitlines()
    assert len(lines) == n


def test_thread_safe_counts(tmp_path):
    m = Metrics(*_sections(_settings(tmp_path, metrics_window=10_000)))
    threads = [threading.Thread(target=lambda: [m.record_request("extractive", {"total": 3.0}, {"prompt": 1})
                                                for _ in range(500)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = m.snapshot()
    assert snap["window"]["requests"] == 4000
    assert snap["totals"]["tokens"]["prompt"] == 4000
    assert _samples(m)[("neoc_requests_total", frozenset({("outcome", "extractive")}))] == 4000
    lines = m.history.path.read_text().splitlines()
    assert len(lines) == 4000 and all(json.loads(line)["outcome"] == "extractive" for line in lines)


def test_history_rotation_keeps_the_latest(tmp_path):
    log = HistoryLog(tmp_path / "h.jsonl", max_bytes=4096)
    for i in range(400):
        log.append({"ts": i, "outcome": "llm", "t": {"total": float(i)}})
    log.close()
    assert log.backup.exists() and log.path.stat().st_size < 4096 + 200
    records = log.read()
    assert records[-1]["ts"] == 399
    seq = [r["ts"] for r in records]
    assert seq == sorted(seq) and seq == list(range(seq[0], 400))  # contiguous: backup then current
    assert len(seq) > 40


def test_stats_cli_in_another_process_reads_history(tmp_path):
    settings = _settings(tmp_path, metrics_window=50)
    m = Metrics(*_sections(settings))
    for i in range(60):
        m.record_request("cached_l1" if i % 2 else "llm", {"total": float(i + 1), "cache": 1.0},
                         {"prompt": 10, "completion": 2})
    m.record_error("StoreError")
    m.tick()  # the server's sampler: writes a "sample" line with its RSS
    m.close()
    env = {**os.environ, "NEOC_DATA_DIR": str(settings.paths.data_dir), "NEOC_METRICS_WINDOW": "50"}
    proc = subprocess.run([sys.executable, "-m", "neoc_assistant", "stats", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["window"]["requests"] == 50
    assert data["outcomes"]["error:StoreError"] == 1
    assert data["errors"] == 1
    # last 50 = requests 11..59 (49) + the error; totals i+1 -> 12..60
    assert data["latency_ms"]["total"]["max"] == 60.0 and data["latency_ms"]["total"]["n"] == 49
    assert data["hit_rate"] == pytest.approx(round(25 / 49, 4))
    assert data["server_sample"]["pid"] == os.getpid() and data["server_sample"]["rss_bytes"] > 0
    assert data["processes"] == [os.getpid()]
    text = subprocess.run([sys.executable, "-m", "neoc_assistant", "stats"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "Last 50 requests" in text.stdout and "p95" in text.stdout


def test_sampler_sets_pool_gauges_and_persists_sample(tmp_path):
    pool = {"size": 3, "in_use": 2, "waiting": 5, "idle": 1}
    m = Metrics(*_sections(_settings(tmp_path)), pool_stats=lambda: pool)
    m.start_sampler(interval_seconds=0.05)
    try:
        deadline = time.time() + 5
        while time.time() < deadline and not m.history.path.exists():
            time.sleep(0.02)
    finally:
        m.stop_sampler()
    s = _samples(m)
    assert s[("neoc_pool_size", frozenset())] == 3
    assert s[("neoc_pool_in_use", frozenset())] == 2
    assert s[("neoc_pool_queue_length", frozenset())] == 5
    lines = [json.loads(x) for x in m.history.path.read_text().splitlines()]
    assert lines and lines[0]["kind"] == "sample" and lines[0]["pool"]["in_use"] == 2
    assert m.snapshot()["pool"]["waiting"] == 5


def test_remote_summary_from_real_exposition(tmp_path):
    m = Metrics(*_sections(_settings(tmp_path)), persist=False)
    for i in range(100):
        m.record_request("cached_l2" if i < 70 else "llm", {"total": 50.0 if i < 90 else 4000.0}, {})
    m.record_error("MemoryGuardError")
    data = summarize_exposition(m.prometheus_text().decode())
    assert data["requests"] == 101 and data["errors"] == 1
    assert data["hit_rate"] == pytest.approx(0.7)
    # 90 % at 50 ms (bucket 0.025..0.05], 10 % at 4 s (bucket 2.5..5]
    assert 25 <= data["latency_ms"]["total"]["p50"] <= 50
    assert 2500 <= data["latency_ms"]["total"]["p95"] <= 5000
    assert data["gauges"]["neoc_process_rss_bytes"] > 0


def test_histogram_quantile_and_loopback_guard():
    buckets = [(0.1, 10.0), (1.0, 90.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.9 * 40 / 80)
    assert histogram_quantile(0.99, buckets) == 1.0  # in +Inf: largest finite bound
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert require_loopback("http://127.0.0.1:7860/") == "http://127.0.0.1:7860"
    assert require_loopback("http://localhost:1") == "http://localhost:1"
    for bad in ("http://10.0.0.5:7860", "http://example.org", "ftp://127.0.0.1", "127.0.0.1:7860"):
        with pytest.raises(InputError):
            require_loopback(bad)


# --------------------------------------------------------------------------
# alerts
# --------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def _alert_logs(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "neoc_assistant.alerts"
            and r.levelno == logging.WARNING]


def test_one_slow_request_does_not_alert_but_a_slow_window_does(tmp_path, caplog):
    clock = FakeClock()
    m = Metrics(*_sections(_settings(tmp_path)), persist=False, alert_min_samples=20, alert_interval_seconds=30,
                clock=clock)
    caplog.set_level(logging.INFO, logger="neoc_assistant.alerts")
    m.record_request("llm", {"total": 45_000.0}, {})  # cold start: model load
    assert [a for a in m.snapshot()["alerts"] if a["alert"] == "latency_p95"] == []
    for _ in range(25):
        m.record_request("llm", {"total": 15_000.0}, {})
    # evaluated at most every 30 s: still the old state
    assert not any(a["alert"] == "latency_p95" for a in m.snapshot()["alerts"])
    clock.now += 31
    alerts = {a["alert"]: a for a in m.snapshot()["alerts"]}
    assert alerts["latency_p95"]["value"] > 10 and alerts["latency_p95"]["threshold"] == 10.0
    assert alerts["cache_hit_rate"]["value"] == 0.0
    logged = {entry["alert"]: entry for entry in _alert_logs(caplog)}
    assert logged["latency_p95"]["event"] == "alert" and logged["latency_p95"]["samples"] == 26
    record = next(r for r in caplog.records if "latency_p95" in r.getMessage())
    assert record.neoc_alert["alert"] == "latency_p95"  # structured `extra`
    s = _samples(m)
    assert s[("neoc_alert_active", frozenset({("alert", "latency_p95")}))] == 1
    assert s[("neoc_alerts_total", frozenset({("alert", "latency_p95")}))] == 1
    # still firing 31 s later: not logged again (repeat interval 10 min)
    caplog.clear()
    clock.now += 31
    m.snapshot()
    assert _alert_logs(caplog) == []
    # fast cached answers push p95 down -> resolved
    for _ in range(m.settings.metrics_window):
        m.record_request("cached_l1", {"total": 3.0}, {})
    clock.now += 31
    assert m.snapshot()["alerts"] == [] or all(a["alert"] == "memory" for a in m.snapshot()["alerts"])
    assert any(json.loads(r.getMessage())["event"] == "alert_resolved" for r in caplog.records)


def test_alert_rules_error_rate_and_memory(tmp_path):
    settings = _settings(tmp_path)
    mon = AlertMonitor(settings.monitoring, min_samples=20)
    base = {"latency_ms": {"total": {"n": 40, "p95": 500.0}}, "window": {"requests": 40}, "errors": 3,
            "error_rate": 3 / 40, "answered": 37, "hit_rate": 0.9, "memory": {"system_percent": 50.0}}
    assert [a["alert"] for a in mon.check(base)] == ["error_rate"]
    assert mon.check({**base, "errors": 1, "error_rate": 1 / 40}) == []
    assert [a["alert"] for a in mon.check({**base, "errors": 0, "error_rate": 0.0,
                                           "memory": {"system_percent": 85.0}})] == ["memory"]
    # too few samples: no rate alerts even at 100 % errors
    few = {"latency_ms": {"total": {"n": 0}}, "window": {"requests": 5}, "errors": 5, "error_rate": 1.0,
           "answered": 0, "hit_rate": None, "memory": {"system_percent": 10.0}}
    assert mon.check(few) == []


def test_retrieval_only_traffic_does_not_raise_a_hit_rate_alert(tmp_path):
    """Only model-written answers are cached: 0 % hits in extractive (quotes-only) mode is not a cache fault."""
    m = Metrics(*_sections(_settings(tmp_path)), persist=False, alert_min_samples=20)
    for _ in range(50):
        m.record_request("extractive", {"total": 20.0}, {})
    snap = m.snapshot()
    assert snap["hit_rate"] == 0.0 and snap["cacheable_hit_rate"] is None
    assert not any(a["alert"] == "cache_hit_rate" for a in snap["alerts"])
    for i in range(30):
        m.record_request("llm" if i % 2 else "cached_l2", {"total": 900.0}, {})
    mon = AlertMonitor(m.settings, min_samples=20)
    fired = {a["alert"]: a for a in mon.check(m.snapshot(evaluate_alerts=False))}
    assert fired["cache_hit_rate"]["value"] == 0.5 and fired["cache_hit_rate"]["samples"] == 30
