"""Operations commands: stats, health.

``stats`` runs in its own process, not the server's, so by default it reads the
last window of requests from the rolling history file every assistant process
appends to (``<data_dir>/logs/metrics/requests.jsonl``, see
``monitoring/metrics.py``); ``--url`` reads a running server's ``/metrics``
instead (cumulative since the server started, plus its live gauges).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Optional

import typer

from neoc_assistant.cli.root import app
from neoc_assistant.cli.common import assistant
from neoc_assistant.figures import format_duration, format_megabytes, format_percent


def _print_latency(latency: dict) -> None:
    if not latency:
        return
    typer.echo(f"  {'stage':<10}{'n':>6}{'p50':>10}{'p95':>10}{'p99':>10}{'avg':>10}")
    for stage, row in latency.items():
        typer.echo(f"  {stage:<10}{row['n']:>6}{format_duration(row['p50']):>10}{format_duration(row['p95']):>10}"
                   f"{format_duration(row['p99']):>10}{format_duration(row['avg']):>10}")


@app.command()
def stats(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    url: Optional[str] = typer.Option(None, "--url", help="Read a running server's /metrics, e.g. http://127.0.0.1:7860."),
    window: Optional[int] = typer.Option(None, "--window", min=1, help="Requests to summarise (default NEOC_METRICS_WINDOW)."),
) -> None:
    """Latency percentiles, cache hit rate, error rate and memory over the recent requests."""
    if url:
        from neoc_assistant.monitoring.remote import fetch_metrics_text, summarize_exposition

        data = summarize_exposition(fetch_metrics_text(url))
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        typer.echo(f"{url}: {data['requests']} requests since the server started ({data['source']})")
        typer.echo(f"  outcomes: {data['outcomes'] or '-'}")
        typer.echo(f"  cache hit rate {format_percent(data['hit_rate'])}   error rate {format_percent(data['error_rate'])}")
        _print_latency(data["latency_ms"])
        g = data["gauges"]
        typer.echo(f"  server rss {format_megabytes(g.get('neoc_process_rss_bytes'))}   system memory "
                   f"{g.get('neoc_system_memory_percent', 0):.0f}%   pool {int(g.get('neoc_pool_in_use', 0))}/"
                   f"{int(g.get('neoc_pool_size', 0))} in use, {int(g.get('neoc_pool_queue_length', 0))} waiting")
        if data["alerts"]:
            typer.echo(f"  ALERTS: {', '.join(data['alerts'])}")
        return

    snap = assistant().recorded_stats(window)
    if as_json:
        typer.echo(json.dumps(snap, indent=2))
        return
    w = snap["window"]
    if not w["requests"]:
        typer.echo(f"No requests recorded yet in {snap['source']}.")
        typer.echo("Ask a question (CLI `ask` or the web UI) and run `stats` again.")
        return
    since = dt.datetime.fromtimestamp(w["since"]).isoformat(sep=" ", timespec="seconds")
    until = dt.datetime.fromtimestamp(w["until"]).isoformat(sep=" ", timespec="seconds")
    typer.echo(f"Last {w['requests']} requests ({since} .. {until}), from {snap['source']}")
    typer.echo("  outcomes: " + ", ".join(f"{k} {v}" for k, v in snap["outcomes"].items()))
    typer.echo(f"  cache hit rate {format_percent(snap['hit_rate'])}   error rate {format_percent(snap['error_rate'])}")
    _print_latency(snap["latency_ms"])
    tokens = snap["totals"].get("tokens") or {}
    if tokens:
        typer.echo(f"  tokens: prompt {tokens.get('prompt', 0)}, completion {tokens.get('completion', 0)}")
    if snap["totals"].get("guard_actions"):
        typer.echo(f"  memory guard actions: {snap['totals']['guard_actions']}")
    sample = snap["server_sample"]
    if sample:
        pool = sample.get("pool") or {}
        typer.echo(f"  server pid {sample.get('pid')} ({sample['age_seconds']:.0f}s ago): rss "
                   f"{format_megabytes(sample.get('rss_bytes'))}, system memory {sample.get('system_percent', 0):.0f}%, "
                   f"cpu {sample.get('cpu_percent', 0):.0f}%"
                   + (f", pool {pool.get('in_use', 0)}/{pool.get('size', 0)} in use, "
                      f"{pool.get('waiting', 0)} waiting" if pool else ""))
    for alert in snap["alerts"]:
        typer.echo(f"  ALERT {alert['alert']}: {alert['message']}")


@app.command()
def health(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    min_free_mb: int = typer.Option(1024, "--min-free-mb", min=0, help="Minimum free disk under the data dir."),
) -> None:
    """Check model, knowledge-base store, disk and memory; exit 1 if unhealthy (extractive is degraded, not unhealthy)."""
    result = assistant().health(min_free_disk_bytes=min_free_mb * 2**20)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"status: {result['status']}")
        for name, check in result["checks"].items():
            mark = "FAIL" if not check["ok"] else ("WARN" if check.get("degraded") else "ok")
            typer.echo(f"  {name:<10}{mark:<5} {check.get('message', '')}")
    raise typer.Exit(0 if result["healthy"] else 1)
