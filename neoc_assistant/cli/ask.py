"""`ask`: one question streamed to the terminal, one JSON object, or a file of questions.

``--questions FILE.jsonl`` answers many questions in one process (the model is
loaded once): drills and evaluations need it. Each input line is
``{"id", "text"}``; each output line is the ``--json`` object plus ``id`` (or
``{"id", "error"}`` for a question that could not be answered, e.g. empty).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from pathlib import Path
from typing import Optional

import typer

from neoc_assistant.audit import Asker
from neoc_assistant.cli.root import app
from neoc_assistant.cli.common import assistant
from neoc_assistant.errors import InputError, NeocError
from neoc_assistant.ingest.names import printable
from neoc_assistant.retrieve.retriever import SearchFilters


def _read_questions(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path} is not a file: give a JSONL file with one {{\"id\", \"text\"}} object per line")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg}): each line must be {{\"id\": ..., \"text\": ...}}")
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InputError(f"{path}:{n}: needs a \"text\" string (and an \"id\")")
        items.append({"id": item.get("id", n), "text": item["text"]})
    return items


@app.command()
def ask(
    question: Optional[str] = typer.Argument(None, help="The question, in your own words."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of streaming."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL file of {\"id\", \"text\"}: "
                                             "answer them all, one JSON line each (implies --json)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the response cache."),
    source: Optional[list[str]] = typer.Option(None, "--source", help="Only use sources under this path (repeatable)."),
    doc_type: Optional[list[str]] = typer.Option(None, "--type", help="Only use this document type (repeatable)."),
) -> None:
    """Answer QUESTION from the knowledge base, citing the passages used."""
    filters = SearchFilters(tuple(source or ()), tuple(doc_type or ()))
    if questions is not None:
        items = _read_questions(questions)  # all checked before the model loads
        service = assistant()
        for item in items:
            try:
                answer = service.ask(item["text"], filters=filters, use_cache=not no_cache, asker=_asker())
                out = {"id": item["id"], **answer.to_json()}
            except NeocError as exc:
                out = {"id": item["id"], "error": type(exc).__name__, "message": str(exc)}
            typer.echo(json.dumps(out, ensure_ascii=False))
        return
    service = assistant()
    if question is None:
        if as_json:
            raise InputError("give a QUESTION, or --questions FILE.jsonl")
        _conversation(service, filters, not no_cache)
        return
    if as_json:
        answer = service.ask(question, filters=filters, use_cache=not no_cache, asker=_asker())
        typer.echo(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    _stream_answer(service, question, filters, not no_cache, [], asker=_asker())


def _asker(conversation: str = "") -> Asker:
    """This terminal's user as the audit trail's caller (the OS account name; there is no password here)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return Asker(who=f"local:{user}", channel="cli", conversation=conversation)


def _conversation(service, filters: SearchFilters, use_cache: bool) -> None:
    """`ask` without a question: a prompt loop that keeps the conversation, so follow-ups ("and for
    children?") are read with it. An empty line or Ctrl-D ends it; "new" forgets the conversation."""
    typer.echo("Ask a question (follow-ups are read with the conversation; 'new' starts over; "
               "an empty line or Ctrl-D ends).", err=True)
    history: list[tuple[str, str]] = []
    asker = _asker(f"cli-{uuid.uuid4().hex[:12]}")
    while True:
        try:
            question = input("\n? ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("", err=True)
            return
        if not question:
            return
        if question.lower() in ("new", "new conversation"):
            history.clear()
            asker = _asker(f"cli-{uuid.uuid4().hex[:12]}")
            typer.echo("[new conversation]", err=True)
            continue
        try:
            answer = _stream_answer(service, question, filters, use_cache, history, exit_on_stop=False, asker=asker)
        except NeocError as exc:
            typer.echo(f"error: {exc}", err=True)
            continue
        if answer is not None:
            history = (history + [(question, answer.answer)])[-6:]


def _stream_answer(service, question: str, filters: SearchFilters, use_cache: bool,
                   history: list[tuple[str, str]], exit_on_stop: bool = True, asker: Asker | None = None):
    cancel = threading.Event()
    answer = None
    try:
        for event in service.ask_stream(question, history=history or None, filters=filters, use_cache=use_cache,
                                        cancel=cancel, asker=asker):
            if event.kind == "replace":
                sys.stdout.write("\n\n[withdrawn: it did not answer the question]\n\n" + event.text)
                sys.stdout.flush()
            elif event.kind == "token":
                sys.stdout.write(event.text)
                sys.stdout.flush()
            else:
                answer = event.answer
    except KeyboardInterrupt:
        cancel.set()
        typer.echo("\n[stopped]", err=True)
        if exit_on_stop:
            raise typer.Exit(130)
        return None
    typer.echo("")
    if answer is None:
        return None
    if answer.understood_as:
        typer.echo(f"(understood as: {printable(answer.understood_as)})", err=True)
    if answer.notice:
        typer.echo(f"\nNOTE: {answer.notice}", err=True)
    if answer.sources and answer.mode != "not-found":
        typer.echo("\nSources:")
        for src in answer.sources:
            page = f", page {src['page']}" if src.get("page") else ""
            typer.echo(f"  [{src.get('n')}] {printable(src['source'])}{page}")
    removed = answer.unsupported_claims
    if removed:
        typer.echo(f"\nRemoved as not found in the documents ({len(removed)}):", err=True)
        for claim in removed:
            typer.echo(f"  - {claim['text']}  ({claim.get('reason', '')})", err=True)
    tag = f"cached ({answer.cache_tier})" if answer.cached else answer.mode
    status = (answer.verification or {}).get("status", "")
    typer.echo(f"[{tag}{', ' + status if status and status != answer.mode else ''}, "
               f"{answer.timings_ms.get('total', 0):.0f} ms]", err=True)
    return answer
