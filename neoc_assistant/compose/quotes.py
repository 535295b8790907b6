"""The composed answer as the officer reads it: the documents' own words, with their context, cited.

::

    Quoted from the documents:
    Sanitation:
    - “Indicator: Communal toilets, early emergency phase; Minimum: 1 toilet per 50 people” [1]
    - “Indicator: Ratio in public places, markets and shelters; Minimum: 3 female toilets to 1 male toilet” [1]
    Content of an evacuation order:
    “Every order, whether read on the radio, sent by SMS or given door to door, states:” [2]
    1. “Who must evacuate (wards, settlements, streets).” [2]

A heading line (the section the extract comes from) is shown once per extract; a list's lead-in
sentence before its items; a numbered item keeps its step number; a table row keeps its column
names (``verify/sentences.py``). Every quoted line is cited, so each can be checked on its own.
"""

from __future__ import annotations

from neoc_assistant.compose.extracts import Extract
from neoc_assistant.verify.support import PassageView

QUOTE_LABEL = "Quoted from the documents:"


def _quote(text: str) -> str:
    return f"\u201c{text.strip()}\u201d"


def render_extracts(extracts: list[Extract], views: list[PassageView], number_of: dict[int, int]) -> str:
    """``number_of``: passage index -> the [n] its source is listed under."""
    lines = [QUOTE_LABEL]
    last_heading = None
    shown: set[str] = set()  # overlapping chunks repeat lines: each is shown once
    for extract in extracts:
        view = views[extract.passage]
        n = number_of[extract.passage]
        first = view.statements[extract.statements[0]]
        if first.heading and first.heading != last_heading:
            lines.append(f"{first.heading}:")
            last_heading = first.heading
        for i in extract.statements:
            st = view.statements[i]
            if st.lead and st.lead not in shown and st.lead not in (view.statements[j].text for j in extract.statements):
                lines.append(f"{_quote(st.lead)} [{n}]")
                shown.add(st.lead)
            if st.text in shown:
                continue
            shown.add(st.text)
            marker = st.marker if st.marker else "-"
            lines.append(f"{marker} {_quote(st.text)} [{n}]")
    return "\n".join(lines)


def quoted_statements(extracts: list[Extract], views: list[PassageView]) -> dict[int, list[str]]:
    """Per passage index, the statement texts shown (the source view highlights them)."""
    out: dict[int, list[str]] = {}
    for e in extracts:
        view = views[e.passage]
        out.setdefault(e.passage, []).extend(view.statements[i].text for i in e.statements)
    return out


def extract_text(extract: Extract, view: PassageView, heading: bool = True) -> str:
    """One extract as a model reads it: its heading line, the list's lead-in, then one statement per
    line ("- " or its step number)."""
    first = view.statements[extract.statements[0]]
    lines = [f"{first.heading}:"] if heading and first.heading else []
    if first.lead:
        lines.append(first.lead)
    lines += [f"{view.statements[i].marker or '-'} {view.statements[i].text}" for i in extract.statements]
    return "\n".join(lines)
