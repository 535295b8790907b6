"""Recorded answers as a report: JSON for another program, a printable HTML page for a person.

Why HTML and not PDF: every machine in a centre has a browser that prints a page to
PDF (the page carries print styles: one answer never split, no colours needed),
while a PDF writer would be one more dependency for the laptop install. The page
loads nothing: no script, no font, no image - it is opened offline, maybe years later.
It states whether the trail's hash chain verified when the report was made, and
the head hash, so a printed report can be matched to the trail it came from.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone


def as_json(answers: list[dict], verification: dict, scope: str) -> str:
    return json.dumps({"made": _now(), "scope": scope, "verification": _verdict(verification),
                       "answers": answers}, ensure_ascii=False, indent=2)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _verdict(verification: dict) -> dict:
    return {"ok": verification.get("ok"), "records": verification.get("records"),
            "head": verification.get("head"), "problems": verification.get("problems", [])[:20]}


STYLE = """
body { font: 11pt/1.4 system-ui, sans-serif; margin: 2em; color: #111; }
h1 { font-size: 16pt; margin: 0 0 .2em; } .meta { color: #444; font-size: 9pt; }
.ok { color: #075; } .bad { color: #a00; font-weight: bold; }
article { border-top: 1px solid #999; padding: .6em 0; break-inside: avoid; page-break-inside: avoid; }
.q { font-weight: bold; } .answer { white-space: pre-wrap; margin: .3em 0 .3em 1em; }
table { border-collapse: collapse; font-size: 9pt; margin-left: 1em; } td { padding: 0 .6em 0 0; vertical-align: top; }
@media print { body { margin: 0; } }
"""


def as_html(answers: list[dict], verification: dict, scope: str) -> str:
    e = html.escape
    verdict = verification.get("ok")
    head = verification.get("head") or {}
    chain = (f'<span class="ok">hash chain verified ({verification.get("records")} records)</span>' if verdict else
             f'<span class="bad">hash chain NOT verified: {len(verification.get("problems", []))} problem(s) - '
             f'{e("; ".join(p["why"] for p in verification.get("problems", [])[:3]))}</span>')
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>NEOC Assistant - {e(scope)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>NEOC Assistant - answers given: {e(scope)}</h1>",
             f"<p class='meta'>Report made {e(_now())} · {len(answers)} answer(s) · {chain} · head "
             f"{e(str(head.get('seq', '-')))} {e(str(head.get('hash', ''))[:16])}</p>"]
    for a in answers:
        understood = (f"<div class='meta'>Understood as: {e(a.get('understood_as') or '')}</div>"
                      if a.get("understood_as") else "")
        sources = "".join(
            f"<tr><td>[{e(str(s.get('n')))}]</td><td>{e(str(s.get('source')))}"
            f"{', p. ' + e(str(s['page'])) if s.get('page') not in (None, '') else ''}</td>"
            f"<td>{e(str(s.get('chunk_id')))}</td><td>{e(str(s.get('score')))}</td></tr>"
            for s in a.get("sources") or [] if a.get("mode") != "not-found")
        verification_line = (a.get("verification") or {}).get("status") or "-"
        unsupported = (a.get("verification") or {}).get("unsupported") or []
        removed = (f"<div class='meta'>Removed as not in the documents: {e('; '.join(unsupported))}</div>"
                   if unsupported else "")
        feedback = "".join(f"<div class='meta'>Feedback {e(f['time'] or '')} by {e(str(f.get('who')))}: "
                           f"{'helpful' if f.get('helpful') else 'not helpful'}"
                           f"{' - ' + e(f['comment']) if f.get('comment') else ''}</div>"
                           for f in a.get("feedback") or [])
        parts.append(
            f"<article><div class='meta'>{e(a.get('time', ''))} · {e(str(a.get('who')))} via "
            f"{e(str(a.get('channel')))} · conversation {e(str(a.get('conversation')))} turn {e(str(a.get('turn')))}"
            f" · record {e(str(a.get('seq')))} {e(str(a.get('id')))}</div>"
            f"<div class='q'>Q: {e(a.get('question') or '')}</div>{understood}"
            f"<div class='answer'>{e(a.get('answer') or '')}</div>"
            f"<div class='meta'>mode {e(str(a.get('mode')))}{' (cached)' if a.get('cached') else ''}"
            f"{'' if a.get('complete', True) else ' · stopped part-way'} · verification {e(verification_line)} · "
            f"knowledge base {e(str(a.get('kb_version')))}</div>{removed}"
            f"{'<table>' + sources + '</table>' if sources else ''}{feedback}</article>")
    parts.append("</body></html>")
    return "\n".join(parts)
