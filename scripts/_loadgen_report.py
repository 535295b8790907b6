"""The load test's report (used by ``scripts/loadtest.py``): records -> JSON summary, one-line summary, plot.

Kept apart from ``loadgen.py``, which produces the records (question mix,
simulated users, resource sampling): what a run measured and how it is
summed up change for different reasons. ``plot_latency`` needs the
``[dev]`` extra's matplotlib.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

from loadgen import KINDS, RECYCLED, LoadResult, RequestRecord

from neoc_assistant.figures import latency_summary, percentile


def _hit_rate(records: list[RequestRecord]) -> float | None:
    answered = [r for r in records if not r.outcome.startswith("error")]
    if not answered:
        return None
    return round(sum(r.outcome.startswith("cached_") for r in answered) / len(answered), 4)


def _cacheable_hit_rate(records: list[RequestRecord]) -> float | None:
    """Hits over answers the cache could have served (only model-written answers are cached)."""
    hits = sum(r.outcome.startswith("cached_") for r in records)
    cacheable = hits + sum(r.outcome == "llm" for r in records)
    return round(hits / cacheable, 4) if cacheable else None


def build_report(result: LoadResult, config: dict) -> dict:
    records = result.records
    ok = [r for r in records if not r.outcome.startswith("error")]
    errors = Counter(r.outcome.split(":", 1)[1] for r in records if r.outcome.startswith("error"))
    stages: dict[str, list[float]] = {}
    for r in ok:
        for stage, ms in r.timings_ms.items():
            if isinstance(ms, (int, float)):
                stages.setdefault(stage, []).append(float(ms))
    elapsed = result.elapsed_seconds
    # busy span: first request start to last request end (excludes trailing think time)
    active = max((r.start + r.latency_ms / 1000.0 for r in records), default=0.0) - min(
        (r.start for r in records), default=0.0)
    report = {
        "config": config,
        "requests": len(records),
        "completed": len(ok),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "elapsed_seconds": round(elapsed, 3),
        "stopped_by": result.stopped_by,
        "active_seconds": round(active, 3),
        "throughput_rps": round(len(records) / active, 3) if active > 0 else None,
        "latency_ms": latency_summary(r.latency_ms for r in records),
        "latency_ms_ok": latency_summary(r.latency_ms for r in ok),
        "outcomes": dict(Counter(r.outcome for r in records)),
        "cache_hit_rate": _hit_rate(records),
        "cacheable_hit_rate": _cacheable_hit_rate(records),
        # answered with quotes at once because every model slot was busy (admission control)
        "degraded_share": round(sum(r.outcome == "extractive_busy" for r in ok) / len(ok), 4) if ok else None,
        "by_kind": {
            kind: {"requests": len(rs), "hit_rate": _hit_rate(rs), "latency_ms": latency_summary(r.latency_ms for r in rs)}
            for kind in (*KINDS, RECYCLED) if (rs := [r for r in records if r.kind == kind])
        },
        "by_outcome_latency_ms": {
            outcome: latency_summary(r.latency_ms for r in records if r.outcome == outcome)
            for outcome in sorted({r.outcome for r in records})
        },
        "server_stage_ms": {stage: latency_summary(values) for stage, values in stages.items()},
        "resources": result.resources,
        "new_questions_recycled": result.new_recycled,
    }
    return report


def summary_line(report: dict) -> dict:
    """The one-line summary printed last."""
    lat = report["latency_ms"]
    peak = report["resources"]["peak_rss_bytes"]
    return {
        "mode": report["config"].get("mode"),
        "users": report["config"].get("users"),
        "requests": report["requests"],
        "errors": report["errors"],
        "p50_ms": lat["p50"],
        "p95_ms": lat["p95"],
        "p99_ms": lat["p99"],
        "avg_ms": lat["avg"],
        "throughput_rps": report["throughput_rps"],
        "cache_hit_rate": report["cache_hit_rate"],
        "cacheable_hit_rate": report["cacheable_hit_rate"],
        "degraded_share": report["degraded_share"],
        "error_rate": round(report["errors"] / report["requests"], 4) if report["requests"] else None,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in peak.items()},
        "report": report.get("report_path"),
    }


def plot_latency(records: list[RequestRecord], path: Path, title: str = "") -> Path:
    """Latency over time (by outcome, with a rolling p95) and the latency distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    outcomes = sorted({r.outcome for r in records})
    for outcome in outcomes:
        rs = [r for r in records if r.outcome == outcome]
        ax1.scatter([r.start for r in rs], [max(r.latency_ms, 0.01) for r in rs], s=10, alpha=0.6,
                    label=f"{outcome} ({len(rs)})")
    if records:
        window = max(10, len(records) // 20)
        xs, ys = [], []
        for i in range(len(records)):
            chunk = sorted(r.latency_ms for r in records[max(0, i - window + 1): i + 1])
            xs.append(records[i].start)
            ys.append(max(percentile(chunk, 95), 0.01))
        ax1.plot(xs, ys, color="black", linewidth=1.2, label=f"rolling p95 ({window} req)")
        ax1.set_yscale("log")
        ax1.legend(fontsize=8, loc="best")
        lat = [max(r.latency_ms, 0.01) for r in records]
        lo, hi = min(lat), max(lat)
        bins = [lo * (hi / lo) ** (i / 40) for i in range(41)] if hi > lo else 20
        ax2.hist(lat, bins=bins, color="steelblue")
        ax2.set_xscale("log")
        for q, style in ((50, ":"), (95, "--"), (99, "-.")):
            value = percentile(sorted(lat), q)
            ax2.axvline(value, color="black", linestyle=style, linewidth=1, label=f"p{q} {value:.0f} ms")
        ax2.legend(fontsize=8)
    ax1.set_xlabel("seconds since start")
    ax1.set_ylabel("latency (ms, log)")
    ax1.set_title(title or "request latency")
    ax2.set_xlabel("latency (ms, log)")
    ax2.set_ylabel("requests")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def records_json(records: list[RequestRecord]) -> list[dict]:
    return [asdict(r) for r in records]
