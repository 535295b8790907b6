"""Response-cache commands: ``cache stats``, ``cache clear``, ``cache warm``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from neoc_assistant.cli.root import app
from neoc_assistant.cli.common import assistant
from neoc_assistant.figures import MISSING

cache_app = typer.Typer(no_args_is_help=True, help="Inspect, clear or warm the response cache.")
app.add_typer(cache_app, name="cache")


def _mb(value) -> str:
    """Cache sizes to a tenth of a MB (they are small)."""
    return MISSING if value is None else f"{value / 2**20:.1f} MB"


@cache_app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Sizes of the cache tiers and hit/miss/refusal totals of every process on this machine."""
    data = assistant().cache_stats()
    emb = data["embedding_cache"]
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    totals = data.get("persisted", {})
    lookups = totals.get("lookups", 0)
    hits = totals.get("hits", 0)
    typer.echo(f"enabled            {data['enabled']}   (similarity threshold {data['threshold']})")
    typer.echo(f"kb version         {data.get('kb_version') or '-'}")
    typer.echo(f"L2 entries         {data.get('l2_entries', '-')}   ({_mb(data.get('l2_bytes'))} on disk)")
    typer.echo(f"embedding cache    {emb.get('disk_items', '-')} vectors   ({_mb(emb.get('disk_bytes'))} on disk)")
    typer.echo(f"query log          {data['query_log_entries']} questions")
    typer.echo("totals (all processes):")
    typer.echo(f"  lookups          {lookups}")
    rate = f"{hits / lookups:.0%}" if lookups else "-"
    typer.echo(f"  hits             {hits}  (L1 {totals.get('hits_l1', 0)}, L2 {totals.get('hits_l2', 0)}; "
               f"exact {totals.get('hits_exact', 0)}, semantic {totals.get('hits_semantic', 0)})  hit rate {rate}")
    typer.echo(f"  misses           {totals.get('misses', 0)}")
    typer.echo(f"  guard refusals   {totals.get('guard_refusals', 0)}")
    reasons = {k.split(":", 1)[1]: v for k, v in totals.items() if k.startswith("refusal:")}
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        typer.echo(f"    {reason:<16}{n}")
    typer.echo(f"  stores           {totals.get('stores', 0)}   refused {totals.get('store_refusals', 0)}")
    typer.echo(f"  removals         {totals.get('removals', 0)}   kb evictions {totals.get('kb_evictions', 0)}")


@cache_app.command("clear")
def clear(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    embeddings: bool = typer.Option(False, "--embeddings", help="Also clear the embedding cache."),
) -> None:
    """Remove every cached answer (all processes drop their in-memory copies too)."""
    if not yes:
        typer.confirm("Clear all cached answers?", abort=True)
    before = assistant().clear_cache(embeddings=embeddings)
    typer.echo(f"cleared {before if before is not None else 'all'} cached answers" + (" and the embedding cache" if embeddings else ""))


@cache_app.command("warm")
def warm_cmd(
    top: Optional[int] = typer.Option(None, "--top", min=1, help="Replay the N most frequent logged questions "
                                      "(default 50; with --file: all)."),
    min_count: int = typer.Option(1, "--min-count", min=1, help="Only questions asked at least this often."),
    file: Optional[Path] = typer.Option(None, "--file", help="Questions from a .txt (one per line) or .jsonl file instead of the log."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Answer frequent questions now so officers get cache hits later."""
    from neoc_assistant.cache.warming import load_questions_file

    service = assistant()
    if file is not None:
        questions = load_questions_file(file)
        questions = questions[:top] if top else questions
    else:
        questions = service.frequent_questions(top or 50, min_count=min_count)
    if not questions:
        typer.echo("nothing to warm: the query log is empty (use --file questions.txt)")
        raise typer.Exit(0)
    report = service.warm_cache(questions, progress=progress and not as_json)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(
            f"warmed {report.total} questions in {report.seconds:.1f}s: {report.answered} answered, "
            f"{report.already_cached} already cached, {report.not_cacheable} not cacheable, {report.failed} failed"
        )
        for err in report.errors[:5]:
            typer.echo(f"  failed: {err}", err=True)
    raise typer.Exit(1 if report.failed and report.failed == report.total else 0)
