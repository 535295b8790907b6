"""`ask`: one question, answer streamed to the terminal (or one JSON object)."""

from __future__ import annotations

import json
import sys
import threading
from typing import Optional

import typer

from neoc_assistant.cli import app
from neoc_assistant.cli.common import assistant
from neoc_assistant.retrieve.retriever import SearchFilters


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in your own words."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of streaming."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the response cache."),
    source: Optional[list[str]] = typer.Option(None, "--source", help="Only use sources under this path (repeatable)."),
    doc_type: Optional[list[str]] = typer.Option(None, "--type", help="Only use this document type (repeatable)."),
) -> None:
    """Answer QUESTION from the knowledge base, citing the passages used."""
    service = assistant()
    filters = SearchFilters(tuple(source or ()), tuple(doc_type or ()))
    if as_json:
        answer = service.ask(question, filters=filters, use_cache=not no_cache)
        typer.echo(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    cancel = threading.Event()
    answer = None
    try:
        for event in service.ask_stream(question, filters=filters, use_cache=not no_cache, cancel=cancel):
            if event.kind == "token":
                sys.stdout.write(event.text)
                sys.stdout.flush()
            else:
                answer = event.answer
    except KeyboardInterrupt:
        cancel.set()
        typer.echo("\n[stopped]", err=True)
        raise typer.Exit(130)
    typer.echo("")
    if answer is None:
        return
    if answer.notice:
        typer.echo(f"\nNOTE: {answer.notice}", err=True)
    if answer.sources and answer.mode == "llm":
        typer.echo("\nSources:")
        for i, src in enumerate(answer.sources, start=1):
            page = f", page {src['page']}" if src.get("page") else ""
            typer.echo(f"  [{i}] {src['source']}{page}")
    tag = f"cached ({answer.cache_tier})" if answer.cached else answer.mode
    typer.echo(f"[{tag}, {answer.timings_ms.get('total', 0):.0f} ms]", err=True)
