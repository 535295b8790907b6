"""Knowledge-base commands: config, ingest, search, documents; signed update bundles (``kb keygen|trust|export|import``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neoc_assistant.cli.root import app
from neoc_assistant.cli.common import assistant, settings
from neoc_assistant.ingest.names import printable
from neoc_assistant.retrieve.retriever import SearchFilters

console = Console(stderr=False)


def shown(text: str) -> str:
    """A file name (or any text from a file) for a rich console: control characters escaped, as they
    would act on the terminal (``ESC[2J`` clears it), and markup escaped (``[/]`` in a folder name
    stopped `documents` with a MarkupError)."""
    return escape(printable(text))


@app.command()
def config(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Print the effective settings by section (defaults < neoc.toml < NEOC_* env vars)."""
    data = settings().public_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for section, values in data.items():
        typer.echo(f"[{section}]")
        for key, value in values.items():
            typer.echo(f"{key} = {value!r}")
        typer.echo("")


@app.command()
def ingest(
    paths: Optional[list[Path]] = typer.Argument(None, help="Files or folders (default: NEOC_KB_DIR)."),
    prune: bool = typer.Option(
        True, "--prune/--no-prune", help="Purge documents that disappeared from an ingested folder."
    ),
    delete: Optional[list[str]] = typer.Option(None, "--delete", help="Remove a document by its source name."),
    repair: bool = typer.Option(False, "--repair", help="Make the vector store match the manifest (re-embeds "
                                "missing chunks from the manifest; reads no file)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Start a new manifest from PATHS (default: the KB "
                                 "folder); the old, e.g. corrupt, one is moved aside."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Add or update documents in the knowledge base (incremental: unchanged files cost nothing)."""
    service = assistant()
    if delete:
        summary = service.delete_documents(delete)
    elif repair:
        summary = service.repair_store(show_progress=progress and not as_json)
    elif rebuild:
        summary = service.rebuild(paths or None)
    else:
        summary = service.ingest(paths or None, prune=prune, show_progress=progress and not as_json)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary)
    raise typer.Exit(0 if summary.ok else 1)


def print_summary(summary) -> None:
    data = summary.to_dict()
    for note in data["notes"]:
        console.print(f"[yellow]note:[/] {shown(note)}")
    for item in data["files"]:  # what a file's reading left out or changed (OCR pages refused, an encoding)
        if item["status"] in ("added", "updated") and item["reason"]:
            console.print(f"[yellow]{shown(item['source'])}:[/] {shown(item['reason'])}")
    for item in data["skipped_files"]:
        console.print(f"[dim]skipped {shown(item['source'])}: {shown(item['reason'])}[/]")
    if data["failures"]:
        table = Table(title="Failed files", show_lines=False)
        table.add_column("file")
        table.add_column("reason")
        for item in data["failures"]:
            table.add_row(shown(item["source"]), shown(item["reason"]))
        console.print(table)
    console.print(
        f"[bold]added[/] {data['added']}  [bold]updated[/] {data['updated']}  "
        f"[bold]unchanged[/] {data['unchanged']}  [bold]purged[/] {data['purged']}  "
        f"[bold]failed[/] {data['failed']}  [bold]chunks[/] {data['chunks']}  "
        f"[bold]seconds[/] {data['seconds']:.1f}  [dim]kb version {data['kb_version']}[/]"
    )


@app.command()
def search(
    query: Optional[str] = typer.Argument(None, help="What to look for."),
    k: int = typer.Option(5, "--k", min=1, max=100, help="Number of passages."),
    as_json: bool = typer.Option(False, "--json", help="JSON output (array of hits, best first)."),
    source: Optional[list[str]] = typer.Option(None, "--source", help="Only sources under this file/folder (repeatable)."),
    doc_type: Optional[list[str]] = typer.Option(None, "--type", help="Only this document type: pdf, docx, md, ... (repeatable)."),
    queries: Optional[Path] = typer.Option(None, "--queries", help="JSONL file of {\"id\", \"text\"}: one JSON line out per query."),
    relevant_only: bool = typer.Option(
        False, "--relevant-only", help="Only passages above the calibrated relevance floor (may print none)."
    ),
) -> None:
    """Show the knowledge-base passages that best match QUERY."""
    service = assistant()
    filters = SearchFilters(tuple(source or ()), tuple(doc_type or ()))
    if queries is not None:
        _search_many(service, queries, k, filters)
        return
    if query is None:
        raise typer.BadParameter("give a QUERY or --queries FILE.jsonl")
    hits = service.search(query, k=k, filters=filters, relevant_only=relevant_only)
    if as_json:
        typer.echo(json.dumps([h.to_json(rank) for rank, h in enumerate(hits, start=1)], ensure_ascii=False))
        return
    if not hits:
        if relevant_only:
            console.print("Nothing relevant in the knowledge base (no passage reaches the relevance floor).")
        else:
            console.print("No passages found. Is the knowledge base ingested? Run: python -m neoc_assistant ingest")
    for rank, hit in enumerate(hits, start=1):
        page = f" p.{hit.page}" if hit.page else ""
        relevance = hit.scores.get("relevance", 0.0)
        weak = "" if service.is_relevant(hit) else "  [yellow]below relevance floor[/]"
        console.print(
            f"[bold]{rank}. {shown(hit.source)}{page}[/]  [dim]score {hit.score:.3f}  relevance {relevance:.2f}  {hit.chunk_id}[/]{weak}"
        )
        console.print("   " + printable(" ".join(hit.text.split())[:400]), markup=False, highlight=False)


def _search_many(service, queries: Path, k: int, filters: SearchFilters, batch: int = 64) -> None:
    """One JSON line per query; queries are embedded in batches (one model call per batch)."""
    from neoc_assistant.errors import InputError

    try:
        lines = queries.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {queries}: {exc.strerror or exc}") from exc
    items: list[tuple[object, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            qid, text = item["id"], item["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{queries}:{number}: expected {{\"id\": ..., \"text\": ...}} ({exc})") from exc
        try:
            items.append((qid, service.validate_question(text)))
        except InputError as exc:
            raise InputError(f"{queries}:{number}: {exc}") from exc
    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        results = service.search_many([text for _, text in part], k=k, filters=filters)
        for (qid, _), hits in zip(part, results):
            typer.echo(
                json.dumps({"id": qid, "hits": [h.to_json(r) for r, h in enumerate(hits, start=1)]}, ensure_ascii=False)
            )


@app.command()
def documents(as_json: bool = typer.Option(False, "--json")) -> None:
    """List ingested documents with chunk counts, dates and versions (current / superseded by)."""
    import datetime as dt

    docs = assistant().documents()
    rows: list[dict[str, Any]] = [
        {
            "sources": list(d.sources),
            "title": d.title,
            "type": d.doc_type,
            "chunks": d.n_chunks,
            "pages": d.n_pages,
            "ingested": dt.datetime.fromtimestamp(d.ingested_at).isoformat(timespec="seconds"),
            "version": d.version,  # current / superseded by ... (ingest/versions.py); "" when no revision is known
        }
        for d in docs
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} documents (kb version {assistant().kb_version()})")
    for col in ("source", "type", "chunks", "ingested", "version"):
        table.add_column(col)
    for row in rows:
        table.add_row(", ".join(shown(s) for s in row["sources"]), row["type"], str(row["chunks"]), row["ingested"],
                      shown(row["version"]))
    console.print(table)


# -- signed update bundles: the national EOC exports, district laptops import (bundles/) ---------------------
kb_app = typer.Typer(no_args_is_help=True, help="Knowledge-base maintenance: re-embedding, signed update bundles "
                     "for offline laptops.")
app.add_typer(kb_app, name="kb")


@kb_app.command("reembed")
def reembed(as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Re-embed every chunk from the manifest with the configured embedding model (no file is re-read)."""
    summary = assistant().repair_store(show_progress=not as_json)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary)
    raise typer.Exit(0 if summary.ok else 1)


@kb_app.command("keygen")
def kb_keygen(private_key: Path = typer.Argument(..., help="Where to write the private key (kept secret, mode 0600); "
                                                  "the public key goes beside it as PRIVATE_KEY.pub.")) -> None:
    """Make the key pair bundles are signed with (once, at the national EOC)."""
    public, ident = assistant().bundle_keygen(private_key)
    console.print(f"private key {shown(str(private_key))} (keep it secret)\npublic key  {shown(str(public))} "
                  f"(key id {ident}): install it on every laptop with `kb trust`")


@kb_app.command("trust")
def kb_trust(public_key: Path = typer.Argument(..., help="A public key made by `kb keygen` (.pub).")) -> None:
    """Accept bundles signed by this key on this machine."""
    where, ident = assistant().trust_key(public_key)
    console.print(f"trusted key {ident} installed as {shown(str(where))}")


@kb_app.command("export")
def kb_export(
    out: Path = typer.Argument(..., help="The bundle file to write (e.g. kb-2026-12-07.neockb)."),
    key: Optional[Path] = typer.Option(None, "--key", help="Private signing key (default: bundles.signing_key)."),
    since: Optional[str] = typer.Option(None, "--since", help="A delta: only what changed since this exported "
                                        "version (or bundle file) the laptops have."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write this knowledge base (or a delta) as one signed file for a USB stick."""
    summary = assistant().export_bundle(out, key=key, since=since)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    kind = f"delta from {summary.base_version}" if summary.base_version else "full"
    console.print(f"[bold]{kind} bundle[/] {shown(summary.path)}: version {summary.kb_version}, "
                  f"{summary.documents} document(s), {summary.chunks} chunk(s), {summary.bytes / 2**20:.1f} MB, "
                  f"signed by key {summary.key_id}")
    console.print(f"[bold]added[/] {len(summary.added)}  [bold]changed[/] {len(summary.changed)}  "
                  f"[bold]removed[/] {len(summary.removed)}")


@kb_app.command("import")
def kb_import(
    bundle: Path = typer.Argument(..., help="A bundle made by `kb export`."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Verify a bundle's signature and model, then apply it all at once (the old knowledge base stays
    intact if anything stops it)."""
    summary = assistant().import_bundle(bundle, show_progress=progress and not as_json)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {shown(note)}")
    for label, sources in (("added", summary.added), ("changed", summary.changed), ("removed", summary.removed)):
        for source in sources:
            console.print(f"[dim]{label}[/] {shown(source)}")
    console.print(f"[bold]added[/] {len(summary.added)}  [bold]changed[/] {len(summary.changed)}  "
                  f"[bold]removed[/] {len(summary.removed)}  [bold]unchanged[/] {summary.unchanged}  "
                  f"[bold]chunks[/] {summary.chunks}  [bold]seconds[/] {summary.seconds:.1f}  "
                  f"[dim]kb version {summary.previous_version} -> {summary.kb_version}, signed by {summary.key_id}[/]")
