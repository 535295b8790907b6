"""Read a running server's ``/metrics`` (loopback only) and summarise it like ``snapshot()``.

Used by ``stats --url`` and the load test's URL mode. The summary comes from the
server's cumulative counters and histograms (since it started), so percentiles
are histogram estimates (Prometheus ``histogram_quantile``-style interpolation
inside a bucket), not the exact sliding-window figures of the history file.
"""

from __future__ import annotations

import math
import urllib.request
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from neoc_assistant.errors import InputError
from neoc_assistant.hosts import is_loopback

def require_loopback(url: str) -> str:
    """Return ``url`` without a trailing slash; raise ``InputError`` unless it is http(s) on this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{url!r} is not an http://host:port URL (e.g. http://127.0.0.1:7860)")
    if not is_loopback(parts.hostname.lower()):
        raise InputError(f"refusing {url}: only loopback targets (127.0.0.1 / localhost) are allowed")
    return url.rstrip("/")


def opener() -> urllib.request.OpenerDirector:
    """An opener that ignores *_proxy env vars (loopback traffic must not go through a proxy)."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_metrics_text(url: str, timeout: float = 10.0) -> str:
    base = require_loopback(url)
    target = base if base.endswith("/metrics") else base + "/metrics"
    try:
        with opener().open(target, timeout=timeout) as resp:
            return resp.read().decode("utf-8", "replace")
    except OSError as exc:
        raise InputError(f"cannot read {target}: {getattr(exc, 'reason', exc)} - is the server running?") from exc


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``q`` (0..1) from cumulative ``(upper_bound, count)`` buckets, sorted, last one +Inf."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound  # above the largest finite bucket: report that bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def summarize_exposition(text: str) -> dict:
    """Cumulative figures from a Prometheus text exposition of a ``Metrics`` registry."""
    outcomes: dict[str, float] = {}
    tokens: dict[str, float] = {}
    guard: dict[str, float] = {}
    cache: dict[str, float] = {}
    gauges: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    alerts: list[str] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if family.name == "neoc_requests" and s.name.endswith("_total"):
                outcomes[s.labels["outcome"]] = s.value
            elif family.name == "neoc_tokens" and s.name.endswith("_total"):
                tokens[s.labels["kind"]] = s.value
            elif family.name == "neoc_guard_actions" and s.name.endswith("_total"):
                guard[s.labels["action"]] = s.value
            elif family.name == "neoc_cache_events" and s.name.endswith("_total"):
                cache[s.labels["event"]] = s.value
            elif family.name == "neoc_stage_latency_seconds":
                stage = s.labels.get("stage", "")  # every stage sample has one
                if s.name.endswith("_bucket"):
                    buckets.setdefault(stage, []).append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_sum"):
                    sums[stage] = s.value
                elif s.name.endswith("_count"):
                    counts[stage] = s.value
            elif family.name == "neoc_alert_active" and s.value:
                alerts.append(s.labels["alert"])
            elif family.type == "gauge" and family.name.startswith("neoc_"):
                gauges[family.name] = s.value
    latency = {}
    for stage, bs in buckets.items():
        bs.sort()
        n = counts.get(stage, bs[-1][1] if bs else 0)
        if not n:
            continue
        latency[stage] = {
            "n": int(n),
            "p50": _ms(histogram_quantile(0.50, bs)),
            "p95": _ms(histogram_quantile(0.95, bs)),
            "p99": _ms(histogram_quantile(0.99, bs)),
            "avg": _ms(sums.get(stage, 0.0) / n),
        }
    total = sum(outcomes.values())
    errors = sum(v for k, v in outcomes.items() if k.startswith("error"))
    hits = sum(v for k, v in outcomes.items() if k.startswith("cached_"))
    answered = total - errors
    return {
        "source": "metrics endpoint (cumulative since server start; percentiles are histogram estimates)",
        "requests": int(total),
        "outcomes": {k: int(v) for k, v in sorted(outcomes.items()) if v},
        "errors": int(errors),
        "error_rate": round(errors / total, 4) if total else None,
        "hit_rate": round(hits / answered, 4) if answered else None,
        "latency_ms": latency,
        "totals": {"tokens": {k: int(v) for k, v in tokens.items()},
                   "guard_actions": {k: int(v) for k, v in guard.items() if v},
                   "cache_events": {k: int(v) for k, v in cache.items() if v}},
        "gauges": gauges,
        "alerts": alerts,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
