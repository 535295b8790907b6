"""Do the claim's figures measure the same things in the passage as in the claim?

The facts check (``facts.py``) only asks whether a figure is *in* the passage.
Small models attach figures to the wrong things: "Level 2 within 4 hours"
(4 hours is Level 1's), "Generator oil is changed every 250 hours and must stay
below 55 dB" (the passage gives 55 dB for the noise limit), "the Khokana station
has a warning level of 4.0 m and a danger level of 6.0 m" (6.0 m is the Babai's).
Every figure is in the passage; each measures something else there.

So the claim is read clause by clause (``clauses.py``): each clause's figures
with the words they measure in the claim - *names* (its noun phrases and the
subject it inherits), *details* (inside prepositional phrases), verbs and
conditions. A clause is bound when one clause of one statement of the passage
holds all its figures (a code stated once for a block of prose may stand
elsewhere in the block) and there

- its names stand **at those figures' site**: in a table row, the row's key
  (first cell, cells without figures) and the figures' own cells - not the
  other figures' cells ("Danger level: 6.0 m" of the Babai row is not
  Khokana's); in a sentence or list item, the figure's clause and what the
  statement shares - not the words of its other figures' clauses ("a hot wash
  ... within 72 hours, and a full after-action review report ... within 30
  days": 30 days is not the hot wash's); always the heading, the list's
  lead-in and the block's topic (a word in half its statements). A name the
  passage never uses says nothing here (``support.py`` judges the wording); one
  used in a few statements only names something in particular, so standing
  elsewhere it is the evidence of a borrowed figure;
- its details, verbs and conditions stand nearby (same table, list or
  paragraph), and no **rival** - another figure of the same quantity ("1 km"
  and "500 m") - has them at its own site ("8 drops ... *if the water is
  cloudy*" is the 16 drops');
- a row is the one the sentence names: a word no other row has, the code of its
  first cell, or the first cell it matches best ("An AWD alert ... 2 years" is
  not the suspected-cholera row).

The claim is bound only if every clause is.

Negation, antonyms and swapped roles are ``polarity.py``'s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from neoc_assistant.language.words import load
from neoc_assistant.verify.clauses import Clause, Figure, read_clauses, stem
from neoc_assistant.language.facts import _same_phone, fact_tokens
from neoc_assistant.verify.sentences import Statement


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
    part: int = 0  # which clause of its statement (a row is one part; -1: the heading, every part)
    excluded: set[str] = field(default_factory=set)  # words of the statement's other figures only


_QUANTITY = dict(load("claims")["quantities"])


def _kind(f: Figure) -> str:
    """What a figure is a figure of: rivals are figures of the same quantity ("1 km" and "500 m")."""
    if f.phone:
        return "phone"
    if f.head:
        return "code:" + f.head
    if f.unit:
        return _QUANTITY.get(f.unit, f.unit)
    return "time" if ":" in f.number else "number"


@dataclass
class _StatementSites:
    sites: list[_Site] = field(default_factory=list)
    shared: set[str] = field(default_factory=set)  # heading, list lead-in, block topic
    stems: set[str] = field(default_factory=set)  # the whole statement, with heading and lead-in
    prose: bool = True

    def find(self, figure: Figure) -> set[str] | None:
        """The stems at the figure's site(s) in this statement, None if it is not here."""
        found = [s.stems for s in self._matching(figure)]
        return set().union(*found) if found else None

    def _matching(self, figure: Figure) -> list[_Site]:
        found = [s for s in self.sites if _same(figure, s.figure)]
        if not found and figure.head and self.prose and figure.head in self.stems:
            # "Activation Level ... 3—Normal Operations": prose that names the code's kind may
            # write the code's number alone (a table row must say "Level: 3")
            found = [s for s in self.sites if s.figure.number == figure.number and not s.figure.unit
                     and not s.figure.head and not s.figure.phone]
        return found

    def together(self, figures: list[Figure]) -> list[list[_Site]] | None:
        """The sites of ``figures`` in this statement, None if it does not hold them all - or, when
        they are a code and measures, if no one clause of it holds them together: "12 hours ...
        during Level 1, and 24 hours at Level 2" does not give Level 1 24 hours."""
        found = [self._matching(f) for f in figures]
        if any(not sites for sites in found):
            return None
        codes = [sites for f, sites in zip(figures, found) if f.head]
        if not codes or len(codes) == len(found):
            return found  # figures that measure may stand in different clauses of one statement
        measures = [sites for f, sites in zip(figures, found) if not f.head]
        parts = set.intersection(*({s.part for s in sites} | ({-1} if any(s.part < 0 for s in sites) else set())
                                   for sites in codes + measures))
        for part in sorted(parts - {-1}) or sorted(parts):
            return [[s for s in sites if s.part in (part, -1)] for sites in found]
        return None


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
    out: list[_Site] = []
    for n, (clauses, stems) in enumerate(read):
        others = set().union(*(st for k, (cls, st) in enumerate(read) if k != n and any(c.figures for c in cls)))
        out.extend(_Site(f, key | stems, 0, others - key - stems) for cl in clauses for f in cl.figures)
    return out


def _prose_sites(text: str) -> list[_Site]:
    """Each figure with the statement's words, less those that only its other clauses hold."""
    clauses = read_clauses(text, passage=True)
    everything = _stems(text)
    out: list[_Site] = []
    for i, cl in enumerate(clauses):
        others = set().union(*(c.words for k, c in enumerate(clauses) if k != i)) if len(clauses) > 1 else set()
        own = everything - (others - cl.words)
        out.extend(_Site(f, own, i, others - cl.words) for f in cl.figures + cl.scope_figures)
    return out


def _row_keys(statements: list[Statement]) -> dict[int, tuple[set[str], list[Figure], tuple[set[str], list[Figure]]]]:
    """Per row: the words no other row of its table has, the codes of its first cell, and that
    cell's words and figures."""
    rows = {i: _row_values(st.text) for i, st in enumerate(statements) if st.kind == "row"}
    stems = {i: _stems(v) for i, v in rows.items()}
    out = {}
    for i, st in enumerate(statements):
        if i not in rows:
            continue
        others = set().union(*(stems[k] for k in rows if k != i and statements[k].block == st.block))
        first = _cells(st.text)[0]
        figures = [f for cl in read_clauses(first, conditions=False) for f in cl.figures]
        out[i] = (stems[i] - others, [f for f in figures if f.head], (_stems(first), figures))
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
        size = Counter(st.block for st in statements)
        self.row_keys = _row_keys(statements)
        # how many statements use a word: one used in a few only names something in particular
        self.count = Counter(w for st in statements
                             for w in _stems(_row_values(st.text) if st.kind == "row" else st.text))
        self.rare = max(2, len(statements) // 4)
        for i, st in enumerate(statements):  # a list's lead-in ("Composition (5 members):") and its list
            if st.text.endswith(":"):
                for k in range(i + 1, len(statements)):
                    if statements[k].lead != st.text:
                        break
                    self.block_stems[st.block] |= _stems(statements[k].text)
        for i, st in enumerate(statements):
            # the block's topic: a word in half its statements (the *toilets* of a sanitation table)
            topic = {w for w, n in topic_count[st.block].items() if n >= max(2, (size[st.block] + 1) // 2)}
            sites = _row_sites(st.text) if st.kind == "row" else _prose_sites(st.text)
            if st.kind != "row" and i and _opens_without_subject(st.text):
                # "(at least 15 to 20 seconds of vigorous rubbing ...)": a wrapped line whose
                # subject is the statement before it ("Hand washing should be thorough")
                before = _stems(statements[i - 1].text)
                sites = [_Site(x.figure, x.stems | before, x.part, x.excluded - before) for x in sites]
            sites += [_Site(f, _stems(st.text), -1) for cl in read_clauses(st.heading) for f in cl.figures]
            if st.kind == "sentence":  # "Stage 2: Loss of 15%-30% of blood volume. Patient's body ...":
                # the sentences after a figure, until the next one with a figure, go on about it
                # (list items do not: each is a point of its own)
                after = set()
                for nxt in statements[i + 1:]:
                    if nxt.block != st.block or nxt.kind != "sentence" or read_clauses(nxt.text):
                        break
                    after |= _stems(nxt.text)
                sites = [_Site(x.figure, x.stems | after, x.part, x.excluded - after) for x in sites]
            self.by_statement.append(_StatementSites(sites, _stems(st.heading + " " + st.lead) | topic,
                                                     _stems(st.with_context + " " + st.lead), st.kind != "row"))

    def in_block(self, figure: Figure, i: int) -> bool:
        block = self.statements[i].block
        return any(self.by_statement[k].find(figure) is not None
                   for k, st in enumerate(self.statements) if st.block == block)

    def in_prose(self, figure: Figure) -> bool:
        return any(st.kind != "row" and self.by_statement[k].find(figure) is not None
                   for k, st in enumerate(self.statements))

    def holds(self, figure: Figure) -> bool:
        return any(s.find(figure) is not None for s in self.by_statement)

    def rival_has(self, word: str, figures: list[Figure]) -> bool:
        """Is ``word`` at the site of another figure of the same kind ("cloudy" at 16 drops, for 8)?"""
        kinds = {_kind(f) for f in figures}
        return any(word in site.stems for sts in self.by_statement for site in sts.sites
                   if site.part >= 0 and _kind(site.figure) in kinds  # a heading's number is no rival
                   and not any(_same(f, site.figure) for f in figures))

    def foreign(self, clause: Clause, i: int, sites: list[list[_Site]]) -> list[str]:
        """The clause's words that the passage uses, but not where statement ``i`` has its figures.

        Names must stand at the figures' site (a name common in the passage may stand elsewhere, if
        not at another figure of the same statement). Details, conditions and verbs may stand nearby (in
        the statement's table, list or paragraph; verbs anywhere) - unless a rival figure of the
        same kind has them at its own site: "in a cold climate" is the 4.5 m2 row's, not 3.5 m2's."""
        here, row = self.by_statement[i], self.statements[i].kind == "row"
        at = set().union(*(x.stems for group in sites for x in group)) | here.shared
        excluded = set().union(*(x.excluded for group in sites for x in group)) - at
        near = here.stems | here.shared | self.block_stems[self.statements[i].block]
        # a name the statement gives another of its figures, or that names something in particular
        # elsewhere in the passage (used in a few statements only), is not this figure's
        used = [w for w in sorted(clause.names) if w in self.all_stems and w not in at
                and (w in excluded or self.count[w] <= self.rare)]
        weak = [w for w in sorted(clause.details) if w in self.all_stems and w not in at]
        weak_scope = [w for w in sorted(clause.scope_words) if w in self.all_stems and w not in at]
        out = used + [w for w in weak if w not in near or self.rival_has(w, clause.figures)]
        out += [w for w in weak_scope if self.rival_has(w, clause.figures)]
        out += [w for w in sorted(clause.actions) if w not in at and self.rival_has(w, clause.figures)]
        if row and not self._identifies(clause, i):
            out.append("the row's " + "/".join(sorted(self.row_keys[i][0])[:2] or
                                              [f.label for f in self.row_keys[i][1]]))
        return out + [f.label for f in clause.scope_figures if self.holds(f) and not self.in_block(f, i)]

    def _identifies(self, clause: Clause, i: int) -> bool:
        """Does the sentence name the row its clause is bound to - a word no other row of the table
        has, or the code of its first cell? "An AWD alert ... 2 years" is not the suspected-cholera
        row; "Level 1 is authorised by ..., and staff must be in place within 4 hours" is Level 1's."""
        words, codes, first = self.row_keys[i]
        mine = clause.words | clause.scope_words | clause.topic
        figures = clause.figures + clause.scope_figures + clause.topic_figures
        if words & mine or any(_same(f, k) for f in figures for k in codes + first[1]):
            return True
        # else the row whose first cell the sentence names best ("Landslide Warning", not "Severe
        # Landslide Warning")
        block = self.statements[i].block

        def match(k: int) -> float:
            cell = self.row_keys[k][2][0]
            return len(cell & mine) / len(cell) if cell else 0.0

        rivals = [k for k, st in enumerate(self.statements) if st.kind == "row" and st.block == block and k != i]
        return match(i) > 0 and all(match(i) >= match(k) for k in rivals) or not words and not codes \
            and all(match(k) == 0 for k in rivals)


def misbound(clauses: list[Clause], figures: PassageFigures, allowed: set[str] | frozenset[str] = frozenset()) -> str:
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
            present = wanted
            if st.kind != "row":  # a code ("Level 2") may be stated once for a block of prose
                present = [f for f in wanted if here.find(f) is not None or not (f.head and figures.in_block(f, i))]
            sites = here.together(present) if present else None
            if not sites:
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
