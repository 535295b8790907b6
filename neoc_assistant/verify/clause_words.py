"""The words of a sentence as the clause reader sees them: figures, pieces, kinds of words.

``clauses.py`` decides what each figure of a sentence measures; this module gives it the
sentence as tokens - figures recognised as ``facts.py`` reads them (a number with its unit, a
run sharing one unit as in "2.5 to 3 litres", a code such as "Level 2" or "ICS 215A", a phone
number), the separators kept, cut into pieces at commas and joining words - and says of each
word whether it names something (a noun phrase), details it (inside a prepositional phrase), is
a verb that could tell two figures apart ("deploys"), or binds nothing at all (a light verb, a
unit, a comparison, a count noun). Word lists: ``language/data/claims.toml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neoc_assistant.language.normalize import is_number, light_stem
from neoc_assistant.language.words import CODE_HEADS, QUESTION_STOPWORDS, SYNONYMS, load
from neoc_assistant.language.citations import strip_citations
from neoc_assistant.language.facts import _PHONE, _phone_digits, fact_tokens, unit_of

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
CODE_WORDS = CODE_HEADS | {"ics", "ch"}
HEAD_NAMES = {"channel": "ch"}
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
        return f"{self.head} {self.number}" if self.head else f"{self.number} {self.unit[2:]}"  # type: ignore[index]  # a unit, or returned above


@dataclass
class Tok:
    text: str
    stem: str = ""
    figure: Figure | None = None
    unit: bool = False  # the unit of the figure before it
    in_run: bool = False  # a joiner inside a run of figures ("2.5 *to* 3 litres")
    head: bool = False  # the word that makes the next number a code
    verb: str | None = None  # its verb kind, read in the whole sentence ("*Add* 8 drops" opens it)


def read_tokens(text: str) -> list[Tok]:
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
    toks: list[Tok] = []
    last = 0
    for m in list(_SEPARATORS.finditer(text)) + [None]:
        piece = text[last:m.start()] if m else text[last:]
        toks.extend(Tok(t, stem(t)) for t in fact_tokens(piece))
        if m:
            toks.append(Tok(COLON if ":" in m.group(0) else SEP))
            last = m.end()
    i = 0
    while i < len(toks):
        t = toks[i].text
        if t in phones:
            toks[i] = Tok(t, "", Figure(phones[t], phone=True))
        elif _CODE.match(t):  # "ICS 215A"
            head = toks[i - 1].text if i and toks[i - 1].text in CODE_WORDS else ""
            if head:
                toks[i - 1].head, toks[i - 1].stem = True, ""
            toks[i].figure, toks[i].stem = Figure(t, None, HEAD_NAMES.get(head, head)), ""
        elif is_number(t):
            i = _read_figure(toks, i)
            continue
        i += 1
    for k, tok in enumerate(toks):
        tok.verb = verb_kind(toks, k)
    return toks


def _read_figure(toks: list[Tok], i: int) -> int:
    """Mark the figure (or run of figures sharing a unit) starting at ``i``; return the next index."""
    followed_by_unit = i + 1 < len(toks) and unit_of(toks[i + 1].text, True) is not None
    if i and toks[i - 1].text in CODE_WORDS and not followed_by_unit:
        toks[i - 1].head, toks[i - 1].stem = True, ""  # "Level 1 and 24 hours": 1 is a code, not a run
        toks[i].figure = Figure(toks[i].text, None, HEAD_NAMES.get(toks[i - 1].text, toks[i - 1].text))
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


def cut_pieces(toks: list[Tok]) -> tuple[list[list[Tok]], list[str]]:
    """Cut at separators and joining words (not inside a run of figures, not "or more"); also
    what ended each piece (SEP, COLON or the joining word)."""
    pieces: list[list[Tok]] = [[]]
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


def _is_count_noun(t: Tok) -> bool:
    """"people", "households": what any count counts, never what tells two figures apart."""
    return unit_of(t.text, False) in _COUNT_UNITS


DETERMINERS = {"a", "an", "the", "any", "each", "every", "all", "its", "their", "this", "these"}


def verb_kind(toks: list[Tok], k: int) -> str:
    """"light" for a verb that tells nothing apart - a listed light verb, a participle or base
    form after a verb or modal ("is *changed*", "can *serve*"), an imperative ("*Add* 8 drops");
    "action" for the others - a listed content verb, or a word in -s between a noun and a
    determiner or preposition ("water *crosses* a road"); "" for no verb."""
    verb = toks[k].verb
    if verb is not None:
        return verb
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
    if k == 0 and nxt is not None and not toks[k].head and (nxt.figure is not None or after in DETERMINERS):
        return "light"
    if before is not None and before.stem and t.endswith("s") and not t.endswith("ss") \
            and (after in DETERMINERS or after in PREPOSITIONS):
        return "action"
    return ""


CONDITION_OPENERS = {"if", "when", "whenever", "once", "unless", "until"}
_MODALS = {"must", "should", "shall", "can", "could", "may", "might", "will", "would", "need", "to"}


def strengths(toks: list[Tok]) -> tuple[set[str], set[str]]:
    """(names, details): content stems outside / inside prepositional phrases. Auxiliaries,
    verbs, units, code heads, comparisons and count nouns are neither."""
    names, details, _ = words_of(toks)
    return names, details


def words_of(toks: list[Tok]) -> tuple[set[str], set[str], set[str]]:
    """(names, details, actions): see ``strengths``; actions are the verbs."""
    names: set[str] = set()
    details: set[str] = set()
    actions: set[str] = set()
    in_pp = pp_noun = False
    for k, t in enumerate(toks):
        kind = verb_kind(toks, k)
        verb = bool(kind)
        after_figure = k and (toks[k - 1].unit or toks[k - 1].figure is not None)
        if t.text in PREPOSITIONS and not (t.text == "of" and after_figure):  # "2 kg of lentils"
            in_pp, pp_noun = True, False
        elif verb or t.figure is not None or (pp_noun and t.text in DETERMINERS):
            in_pp = False  # "in a cold climate *the* minimum covered living space": a new noun phrase
        elif in_pp and t.stem:
            pp_noun = True
        if not t.stem or t.unit or t.head or kind == "light" or t.text in RELATION_WORDS \
                or t.text in PREPOSITIONS or _is_count_noun(t):
            continue
        (actions if verb else details if in_pp else names).add(t.stem)
    return names, details - names, actions - names - details
