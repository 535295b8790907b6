"""Two current documents giving different figures for the same thing: both are shown, with a notice.

An officer told "15 litres per person per day" while another current plan says 20 acts on the one
figure shown. So after an answer is written, each figure it shows is compared with the figures of
the other passages read for the question, from *other* documents (superseded revisions are not
among them: ``versions.py``). Two figures are of the same thing - the narrowest reading that is
reliable - when all of these hold:

- the same unit (``15 litres`` and ``20 l``: ``language/facts.py`` units);
- the same rate written after it (``per person per day``, compared word for word);
- the same words measured by the figure and the same details around it, as the clause reader reads
  them (``verify/clauses.py``: *water ration* - *day*), from the statement without its heading,
  or with it when the statement alone names nothing;
- different numbers (a range shares a number with a figure inside it: no conflict).

What it misses, by design: a paraphrase ("water ration" vs "daily water allowance"), a figure
without a unit ("1 toilet per 50 people" vs "per 20 people" is caught only through the rate's
unit-less count, which is not compared), figures in passages the question did not retrieve, and
conflicts inside one document. What is flagged is shown, never removed: which figure applies is the
officer's call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neoc_assistant.answer import Answer
from neoc_assistant.answering.sources import source_dict
from neoc_assistant.language.texts import answer_text, question_language
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.verify.clauses import read_clauses
from neoc_assistant.verify.sentences import split_passage

CONFLICT_NOTICE = answer_text("conflict")  # in English; a Nepali question gets answer_text("conflict", "ne")
_RATE = re.compile(r"^\s*(?:(?:per|a|an|each|every)\s+[^\W\d_]+\s*)+", re.IGNORECASE)
_UNIT_WORD = re.compile(r"\d(?:[\d.,]*)\s*([^\W\d_]+)")

Key = tuple[str, tuple[str, ...], frozenset[str], frozenset[str]]


@dataclass(frozen=True)
class Figure:
    key: Key  # unit, rate words, names, details
    number: str
    statement: str  # as quoted
    label: str  # "20 litres per person per day"


@dataclass(frozen=True)
class Conflict:
    shown: Figure
    shown_source: str
    other: Figure
    other_source: str
    other_n: int


def figures_of(text: str, context: str = "") -> list[Figure]:
    """The unit figures of one statement with what they measure (``context``: its heading-prefixed form)."""
    out: list[Figure] = []
    own = read_clauses(text)
    for clause in own if any(c.names for c in own) or not context else read_clauses(context):
        for f in clause.figures:
            if not f.unit or f.head or f.phone:
                continue
            rate = _rate_after(clause.text, f.number)
            key = (f.unit, rate, frozenset(clause.names), frozenset(clause.details))
            out.append(Figure(key, f.number, text, f"{f.number} {f.unit[2:]}" + (" " + " ".join(rate) if rate else "")))
    return out


def _rate_after(text: str, number: str) -> tuple[str, ...]:
    """``per person per day`` as words, after the first ``number <unit>`` of the clause."""
    at = text.find(number)
    if at < 0:
        return ()
    m = _UNIT_WORD.match(text, at)
    if not m:
        return ()
    rate = _RATE.match(text, m.end())
    return tuple(w.lower() for w in rate.group(0).split()) if rate else ()


def _statements(hit_text: str) -> list[tuple[str, str]]:
    return [(st.text, st.with_context) for st in split_passage(hit_text)]


def find_conflicts(answer: Answer, passages: list[Hit]) -> list[Conflict]:
    """Figures the answer shows that another document among ``passages`` gives differently."""
    doc_of = {h.chunk_id: h.doc_hash for h in passages}
    shown: list[tuple[Figure, str, str]] = []  # figure, its document, its source name
    for source in answer.sources:
        contexts = dict(_statements(source.get("text", "")))
        for text in _shown_statements(answer, source):
            for figure in figures_of(text, contexts.get(text, "")):
                shown.append((figure, doc_of.get(source.get("chunk_id", ""), source.get("source", "")), source["source"]))
    if not shown:
        return []
    shown_numbers: dict[tuple[Key, str], set[str]] = {}
    for figure, doc, _ in shown:
        shown_numbers.setdefault((figure.key, doc), set()).add(figure.number)
    numbered = {s.get("chunk_id"): s["n"] for s in answer.sources}
    conflicts: list[Conflict] = []
    taken: set[tuple[Key, frozenset[str]]] = set()  # a pair of documents is reported once per thing
    for hit in passages:
        for text, context in _statements(hit.text):
            theirs: dict[Key, list[Figure]] = {}
            for other in figures_of(text, context):
                theirs.setdefault(other.key, []).append(other)
            for figure, doc, name in shown:
                others = theirs.get(figure.key)
                if not others or doc == hit.doc_hash or (figure.key, frozenset((doc, hit.doc_hash))) in taken:
                    continue
                if shown_numbers[(figure.key, doc)] & {o.number for o in others}:
                    continue  # a range and a figure inside it, or the same figure: no conflict
                taken.add((figure.key, frozenset((doc, hit.doc_hash))))
                conflicts.append(Conflict(figure, name, others[0], hit.source, numbered.get(hit.chunk_id, 0)))
    return conflicts


def _shown_statements(answer: Answer, source: dict) -> list[str]:
    if source.get("quoted"):
        return list(source["quoted"])
    claims = (answer.verification or {}).get("claims", [])
    return [c["text"] for c in claims if c.get("supported") and source.get("n") in (c.get("sources") or [])]


def add_conflicts(answer: Answer, conflicts: list[Conflict], passages: list[Hit]) -> str:
    """Add the other documents' statements to the answer's sources and its notice; the block of text
    that shows both figures ("" when there is no conflict); the fixed words in the question's language."""
    if not conflicts:
        return ""
    lang = question_language(answer.question)
    by_chunk = {h.chunk_id: h for h in passages}
    lines = [answer_text("conflict_lead", lang)]
    for c in conflicts:
        n = c.other_n
        if not n:
            hit = next(h for h in passages if h.source == c.other_source and c.other.statement in h.text)
            n = len(answer.sources) + 1
            answer.sources.append(source_dict(by_chunk.get(hit.chunk_id, hit), n, [c.other.statement]))
        shown_n = next((s["n"] for s in answer.sources if s["source"] == c.shown_source), 0)
        lines.append(f"- {c.shown_source}: \u201c{c.shown.statement}\u201d [{shown_n}]")
        lines.append(f"- {c.other_source}: \u201c{c.other.statement}\u201d [{n}]")
    answer.notice = f"{answer_text('conflict', lang)} {answer.notice}".strip()
    return "\n".join(lines)
