"""Do the claim's figures measure the same things in the passage as in the claim?

The facts check (``facts.py``) only asks whether a figure is *in* the passage.
Small models attach figures to the wrong things: "Level 2 within 4 hours"
(4 hours is Level 1's), "Generator oil is changed every 250 hours and must stay
below 55 dB" (the passage gives 55 dB for the noise limit), "the Khokana station
has a warning level of 4.0 m and a danger level of 6.0 m" (6.0 m is the Babai's).
Every figure is in the passage; each measures something else there.

So the claim is read clause by clause (``clauses.py``): each clause's figures
with the words they measure in the claim, its own and the subject it inherits.
A clause is bound when one statement of the passage holds all its figures and
the words they measure stand **at those figures' site** there:

- in a table row, the row's key (its first cell and the cells without
  figures) and the cells that hold the figures - not the other figures'
  cells: "Danger level: 6.0 m" of the Babai row is not Khokana's;
- in a sentence or list item, the statement read into clauses the same way:
  the figure's clause and what the statement shares (its subject, its words
  without figures) - not the words of its other figures' clauses: in "a hot
  wash is held within 72 hours, and a full after-action review report is
  completed within 30 days", 30 days is not the hot wash's;
- always: the statement's heading, the sentence that introduces its list or
  table, and the block's topic (a word in two or more of its statements: the
  *toilets* of a sanitation table whose rows each name one toilet rule).

A word of the claim that the passage never uses says nothing about binding
(the wording checks in ``support.py`` judge it); a word the passage uses
elsewhere but not at the figure's site is the evidence of a figure borrowed
from something else. A leading condition ("For an earthquake of magnitude 6.0
or greater, ...") and a code ("Level 2") may stand anywhere in the statement's
block in prose (a passage states them once for several sentences), but a
table row must hold its own codes. The claim is bound only if every clause is.

Negation, antonyms and swapped roles (``conflicting_polarity``): a claim that
negates what its best-matching statement says, uses a word's opposite
("closed" for "open", "formal" for "informal"), or swaps who does what
("prepared by A and given to B" for "prepared by B and given to A" - the
cache guard's relation check) is not supported by it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from neoc_assistant.reading.guard import Guard, relation_swap
from neoc_assistant.language.normalize import light_stem, tokenize
from neoc_assistant.language.words import NEGATORS, QUESTION_STOPWORDS, is_antonym
from neoc_assistant.verify.clauses import Clause, Figure, read_clauses, stem
from neoc_assistant.verify.facts import _same_phone, fact_tokens
from neoc_assistant.verify.sentences import Statement

_RELATIONS = Guard()  # only its reading of "by X" / "to Y" objects is used: no KB vocabulary needed


def _stems(text: str) -> set[str]:
    return {s for t in fact_tokens(text) if (s := stem(t))}


def _same(claim: Figure, passage: Figure) -> bool:
    if claim.phone or passage.phone:
        return claim.phone and passage.phone and _same_phone(claim.number, passage.number)
    if claim.number != passage.number:
        return False
    if claim.head or passage.head:  # "Level 2" is "Level 2" (a table's "Level: 2" reads so too), not "two"
        return claim.head == passage.head
    if claim.unit:
        return passage.unit == claim.unit or (passage.unit is None and not passage.head)
    return True


@dataclass
class _Site:
    figure: Figure
    stems: set[str]


@dataclass
class _StatementSites:
    sites: list[_Site] = field(default_factory=list)
    shared: set[str] = field(default_factory=set)  # heading, list lead-in, block topic
    stems: set[str] = field(default_factory=set)  # the whole statement, with heading and lead-in

    def find(self, figure: Figure) -> set[str] | None:
        """The stems at the figure's site(s) in this statement, None if it is not here."""
        found = [s.stems for s in self.sites if _same(figure, s.figure)]
        return set().union(*found) if found else None


def _cells(text: str) -> list[str]:
    """A row rendered "Name: value; Name: value" (or "a: b" without a header), cell by cell."""
    return [c.replace(": ", " ", 1) for c in text.split("; ")] if "; " in text else text.split(": ")


def _row_sites(text: str) -> list[_Site]:
    """The row's key (its first cell and the cells without figures) and each figure's own cell."""
    read = [(read_clauses(c, conditions=False), _stems(c)) for c in _cells(text)]
    key = set(read[0][1]) if read else set()
    for clauses, stems in read[1:]:
        if not any(cl.figures for cl in clauses):
            key |= stems
    return [_Site(f, key | stems) for clauses, stems in read for cl in clauses for f in cl.figures]


def _prose_sites(text: str) -> list[_Site]:
    """Each figure with the statement's words, less those that only its other clauses measure."""
    clauses = read_clauses(text)
    everything = _stems(text)
    out = []
    for i, cl in enumerate(clauses):
        others = set().union(*(c.names for k, c in enumerate(clauses) if k != i)) if len(clauses) > 1 else set()
        own = everything - (others - cl.names)
        out.extend(_Site(f, own) for f in cl.figures + cl.scope_figures)
    return out


def _opens_without_subject(text: str) -> bool:
    clauses = read_clauses(text)
    return bool(clauses) and clauses[0].subjectless


def _row_values(text: str) -> str:
    """A row's values without its column names (which every row repeats)."""
    return " ".join(c.split(": ", 1)[-1] for c in text.split("; "))


class PassageFigures:
    """Where each figure of a passage stands and what it measures there (built once per passage)."""

    def __init__(self, statements: list[Statement]):
        self.statements = statements
        self.by_statement: list[_StatementSites] = []
        topic_count: dict[int, Counter] = {}
        self.block_stems: dict[int, set[str]] = {}
        for st in statements:
            values = _row_values(st.text) if st.kind == "row" else st.text
            topic_count.setdefault(st.block, Counter()).update(_stems(values))
            self.block_stems.setdefault(st.block, set()).update(_stems(st.with_context + " " + st.lead))
        self.all_stems: set[str] = set().union(*self.block_stems.values()) if statements else set()
        for i, st in enumerate(statements):
            topic = {w for w, n in topic_count[st.block].items() if n >= 2}
            sites = _row_sites(st.text) if st.kind == "row" else _prose_sites(st.text)
            if st.kind != "row" and i and _opens_without_subject(st.text):
                # "(at least 15 to 20 seconds of vigorous rubbing ...)": a wrapped line whose
                # subject is the statement before it ("Hand washing should be thorough")
                before = _stems(statements[i - 1].text)
                sites = [_Site(x.figure, x.stems | before) for x in sites]
            sites += [_Site(f, _stems(st.text)) for cl in read_clauses(st.heading) for f in cl.figures]
            self.by_statement.append(_StatementSites(sites, _stems(st.heading + " " + st.lead) | topic,
                                                     _stems(st.with_context + " " + st.lead)))

    def in_block(self, figure: Figure, i: int) -> bool:
        block = self.statements[i].block
        return any(self.by_statement[k].find(figure) is not None
                   for k, st in enumerate(self.statements) if st.block == block)

    def in_prose(self, figure: Figure) -> bool:
        return any(st.kind != "row" and self.by_statement[k].find(figure) is not None
                   for k, st in enumerate(self.statements))

    def holds(self, figure: Figure) -> bool:
        return any(s.find(figure) is not None for s in self.by_statement)

    def foreign(self, clause: Clause, i: int, sites: list[set[str]]) -> list[str]:
        """The clause's words that the passage uses, but not where statement ``i`` has its figures."""
        here, row = self.by_statement[i], self.statements[i].kind == "row"
        at = set().union(*sites) | here.shared
        near = here.stems | here.shared | (set() if row else self.block_stems[self.statements[i].block])
        out = sorted(w for w in clause.names if w in self.all_stems and w not in at)
        out += sorted(w for w in clause.details if w in self.all_stems and w not in at | near)
        if row:  # a prose passage states a condition once for many sentences; a row holds its own
            out += sorted(w for w in clause.scope_words if w in self.all_stems and w not in near)
        return out + [f.label for f in clause.scope_figures if self.holds(f) and not self.in_block(f, i)]


def misbound(clauses: list[Clause], figures: PassageFigures, allowed: set[str] = frozenset()) -> str:
    """Why a clause's figures are not the passage's figures for the same things ("" if all bound)."""
    for clause in clauses:
        wanted = [f for f in clause.figures if f.number not in allowed or figures.holds(f)]
        if not wanted:
            continue
        codes_only = all(f.head for f in wanted)
        best: tuple[int, str] | None = None
        bound = False
        for i, st in enumerate(figures.statements):
            here = figures.by_statement[i]
            sites = [here.find(f) for f in wanted]
            if st.kind != "row":  # a code ("Level 2") may be stated once for a block of prose
                sites = [s for s, f in zip(sites, wanted) if s is not None or not (f.head and figures.in_block(f, i))]
            if not sites or any(s is None for s in sites):
                continue
            foreign = figures.foreign(clause, i, sites)
            if not foreign:
                bound = True
                break
            if best is None or len(foreign) < best[0]:
                best = (len(foreign), ", ".join(foreign[:3]))
        if bound or (codes_only and all(figures.in_prose(f) for f in wanted)):
            continue  # a code the prose names: it names the topic, the wording checks judge the rest
        labels = ", ".join(f.label for f in wanted)
        if best is None:
            return f"figures {labels} are not stated together" if len(wanted) > 1 else \
                f"'{labels}' is not in the passage"
        return f"'{labels}' belongs to something else in the passage (not: {best[1]})"
    return ""


# "no more than 30 minutes" is a limit, not a negation
_COMPARATIVE = re.compile(r"\b(?:no|not)\s+(?:more|less|later|earlier|fewer|longer|greater|higher|lower)\s+than\b",
                          re.IGNORECASE)


def _negated(tokens: list[str]) -> tuple[set[str], set[str]]:
    """(stems under a negator - the two content words after it -, all content stems)."""
    negated: set[str] = set()
    stems: set[str] = set()
    pending = 0
    for t in tokens:
        if t in NEGATORS:
            pending = 2
            continue
        if t.isalpha() and t not in QUESTION_STOPWORDS:
            stem = light_stem(t)
            stems.add(stem)
            if pending:
                negated.add(stem)
                pending -= 1
    return negated, stems


def conflicting_polarity(claim: str, statement: str) -> str:
    """'negation' or 'antonym: x/y' when the claim says the opposite of the statement, else ''.

    A negation conflicts only where it bears on shared words: "do not use the lift" vs "use
    the lift" conflicts; a "no" elsewhere in the statement ("no resistance") does not.
    """
    c_tokens, s_tokens = tokenize(_COMPARATIVE.sub(" ", claim)), tokenize(_COMPARATIVE.sub(" ", statement))
    c_neg, c_all = _negated(c_tokens)
    s_neg, s_all = _negated(s_tokens)
    if (c_neg & (s_all - s_neg)) or (s_neg & (c_all - c_neg)):
        return "negation"
    for x in c_all - s_all:
        for y in s_all - c_all:
            if is_antonym(x, y):
                return f"antonym: {x}/{y}"
    swap = relation_swap(_RELATIONS.features(claim), _RELATIONS.features(statement))
    if swap:
        return f"roles swapped: {swap}"
    return ""
