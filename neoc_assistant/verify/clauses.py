"""Read a sentence into clauses, each with its figures and the words those figures measure.

"Generator oil is changed every 250 hours and must stay below 55 dB" says two
things: *oil* - every 250 hours, and *oil* - below 55 dB. The second clause has
no subject of its own, so its figure measures the subject of the first. A
binding check that only asks whether both figures are in the passage, or near
each other, cannot see that the passage gives 55 dB for the *noise limit*.
So each figure is attached to the words it measures *in the sentence*, and
``binding.py`` asks whether the passage attaches the same figure to the same
words. The same reader reads the claim and the passage's prose statements.

Plain rules over tokens, not a parser. A sentence is cut at ",", ";", ":" and
at "and"/"or"/"while"/... (never inside a run of figures such as "2.5 to 3
litres", nor before "or more"); a piece with a figure is a clause. A clause's
figures are attached to

- its own words, in two strengths: **names** - the noun phrases outside
  prepositional phrases ("a *danger level* of 6.0 m", "*laundry soap* 200 g") -
  and **details** - words inside them ("the station *on the Bagmati*"), which a
  passage may state a sentence earlier;
- the sentence's **subject** (the words before its first verb or figure) when
  the clause has none of its own: it starts with a verb, a preposition or a
  pronoun ("and *must* stay below 55 dB", "*with* a flow of 17 litres", "and
  *its* staff ..."), or it is a bare noun phrase after an object ("has a warning
  level of 4.0 m and a danger level of 6.0 m"). A noun phrase parallel to one
  in the subject replaces it instead - in "Bathing soap is 250 g and laundry soap
  200 g", 200 g is laundry soap's, not *bathing* soap's - and a clause with its
  own code ("and Tier 3 within 60 minutes") replaces the subject;
- the words before a ":" ("Food basket (15 days for 5 people): rice 30 kg, ...");
- a leading condition ("For an earthquake of magnitude 6.0 or greater, ...") or a
  trailing one ("... before the NEOC goes back to Level 3") is kept apart
  (``scope_*``): a passage states a condition once for several sentences.

Verbs, units and comparisons ("at least", "within") never bind a figure. Word
lists are data: ``language/data/claims.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neoc_assistant.language.words import QUESTION_STOPWORDS
from neoc_assistant.verify.clause_words import (
    COLON, CONDITION_OPENERS, COPULAS, PREFIX_STARTERS, PREPOSITIONS, RELATION_WORDS, SEP, SUBJECTLESS,
    SUBORDINATORS, VERBS, Figure, Tok, cut_pieces, read_tokens, stem, strengths, verb_kind, words_of,
)

__all__ = ["Clause", "Figure", "read_clauses", "stem"]


@dataclass
class Clause:
    text: str  # the clause as a reader takes it: the subject it inherits, then its own words
    figures: list[Figure] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # stems its figures measure: noun phrases (+ subject)
    details: set[str] = field(default_factory=set)  # stems inside its prepositional phrases
    actions: set[str] = field(default_factory=set)  # its verbs ("deploys"): evidence only against a rival
    topic: set[str] = field(default_factory=set)  # the sentence's subject, whoever's clause it is
    topic_figures: list[Figure] = field(default_factory=list)  # its codes ("Level 1 is ..., and staff ...")
    scope_words: set[str] = field(default_factory=set)  # stems of a condition
    scope_figures: list[Figure] = field(default_factory=list)
    subjectless: bool = False  # the sentence names nothing before its first figure ("(at least 15 s ...)")
    wordless: bool = False  # nothing but a figure of its own ("..., ideally 5"): its wording is its subject's

    @property
    def words(self) -> set[str]:
        return self.names | self.details | self.actions


def _subject_end(toks: list[Tok]) -> int:
    """Index of the first verb or measuring figure: what comes before it is the subject."""
    for i, t in enumerate(toks):
        if (i > 0 and verb_kind(toks, i)) or (t.figure is not None and not t.figure.head):
            return i
    return len(toks)


def _has_verb(piece: list[Tok]) -> bool:
    return any(verb_kind(piece, k) for k in range(1, len(piece)))


def _head(piece: list[Tok]) -> str:
    """The noun a noun-phrase clause is about: its last content word before a preposition, a verb
    or a figure ("the distance to the water point" -> distance, "laundry soap 200 g" -> soap)."""
    head = ""
    for k, t in enumerate(piece):
        if t.head or (t.figure is not None and t.figure.head) or t.text in RELATION_WORDS:
            continue
        if t.figure is not None or (k and verb_kind(piece, k)) or (head and (t.text in QUESTION_STOPWORDS
                                                                 or t.text in PREPOSITIONS)):
            break
        if t.stem and t.text not in PREPOSITIONS:
            head = t.stem
    return head


def _without_parallel(subject: list[Tok], head: str) -> list[Tok]:
    """The subject without the noun phrase that ``head`` replaces (its modifiers and code)."""
    at = next((i for i, t in enumerate(subject) if t.stem == head), None)
    if at is None:
        return subject
    start = at
    while start > 0 and subject[start - 1].stem and subject[start - 1].figure is None:
        start -= 1
    end = at + 1
    while end < len(subject) and (subject[end].head or (subject[end].figure and subject[end].figure.head)):  # type: ignore[union-attr]
        end += 1
    return subject[:start] + subject[end:]


def _codes(toks: list[Tok]) -> list[Figure]:
    return [t.figure for t in toks if t.figure is not None and t.figure.head]


def _inherited(piece: list[Tok], subject: list[Tok], has_object: bool) -> list[Tok]:
    """What of the sentence's subject a clause that is not the first one takes as its own."""
    own_heads = {f.head for f in _codes(piece)}
    if own_heads & {f.head for f in _codes(subject)}:
        return []  # "..., and Tier 3 within 60 minutes": a new row of the same kind
    first = piece[0]
    if first.text in SUBORDINATORS:
        return []  # "..., provided water is available for about 8 hours a day": a clause of its own
    if not any(strengths(piece)):
        return subject  # "..., ideally 5": nothing but a figure
    has_verb = _has_verb(piece)
    if first.figure is not None and has_verb:
        return []  # "..., and 60 cm of water can float a car": the figure's noun phrase is the subject
    if first.text in VERBS or first.text in SUBJECTLESS or first.figure is not None or (
            first.text.endswith("ed") and len(first.text) > 4):
        return subject  # "... and must stay below 55 dB", "... and 2 kg of lentils"
    head = _head(piece)
    if head and any(t.stem == head for t in subject):
        return _without_parallel(subject, head)  # "... and laundry soap 200 g"
    if not has_verb and has_object:
        return subject  # "has a warning level of 4.0 m and a danger level of 6.0 m"
    return []


def _split_condition(piece: list[Tok]) -> tuple[list[Tok], list[Tok]]:
    """A clause and its trailing condition ("... for 48 hours *before the NEOC goes to Level 3*")."""
    seen_figure = False
    for i, t in enumerate(piece):
        if t.figure is not None:
            seen_figure = True
        elif seen_figure and t.text in SUBORDINATORS:
            return piece[:i], piece[i:]
    return piece, []


def _text(toks: list[Tok]) -> str:
    return " ".join(t.figure.number if t.figure is not None and t.figure.phone else t.text
                    for t in toks if t.text not in (SEP, COLON))


def _figures(toks: list[Tok]) -> list[Figure]:
    return [t.figure for t in toks if t.figure is not None]


def read_clauses(text: str, conditions: bool = True, passage: bool = False) -> list[Clause]:
    """The sentence's clauses that hold figures, each with the words its figures measure.
    ``conditions=False`` reads a table cell ("When: Every 3 hours"): no leading condition.
    ``passage=True`` reads a passage's statement generously, as the documents' own wording is
    (what a figure measures there is what the binding check is tested against): the pieces
    without figures after a clause are its own ("7.055 MHz (example) *by day*"), and a clause
    that opens with its figure takes the words of the clause before it ("1 facilitator per 20
    children (*1 per 15* for children under 6)")."""
    pieces, ends = cut_pieces(read_tokens(text))
    if not pieces:
        return []
    scope: list[Tok] = []
    if conditions and len(pieces) > 1 and ends[0] == SEP and pieces[0][0].text in PREFIX_STARTERS and (
            pieces[0][0].text in CONDITION_OPENERS or not any(t.text in VERBS for t in pieces[0])):
        # "For an earthquake of magnitude 6.0 or greater, ...", "If the Chief cannot be reached
        # within 30 minutes, the Deputy Chief may authorise Level 2"
        scope, pieces, ends = pieces[0], pieces[1:], ends[1:]
    lead: list[Tok] = []
    if COLON in ends[:-1]:  # "Food basket (15 days for 5 people): rice 30 kg, lentils 3 kg"
        cut = ends.index(COLON) + 1
        lead = [t for p in pieces[:cut] for t in p]
    body = [t for p in pieces for t in p]
    end = _subject_end(body)
    subject = body[:end]
    # the piece where the subject ends (at the first verb or figure) is the one that has it
    subject_piece = next((n for n, p in enumerate(pieces) if end < len(body) and any(t is body[end] for t in p)), 0)
    first_figure = next((i for i, t in enumerate(body) if t.figure is not None and not t.figure.head), end)
    has_object = end < len(body) and body[end].text not in COPULAS and any(strengths(body[end + 1:first_figure]))
    clauses: list[Clause] = []
    predicate_of_figure = False  # "a forest fire within 1 km ... means evacuating it and requesting ..."
    for n, piece in enumerate(pieces):
        if not _figures(piece):
            if clauses:  # a piece without figures continues the clause before it
                clauses[-1].text += ", " + _text(piece)
                if predicate_of_figure or passage:
                    clauses[-1].details |= set().union(*words_of(piece)) - clauses[-1].names
            continue
        verb_at = next((k for k, t in enumerate(piece) if t.text in VERBS and k), len(piece))
        predicate_of_figure = any(t.figure is not None and not t.figure.head for t in piece[:verb_at]) \
            and verb_at < len(piece)
        main, condition = _split_condition(piece)
        ids = {id(t) for t in piece}
        if n <= subject_piece:
            inherited = [t for t in subject if id(t) not in ids]
        else:
            inherited = _inherited(main, subject, has_object)
        names, details, actions = words_of(main)
        inherited_names, inherited_details, inherited_actions = words_of(inherited)
        # the words before a ":" describe the list after it: details of each of its clauses
        inherited_details |= set().union(*words_of([t for t in lead if id(t) not in ids]))
        if passage and clauses and main[0].figure is not None and not any(t.text in VERBS for t in main):
            inherited_names |= clauses[-1].names
        own_heads = {f.head for f in _codes(main)}
        all_names = names | inherited_names
        clauses.append(Clause(
            text=f"{_text([t for t in lead if id(t) not in ids] + inherited)} {_text(piece)}".strip(),
            figures=_figures(main) + [f for f in _codes(inherited) if f.head not in own_heads],
            names=all_names,
            details=(details | inherited_details) - all_names,
            actions=(actions | inherited_actions) - all_names - details - inherited_details,
            topic=strengths(subject)[0],
            topic_figures=_codes(subject),
            scope_words=set().union(*strengths(scope), *strengths(condition)),
            scope_figures=_figures(scope) + _figures(condition),
            subjectless=not clauses and not any(strengths(subject)),
            wordless=not (names or details),
        ))
    if scope and not clauses and _figures(scope):  # "Within the first 15 minutes, the Duty Officer ..."
        whole = scope + body
        names, details, actions = words_of(whole)
        clauses.append(Clause(_text(whole), _figures(whole), names, details, actions,
                              topic=strengths(subject)[0], topic_figures=_codes(subject)))
    elif scope and clauses:
        clauses[0].text = f"{_text(scope)}, {clauses[0].text}"
    return clauses
