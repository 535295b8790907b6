"""`audit verify|export` (the trail of answers given) and `apikey new` (a key for the OpenAI-compatible API).

``audit verify`` exits 1 when the hash chain does not verify, naming each file and line that
breaks it, so it can run from cron and alert.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from neoc_assistant.cli.root import app
from neoc_assistant.cli.common import assistant
from neoc_assistant.errors import InputError

audit_app = typer.Typer(help="The audit trail: every answer given, hash-chained (verify, export).",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")
apikey_app = typer.Typer(help="Keys for the OpenAI-compatible API (/v1).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _when(value: Optional[str]) -> Optional[float]:
    """A date or time (``2026-03-01``, ``2026-03-01T14:00``; UTC unless it says otherwise) as a timestamp."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{value[:40]!r} is not a date or time: write e.g. 2026-03-01 or 2026-03-01T14:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@audit_app.command("verify")
def verify(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Recompute the hash chain; exit 1 if a record was edited, removed, inserted or reordered."""
    result = assistant().audit_verify()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif result.get("disabled"):
        typer.echo("The audit trail is off (audit.enabled = false).")
    else:
        head = result.get("head") or {}
        verdict = "verified" if result["ok"] else "NOT VERIFIED"
        typer.echo(f"audit trail {verdict}: {result['records']} records in {len(result['files'])} file(s); "
                   f"head {head.get('seq', '-')} {head.get('hash', '-')}")
        for problem in result["problems"]:
            typer.echo(f"  {problem['file']}:{problem['line']}: {problem['why']}")
    raise typer.Exit(0 if result["ok"] else 1)


@audit_app.command("export")
def export(
    conversation: Optional[str] = typer.Option(None, "--conversation", help="One conversation's id."),
    since: Optional[str] = typer.Option(None, "--since", help="From this date/time (UTC), e.g. 2026-03-01."),
    until: Optional[str] = typer.Option(None, "--until", help="Before this date/time (UTC)."),
    who: Optional[str] = typer.Option(None, "--who", help="One caller, e.g. key:openwebui or user:duty."),
    fmt: str = typer.Option("json", "--format", help="json, or html (a printable page: print it to PDF)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here instead of standard output."),
) -> None:
    """Answers given - one conversation or a time range - with their sources, verification and feedback."""
    from neoc_assistant.audit import report

    if fmt not in ("json", "html"):
        raise InputError(f"--format {fmt[:20]!r}: use json or html")
    service = assistant()
    answers = service.audit_answers(conversation=conversation, since=_when(since), until=_when(until), who=who)
    scope = " ".join(part for part in (f"conversation {conversation}" if conversation else "",
                                       f"since {since}" if since else "", f"until {until}" if until else "",
                                       f"by {who}" if who else "") if part) or "all"
    text = (report.as_html if fmt == "html" else report.as_json)(answers, service.audit_verify(), scope)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(answers)} answer(s) written to {output}", err=True)


@apikey_app.command("new")
def new(name: str = typer.Argument(..., help="What the audit trail calls this client, e.g. openwebui.")) -> None:
    """Make a key: the key is printed once (give it to the client); the server keeps only its hash."""
    from neoc_assistant.serve.api_keys import ApiKeys, new_key

    key, hashed = new_key()
    ApiKeys({name: hashed})  # the name is checked as the server will check it
    typer.echo(f"key (give it to the client; it is not stored anywhere): {key}")
    typer.echo("add to neoc.toml:")
    typer.echo(f'  [serve.api_keys]\n  {name} = "{hashed}"')
    typer.echo(f"or in the environment: NEOC_SERVE__API_KEYS='{json.dumps({name: hashed})}'")
