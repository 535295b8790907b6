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

import re
from dataclasses import dataclass, field

from neoc_assistant.language.normalize import is_number, light_stem
from neoc_assistant.language.words import CODE_HEADS, QUESTION_STOPWORDS, SYNONYMS, load
from neoc_assistant.verify.citations import strip_citations
from neoc_assistant.verify.facts import _PHONE, _phone_digits, fact_tokens, unit_of

_lists = load("claims")["clauses"]
CONJUNCTIONS = frozenset(_lists["conjunctions"])
OR_COMPARATIVES = frozenset(_lists["or_comparatives"])
LIGHT_VERBS = frozenset(_lists["light_verbs"])
VERBS = LIGHT_VERBS | frozenset(_lists["content_verbs"])
COPULAS = frozenset(_lists["copulas"])
SUBJECTLESS = frozenset(_lists["subjectless_starters"])
PREFIX_STARTERS = frozenset(_lists["prefix_starters"])
SUBORDINATORS = frozenset(_lists["subordinators"])
PREPOSITIONS = frozenset(_lists["prepositions"])
RELATION_WORDS = frozenset(_lists["relation_words"])

# "08:00" keeps its colon, "200,000" its comma
_SEPARATORS = re.compile(r"\s*(?:;|(?<!\d),|,(?!\d{3})|[()\[\]]|:(?!\d)|\s[-\u2013\u2014]\s)\s*")
_JOINERS = {"to", "and", "or", "-", "x"}
_CODE = re.compile(r"^\d+[a-z]$")
_CODE_HEADS = CODE_HEADS | {"ics", "ch"}
_HEAD_NAMES = {"channel": "ch"}
SEP, COLON = "|", "|:"


def stem(token: str) -> str:
    """The canonical content word a token stands for ("" for function words and figures)."""
    if not token.isalpha() or len(token) < 2 or token in QUESTION_STOPWORDS:
        return ""
    s = light_stem(token)
    return SYNONYMS.get(s, s)


@dataclass(frozen=True)
class Figure:
    """A number with its unit (None for a bare number), a code ("level 2") or a phone number."""

    number: str
    unit: str | None = None
    head: str = ""  # for codes: the word that makes it a code ("level", "tier", "ics")
    phone: bool = False

    @property
    def label(self) -> str:
        if self.phone or not (self.head or self.unit):
            return self.number
        return f"{self.head} {self.number}" if self.head else f"{self.number} {self.unit[2:]}"


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


@dataclass
class _Tok:
    text: str
    stem: str = ""
    figure: Figure | None = None
    unit: bool = False  # the unit of the figure before it
    in_run: bool = False  # a joiner inside a run of figures ("2.5 *to* 3 litres")
    head: bool = False  # the word that makes the next number a code


def _tokens(text: str) -> list[_Tok]:
    """Tokens with separators kept (SEP, COLON) and figures recognised as ``facts.py`` reads them."""
    phones: dict[str, str] = {}

    def hide(m: re.Match) -> str:
        digits = _phone_digits(m.group(0))
        if not digits:
            return m.group(0)
        key = "phonezz" + "".join(chr(ord("a") + int(d)) for d in str(len(phones)))
        phones[key] = digits
        return f" {key} "

    text = _PHONE.sub(hide, strip_citations(text or ""))
    toks: list[_Tok] = []
    last = 0
    for m in list(_SEPARATORS.finditer(text)) + [None]:
        piece = text[last:m.start()] if m else text[last:]
        toks.extend(_Tok(t, stem(t)) for t in fact_tokens(piece))
        if m:
            toks.append(_Tok(COLON if ":" in m.group(0) else SEP))
            last = m.end()
    i = 0
    while i < len(toks):
        t = toks[i].text
        if t in phones:
            toks[i] = _Tok(t, "", Figure(phones[t], phone=True))
        elif _CODE.match(t):  # "ICS 215A"
            head = toks[i - 1].text if i and toks[i - 1].text in _CODE_HEADS else ""
            if head:
                toks[i - 1].head, toks[i - 1].stem = True, ""
            toks[i].figure, toks[i].stem = Figure(t, None, _HEAD_NAMES.get(head, head)), ""
        elif is_number(t):
            i = _read_figure(toks, i)
            continue
        i += 1
    return toks


def _read_figure(toks: list[_Tok], i: int) -> int:
    """Mark the figure (or run of figures sharing a unit) starting at ``i``; return the next index."""
    followed_by_unit = i + 1 < len(toks) and unit_of(toks[i + 1].text, True) is not None
    if i and toks[i - 1].text in _CODE_HEADS and not followed_by_unit:
        toks[i - 1].head, toks[i - 1].stem = True, ""  # "Level 1 and 24 hours": 1 is a code, not a run
        toks[i].figure = Figure(toks[i].text, None, _HEAD_NAMES.get(toks[i - 1].text, toks[i - 1].text))
        return i + 1
    run, j = [i], i + 1
    while j + 1 < len(toks) and toks[j].text in _JOINERS and is_number(toks[j + 1].text):
        toks[j].in_run = True
        run.append(j + 1)
        j += 2
    unit = unit_of(toks[j].text, True) if j < len(toks) else None
    if unit is None and j + 1 < len(toks) and toks[j].text in ("square", "sq"):
        unit, toks[j].unit = "u:m2", True
        j += 1
    elif unit == "u:m" and j + 1 < len(toks) and toks[j + 1].text == "2":  # "3.5 m2"
        unit, toks[j].unit, toks[j].stem = "u:m2", True, ""
        j += 1
    if unit:
        toks[j].unit, toks[j].stem = True, ""
    for k in run:
        toks[k].figure = Figure(toks[k].text, unit)
    return j + (1 if unit else 0)


def _pieces(toks: list[_Tok]) -> tuple[list[list[_Tok]], list[str]]:
    """Cut at separators and joining words (not inside a run of figures, not "or more"); also
    what ended each piece (SEP, COLON or the joining word)."""
    pieces: list[list[_Tok]] = [[]]
    ends: list[str] = []
    for i, t in enumerate(toks):
        cut = t.text in (SEP, COLON) or (t.text in CONJUNCTIONS and not t.in_run and not (
            t.text == "or" and i + 1 < len(toks) and toks[i + 1].text in OR_COMPARATIVES))
        if not cut:
            pieces[-1].append(t)
        elif pieces[-1]:
            pieces.append([])
            ends.append(t.text)
        elif ends and t.text == COLON:
            ends[-1] = COLON
    if not pieces[-1]:
        pieces.pop()
    return pieces, ends + [""] * (len(pieces) - len(ends))


_COUNT_UNITS = {"u:people", "u:household"}


def _is_count_noun(t: _Tok) -> bool:
    """"people", "households": what any count counts, never what tells two figures apart."""
    return unit_of(t.text, False) in _COUNT_UNITS


_DETERMINERS = {"a", "an", "the", "any", "each", "every", "all", "its", "their", "this", "these"}


def _verb(toks: list[_Tok], k: int) -> str:
    """"light" for a verb that tells nothing apart - a listed light verb, a participle or base
    form after a verb or modal ("is *changed*", "can *serve*"), an imperative ("*Add* 8 drops");
    "action" for the others - a listed content verb, or a word in -s between a noun and a
    determiner or preposition ("water *crosses* a road"); "" for no verb."""
    t = toks[k].text
    if t in LIGHT_VERBS:
        return "light"
    if t in VERBS:
        return "action"
    before = toks[k - 1] if k else None
    nxt = toks[k + 1] if k + 1 < len(toks) else None
    after = nxt.text if nxt is not None else ""
    if before is not None and before.text in LIGHT_VERBS and (t.endswith(("ed", "ing")) or before.text in _MODALS):
        return "light"
    if k == 0 and nxt is not None and not toks[k].head and (nxt.figure is not None or after in _DETERMINERS):
        return "light"
    if before is not None and before.stem and t.endswith("s") and not t.endswith("ss") \
            and (after in _DETERMINERS or after in PREPOSITIONS):
        return "action"
    return ""


_CONDITION_OPENERS = {"if", "when", "whenever", "once", "unless", "until"}
_MODALS = {"must", "should", "shall", "can", "could", "may", "might", "will", "would", "need", "to"}


def _strengths(toks: list[_Tok]) -> tuple[set[str], set[str]]:
    """(names, details): content stems outside / inside prepositional phrases. Auxiliaries,
    verbs, units, code heads, comparisons and count nouns are neither."""
    names, details, _ = _words(toks)
    return names, details


def _words(toks: list[_Tok]) -> tuple[set[str], set[str], set[str]]:
    """(names, details, actions): see ``_strengths``; actions are the verbs."""
    names: set[str] = set()
    details: set[str] = set()
    actions: set[str] = set()
    in_pp = pp_noun = False
    for k, t in enumerate(toks):
        kind = _verb(toks, k)
        verb = bool(kind)
        after_figure = k and (toks[k - 1].unit or toks[k - 1].figure is not None)
        if t.text in PREPOSITIONS and not (t.text == "of" and after_figure):  # "2 kg of lentils"
            in_pp, pp_noun = True, False
        elif verb or t.figure is not None or (pp_noun and t.text in _DETERMINERS):
            in_pp = False  # "in a cold climate *the* minimum covered living space": a new noun phrase
        elif in_pp and t.stem:
            pp_noun = True
        if not t.stem or t.unit or t.head or kind == "light" or t.text in RELATION_WORDS \
                or t.text in PREPOSITIONS or _is_count_noun(t):
            continue
        (actions if verb else details if in_pp else names).add(t.stem)
    return names, details - names, actions - names - details


def _subject_end(toks: list[_Tok]) -> int:
    """Index of the first verb or measuring figure: what comes before it is the subject."""
    for i, t in enumerate(toks):
        if (i > 0 and _verb(toks, i)) or (t.figure is not None and not t.figure.head):
            return i
    return len(toks)


def _has_verb(piece: list[_Tok]) -> bool:
    return any(_verb(piece, k) for k in range(1, len(piece)))


def _head(piece: list[_Tok]) -> str:
    """The noun a noun-phrase clause is about: its last content word before a preposition, a verb
    or a figure ("the distance to the water point" -> distance, "laundry soap 200 g" -> soap)."""
    head = ""
    for k, t in enumerate(piece):
        if t.head or (t.figure is not None and t.figure.head) or t.text in RELATION_WORDS:
            continue
        if t.figure is not None or (k and _verb(piece, k)) or (head and (t.text in QUESTION_STOPWORDS
                                                                 or t.text in PREPOSITIONS)):
            break
        if t.stem and t.text not in PREPOSITIONS:
            head = t.stem
    return head


def _without_parallel(subject: list[_Tok], head: str) -> list[_Tok]:
    """The subject without the noun phrase that ``head`` replaces (its modifiers and code)."""
    at = next((i for i, t in enumerate(subject) if t.stem == head), None)
    if at is None:
        return subject
    start = at
    while start > 0 and subject[start - 1].stem and subject[start - 1].figure is None:
        start -= 1
    end = at + 1
    while end < len(subject) and (subject[end].head or (subject[end].figure and subject[end].figure.head)):
        end += 1
    return subject[:start] + subject[end:]


def _codes(toks: list[_Tok]) -> list[Figure]:
    return [t.figure for t in toks if t.figure is not None and t.figure.head]


def _inherited(piece: list[_Tok], subject: list[_Tok], has_object: bool) -> list[_Tok]:
    """What of the sentence's subject a clause that is not the first one takes as its own."""
    own_heads = {f.head for f in _codes(piece)}
    if own_heads & {f.head for f in _codes(subject)}:
        return []  # "..., and Tier 3 within 60 minutes": a new row of the same kind
    first = piece[0]
    if first.text in SUBORDINATORS:
        return []  # "..., provided water is available for about 8 hours a day": a clause of its own
    if not any(_strengths(piece)):
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


def _split_condition(piece: list[_Tok]) -> tuple[list[_Tok], list[_Tok]]:
    """A clause and its trailing condition ("... for 48 hours *before the NEOC goes to Level 3*")."""
    seen_figure = False
    for i, t in enumerate(piece):
        if t.figure is not None:
            seen_figure = True
        elif seen_figure and t.text in SUBORDINATORS:
            return piece[:i], piece[i:]
    return piece, []


def _text(toks: list[_Tok]) -> str:
    return " ".join(t.figure.number if t.figure is not None and t.figure.phone else t.text
                    for t in toks if t.text not in (SEP, COLON))


def _figures(toks: list[_Tok]) -> list[Figure]:
    return [t.figure for t in toks if t.figure is not None]


def read_clauses(text: str, conditions: bool = True, passage: bool = False) -> list[Clause]:
    """The sentence's clauses that hold figures, each with the words its figures measure.
    ``conditions=False`` reads a table cell ("When: Every 3 hours"): no leading condition.
    ``passage=True`` reads a passage's statement generously, as the documents' own wording is
    (what a figure measures there is what the binding check is tested against): the pieces
    without figures after a clause are its own ("7.055 MHz (example) *by day*"), and a clause
    that opens with its figure takes the words of the clause before it ("1 facilitator per 20
    children (*1 per 15* for children under 6)")."""
    pieces, ends = _pieces(_tokens(text))
    if not pieces:
        return []
    scope: list[_Tok] = []
    if conditions and len(pieces) > 1 and ends[0] == SEP and pieces[0][0].text in PREFIX_STARTERS and (
            pieces[0][0].text in _CONDITION_OPENERS or not any(t.text in VERBS for t in pieces[0])):
        # "For an earthquake of magnitude 6.0 or greater, ...", "If the Chief cannot be reached
        # within 30 minutes, the Deputy Chief may authorise Level 2"
        scope, pieces, ends = pieces[0], pieces[1:], ends[1:]
    lead: list[_Tok] = []
    if COLON in ends[:-1]:  # "Food basket (15 days for 5 people): rice 30 kg, lentils 3 kg"
        cut = ends.index(COLON) + 1
        lead = [t for p in pieces[:cut] for t in p]
    body = [t for p in pieces for t in p]
    end = _subject_end(body)
    subject = body[:end]
    # the piece where the subject ends (at the first verb or figure) is the one that has it
    subject_piece = next((n for n, p in enumerate(pieces) if end < len(body) and any(t is body[end] for t in p)), 0)
    first_figure = next((i for i, t in enumerate(body) if t.figure is not None and not t.figure.head), end)
    has_object = end < len(body) and body[end].text not in COPULAS and any(_strengths(body[end + 1:first_figure]))
    clauses: list[Clause] = []
    predicate_of_figure = False  # "a forest fire within 1 km ... means evacuating it and requesting ..."
    for n, piece in enumerate(pieces):
        if not _figures(piece):
            if clauses:  # a piece without figures continues the clause before it
                clauses[-1].text += ", " + _text(piece)
                if predicate_of_figure or passage:
                    clauses[-1].details |= set().union(*_words(piece)) - clauses[-1].names
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
        names, details, actions = _words(main)
        inherited_names, inherited_details, inherited_actions = _words(inherited)
        # the words before a ":" describe the list after it: details of each of its clauses
        inherited_details |= set().union(*_words([t for t in lead if id(t) not in ids]))
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
            topic=_strengths(subject)[0],
            topic_figures=_codes(subject),
            scope_words=set().union(*_strengths(scope), *_strengths(condition)),
            scope_figures=_figures(scope) + _figures(condition),
            subjectless=not clauses and not any(_strengths(subject)),
            wordless=not (names or details),
        ))
    if scope and not clauses and _figures(scope):  # "Within the first 15 minutes, the Duty Officer ..."
        whole = scope + body
        names, details, actions = _words(whole)
        clauses.append(Clause(_text(whole), _figures(whole), names, details, actions,
                              topic=_strengths(subject)[0], topic_figures=_codes(subject)))
    elif scope and clauses:
        clauses[0].text = f"{_text(scope)}, {clauses[0].text}"
    return clauses
