"""What a question asks for - a figure, a time, a person, a contact, a form - and whether a text supplies it.

Why: the passages found for "How many doses of cholera vaccine does each person get?" talk about
cholera vaccination, and their best sentence ("campaigns are decided by MoHP...") is on topic, so
similarity and word overlap call it an answer. It is not: the officer asked for a *number of doses*
and no sentence gives one. The composer (``compose/``) therefore only shows an extract that supplies
what was asked, and answers not-found when none does. The reading is deliberately coarse: a
question whose kind is not recognised is ``open`` and constrains nothing (a wrong guess would refuse
a good answer, which is the costlier mistake on an answerable question).

The phrases are data (``language/data/asks.toml``). The first question word of the asking clause
decides ("What do we do when the river reaches danger level?" asks *what*, not *when*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from neoc_assistant.language.normalize import is_number, tokenize
from neoc_assistant.language.words import QUESTION_STOPWORDS, TIME_UNITS, UNITS, content_stems, load
from neoc_assistant.language.facts import extract_facts, unit_of

_DATA = load("asks")
_NUMBER_WORDS = frozenset(_DATA["number_words"])
_DURATION_WORDS = frozenset(w for w in _DATA["duration_words"] if " " not in w)
_DURATION_PHRASES = tuple(w for w in _DATA["duration_words"] if " " in w)
_TIME_WORDS = _DURATION_WORDS | frozenset(w for w in _DATA["time_words"] if " " not in w)
_TIME_PHRASES = _DURATION_PHRASES + tuple(w for w in _DATA["time_words"] if " " in w)
_PERSON_WORDS = frozenset(_DATA["person_words"])
_COUNT_WORDS = frozenset(_DATA["count_words"])
_MONEY_UNITS = frozenset({"u:npr", "u:usd"})  # not a percentage: "80% of listed people" is no allowance
MONEY = "money"  # Ask.unit of a question that asks for a rate, a fee or an allowance
# how far (in words) a figure may stand from the thing it counts: "18 climate-related disasters",
# "ambulances: 5"; further away, the figure counts something else ("the levee is patrolled once")
_COUNT_REACH_BEFORE, _COUNT_REACH_AFTER = 4, 3
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_TIME_UNIT_NAMES = frozenset(UNITS[u] for u in TIME_UNITS if u in UNITS)
_WH = ("who", "whom", "whose", "what", "which", "when", "where", "how", "why")

# a full stop after the number ends the sentence ("...at (800) 424-8802."), as in language/facts.py
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d[\d\s\-()]{4,}\d(?!\w|\.\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_FREQUENCY = re.compile(r"\d+(?:\.\d+)?\s*(?:mhz|khz)|\bchannel\s+\d+", re.IGNORECASE)
_FORM = re.compile(r"\b(?:ICS|NEOC-F|FEMA|form)\s*-?\s*\d+[A-Za-z]?\b", re.IGNORECASE)
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d\d\b|\b\d{1,2}\s*(?:am|pm)\b", re.IGNORECASE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]{2,}|\b[A-Z]{2,}\b")


@dataclass(frozen=True)
class Ask:
    kind: str = "open"  # quantity | time | person | contact | form | steps | open
    detail: str = ""  # contact: phone | email | frequency; time: duration | when
    unit: str | None = None  # a unit the question names ("how many grams" -> "u:g")
    counted: tuple[str, ...] = field(default_factory=tuple)  # what "how many X" counts, as tokens
    codes: tuple[tuple[str, int, str], ...] = ()  # codes the asking clause names ("IS-100.d", "EF5")
    own: frozenset[str] = frozenset()  # the question's own words: a name it says is no answer to "who"

    @property
    def typed(self) -> bool:
        """Asks for a kind of thing a statement must supply (steps and open questions do not)."""
        return self.kind not in ("open", "steps")

    @property
    def constrains(self) -> bool:
        """Some extracts do not supply it: a typed ask, or a code the answer must name."""
        return self.typed or bool(self.codes)

    def describe(self) -> str:
        """For the not-found message: what the documents did not give."""
        if self.kind == "contact":
            return {"phone": "a phone number", "email": "an e-mail address"}.get(self.detail, "a radio frequency")
        if self.kind == "quantity":
            return f"a figure for {' '.join(self.counted)}" if self.counted else "the figure asked for"
        return {"time": "the time or deadline asked for", "person": "who it is", "form": "the form asked for"}.get(
            self.kind, "the answer")


def asking_clause(question: str) -> str:
    """The clause that asks: "Planning the IRA in Dolakha hills - roughly how many wards...?" asks
    after the dash; "Jumla DEOC asks: how much snowfall...?" after the colon."""
    clauses = [c.strip() for c in re.split(r"(?<=[.!?;:])\s+|\s+[-\u2013\u2014]\s+", question.strip()) if c.strip()]
    for clause in reversed(clauses):
        if clause.endswith("?"):
            return clause
    for clause in reversed(clauses):
        if any(w in _WH for w in tokenize(clause)):
            return clause
    return clauses[-1] if clauses else question


def _has_phrase(text: str, phrases) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases)


_CODE = re.compile(r"\b([A-Za-z]{1,6})-?(\d+)(?:\.([A-Za-z0-9]+))?\b")
_SPACED_CODE = re.compile(r"\b([A-Za-z]{1,6})[\s-]+(\d+)(?:\.([A-Za-z0-9]+))?\b")


def _codes(text: str, spaced: bool = False) -> set[tuple[str, int, str]]:
    """(letters, number, suffix) of the codes in ``text``: "IS-0100.c" -> ("is", 100, "c")."""
    found = {(a.lower(), int(n), (x or "").lower()) for a, n, x in _CODE.findall(text)}
    if spaced:  # a passage may write "ICS 214" or "IS 100" where the question glued them
        found |= {(a.lower(), int(n), (x or "").lower()) for a, n, x in _SPACED_CODE.findall(text)}
    return found


def _names_code(code: tuple[str, int, str], found: set[tuple[str, int, str]]) -> bool:
    """ "IS-100" is named by "IS-100.c"; "IS-100.d" is not."""
    return any(c[:2] == code[:2] and (not code[2] or c[2] == code[2]) for c in found)


def names_codes(ask: Ask, text: str) -> bool:
    """Does ``text`` - the whole passage, its title included - name every code the question does?
    The passage, not the extract: the IS-700 exam's pass mark is stated in a line that does not
    repeat "IS-700" (seen on the held-out FEMA set when the extract had to name it)."""
    found = _codes(text, spaced=True) if ask.codes else set()
    return all(_names_code(c, found) for c in ask.codes)


def _ask_codes(clause: str) -> tuple[tuple[str, int, str], ...]:
    """Codes written glued in the asking clause ("When is IS-100.d replacing...", "an EF5"). Why:
    a passage about IS-100.c or EF3 tornadoes is on topic and wrong. Spaced codes ("ICS 214") are
    left to the form ask; codes starting with a digit are counts ("16-hour"); one letter glued to
    a figure is a measure ("M7.8"), not a code ("P-361" is)."""
    return tuple(sorted(c for c in _codes(clause)
                        if len(c[0]) > 1 or re.search(rf"\b{c[0]}-0*{c[1]}", clause, re.IGNORECASE)))


def read_ask(question: str) -> Ask:
    ask = _read_kind(question)
    codes = _ask_codes(asking_clause(question))
    return Ask(ask.kind, ask.detail, ask.unit, ask.counted, codes, frozenset(tokenize(question)))


def _read_kind(question: str) -> Ask:
    clause = asking_clause(question).lower()
    words = tokenize(clause)
    if _has_phrase(clause, _DATA["contact_phone"]):
        return Ask("contact", "phone")
    if _has_phrase(clause, _DATA["contact_email"]):
        return Ask("contact", "email")
    if _has_phrase(clause, _DATA["contact_frequency"]):
        return Ask("contact", "frequency")
    if _has_phrase(clause, _DATA["form"]):
        return Ask("form")
    first = next((w for w in words if w in _WH), "")
    if first == "when" and "," in clause:  # "When we review the plan, which criteria...": the main clause asks
        main = tokenize(clause.split(",", 1)[1])
        first = next((w for w in main if w in _WH), first)
    if first in ("who", "whom", "whose") or (first in ("which", "what") and _has_phrase(clause, _DATA["person"])):
        return Ask("person")
    if re.search(r"\bhow long (?:is|are|can|should|must|may|will)\b.*\bbe\b", clause):
        return Ask("quantity")  # "how long can a sitrep be?" asks for a length, not a time
    if first == "when" or _has_phrase(clause, [p for p in _DATA["time"] if p != "when"]):
        unit = next((UNITS[w] for w in words if w in TIME_UNITS and w in UNITS), None)
        return Ask("time", "duration" if _has_phrase(clause, _DATA["duration"]) else "when", unit=unit)
    if first in ("what", "which", "how") and _has_phrase(clause, _DATA["money"]):
        return Ask("quantity", unit=MONEY)
    unit = _named_unit(words)
    if _has_phrase(clause, _DATA["quantity"]) or (unit and first in ("what", "which")):
        return Ask("quantity", unit=unit, counted=_counted(words))
    if _has_phrase(clause, _DATA["steps"]):
        return Ask("steps")
    return Ask()


def _named_unit(words: list[str]) -> str | None:
    """The unit the answer must be given in: "how many grams", "how much ... in NPR"."""
    for i, w in enumerate(words[:-1]):
        nxt = words[i + 1]
        if (w in ("many", "much") or (w == "in" and (i == 0 or not words[i - 1].isdigit()))) and nxt not in _PEOPLE:
            unit = unit_of(nxt, after_number=False)
            if unit:
                return unit
    return None


_PREPOSITIONS = frozenset({"after", "before", "in", "for", "at", "on", "during", "per", "of", "from", "to",
                           "with", "by", "within", "across", "over", "under", "between", "among"})
_PEOPLE = frozenset({"people", "persons", "person", "families", "family", "households", "household"})


def measured_words(question: str) -> list[str]:
    """The words naming what "how many"/"how much" measures ("how much *temephos larvicide* do we
    put..." -> temephos, larvicide): the thing itself, which a passage must name to answer."""
    words = tokenize(asking_clause(question).lower())
    for i in range(len(words) - 1):
        if words[i] == "how" and words[i + 1] in ("many", "much"):
            run: list[str] = []
            for w in words[i + 2:i + 7]:
                if not w.isalpha() or w in QUESTION_STOPWORDS or w in _PREPOSITIONS:
                    break
                if unit_of(w, after_number=False) is None:  # "how many grams of soap": grams is the unit
                    run.append(w)
            return run
    return []


def _counted(words: list[str]) -> tuple[str, ...]:
    """The head noun after "how many" ("how many Nepal Red Cross ambulances are..." -> ambulances):
    an answer must give a number *of that*. Not for "how much" (the substance is often left unsaid:
    "how much rain" -> "100 mm in 3 hours"). Without a parser, the head is the last plural of the
    words after "how many" ("how many people usually leave" -> people, not leave)."""
    for i in range(len(words) - 1):
        if words[i] == "how" and words[i + 1] == "many":
            run: list[str] = []
            for w in words[i + 2:i + 7]:
                if w.isdigit():
                    continue
                if not w.isalpha() or w in QUESTION_STOPWORDS or w in _PREPOSITIONS:
                    break
                run.append(w)
            plurals = [w for w in run if w.endswith("s") or w in _PEOPLE or w in ("staff", "children")]
            head = plurals[-1] if plurals else (run[0] if run else "")
            if head and (head in _PEOPLE or unit_of(head, after_number=False) is None):
                return (head,)
    return ()


def supplies(ask: Ask, text: str) -> bool:
    """Does ``text`` (a statement or an extract) give the kind of thing asked for? (The codes the
    question names are the passage's business: ``names_codes``.)"""
    if not ask.typed:
        return True
    lower = text.lower()
    if ask.kind == "contact":
        pattern = {"phone": _PHONE, "email": _EMAIL}.get(ask.detail, _FREQUENCY)
        # seven digits at least: "49 CFR Parts 100-185" is a range of parts, not a number to call
        return any(ask.detail != "phone" or len(re.sub(r"\D", "", m.group(0))) >= 7 for m in pattern.finditer(text))
    if ask.kind == "form":
        return _FORM.search(text) is not None
    tokens = tokenize(text)
    facts = extract_facts(text)
    if ask.kind == "time":
        if ask.unit and any(u == ask.unit for _, u in facts.quantities):
            return True
        if any(unit_of(t, True) in _TIME_UNIT_NAMES for t in tokens) or _CLOCK.search(text) is not None:
            return True
        words, phrases = (_DURATION_WORDS, _DURATION_PHRASES) if ask.detail == "duration" else (_TIME_WORDS, _TIME_PHRASES)
        return any(w in words for w in tokens) or _has_phrase(lower, phrases)
    if ask.kind == "quantity":  # a year ("the 2015 earthquake") is a date, not the figure asked for
        figures = {n for n in facts.all_numbers() if not _YEAR.match(n)}
        has_number = bool(figures) or any(w in _NUMBER_WORDS for w in tokens)
        if not has_number or not _counts(ask, tokenize(_CELL_LABEL.sub(" ", text))):
            return False
        if ask.unit == MONEY:
            return bool(facts.units & _MONEY_UNITS) or "$" in text
        return ask.unit is None or ask.unit in facts.units or any(u == ask.unit for _, u in facts.quantities)
    if ask.kind == "person":
        # "Who fills in the ICS 220?" is not answered by "AIR OPERATIONS SUMMARY (ICS 220)": the
        # question's own acronyms and names do not say who
        return any(w in _PERSON_WORDS for w in tokens) or any(
            m.group(0).lower() not in ask.own for m in _NAME.finditer(text))
    return True  # pragma: no cover - every kind is handled above


# a table row read as "Source: Tap (tap stand outlet); Maximum users: 250 people per tap": the column
# names stand between the thing and its figure, so the distance is measured without them
_CELL_LABEL = re.compile(r"(?:^|(?<=;)|(?<=\u00b7))\s*[A-Z][\w ()/'\-]{0,40}?:\s")


def _counts(ask: Ask, tokens: list[str]) -> bool:
    """A figure stands next to the thing "how many" counts. Why: "How many levees are in the federal
    inspection program?" found "The entire levee should be patrolled at least once per day" - a
    number and the word levee, but the number counts patrols. People are left out: "how many people
    can the hall hold?" is answered by a space per person, not a count beside the word."""
    if not ask.counted or ask.counted[0] in _PEOPLE:
        return True
    target = set(content_stems(" ".join(ask.counted)))
    things = [i for i, t in enumerate(tokens) if t.isalpha() and set(content_stems(t)) & target]
    figures = [i for i, t in enumerate(tokens) if (is_number(t) and not _YEAR.match(t)) or t in _COUNT_WORDS]
    return any(-_COUNT_REACH_BEFORE <= j - i <= _COUNT_REACH_AFTER for i in things for j in figures) if things else True


_MID_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b([A-Z][a-z][A-Za-z\-]+)")


def named(question: str, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Capitalised words inside the clause that asks ("the warning levels on the *Mahakali*?"): a
    place, a river, an agency. The answer must name it too - a passage about another river's levels
    is not the answer. Acronyms and ``ignore`` (glossary terms) are left out; so is the situation
    around the question ("Planning the IRA in Dolakha - how many wards a day?")."""
    clause = asking_clause(question).strip()
    out = []
    for word in _MID_NAME.findall(clause):
        low = word.lower()
        if low not in QUESTION_STOPWORDS and low not in ignore and low not in out:
            out.append(low)
    return out
