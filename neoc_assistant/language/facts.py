"""The hard facts of a sentence: numbers with their units, phone numbers, codes.

A duty officer acts on figures, times, form numbers and phone numbers; a small
model gets exactly these wrong ("2.1 litres" where the passage says 15). So a
claim is only kept if every such fact in it also stands in a passage that
supports it. Normalisation is the question tokenizer's (``language/normalize.py``:
``1,000`` = ``1000``, ``five`` = ``5``, ``07:00`` = ``7:00``, ``2 pm`` =
``14:00``), so the claim and the passage are read the same way.

- **quantities** - a number followed by a unit (``15 litres``, ``2 hours``,
  ``500 m``) must appear with the same unit in one statement of the passage,
  so "15 kcal" is not supported by "15 litres ... 2,100 kcal";
- **numbers** - every other number must appear in the passage;
- **phones** - digit runs of 6+ digits written with spaces, dashes or
  brackets are compared as digit strings, so ``01-4200105`` is one fact.

The words "one" and "first".."fifth" are not counted (a pronoun and an order far more often
than a figure).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from neoc_assistant.language.normalize import is_number, tokenize
from neoc_assistant.language.words import AMBIGUOUS_UNITS, UNITS
from neoc_assistant.language.citations import strip_citations

# a full stop right after a phone number ends the sentence; it is not part of a decimal
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d[\d\s\-()]{4,}\d(?!\w|\.\d)")
# "(2010-2019)" is a span of years, not a phone number: without this, "131 (2010-2019)" of a
# FEMA report read as the phone 13120102019 in one context and as 131 in another
_YEAR_SPAN = re.compile(
    r"(?<![\d\-\u2013])\(?\s*\b((?:19|20)\d\d)\s*[-\u2013]\s*((?:19|20)\d\d)\b(?!\s*[-\u2013]\s*\d)\s*\)?")
_EXTRA_UNITS = {
    "kcal": "u:kcal", "calorie": "u:kcal", "calories": "u:kcal", "sqm": "u:m2", "m2": "u:m2",
    "square": "u:m2", "tonne": "u:tonne", "tonnes": "u:tonne", "ton": "u:tonne", "tons": "u:tonne",
    "mg": "u:mg", "ntu": "u:ntu", "people": "u:people", "persons": "u:people", "person": "u:people",
    "households": "u:household", "household": "u:household", "families": "u:household",
    "family": "u:household",
}
_CODE = re.compile(r"^\d+[a-z]$")
_JOINERS = {"to", "and", "or", "-", "x"}
# "one" is a pronoun far more often than a figure; "first"/"second" are order, rarely a fact
_IGNORED_WORDS = re.compile(r"\b(?:one|first|second|third|fourth|fifth)\b", re.IGNORECASE)


def unit_of(token: str, after_number: bool) -> str | None:
    unit = UNITS.get(token) or _EXTRA_UNITS.get(token)
    if unit is None and after_number:
        unit = AMBIGUOUS_UNITS.get(token)
    return unit


def _phone_digits(match: str) -> str | None:
    digits = re.sub(r"\D", "", match)
    if len(digits) < 6 or not re.search(r"[\s\-()]", match.strip()):
        return None  # a plain long number is a number, not a phone
    return digits


@dataclass
class Facts:
    numbers: Counter = field(default_factory=Counter)  # canonical numbers without a unit
    quantities: set[tuple[str, str]] = field(default_factory=set)  # (number, canonical unit)
    phones: set[str] = field(default_factory=set)  # digit strings
    units: set[str] = field(default_factory=set)  # every unit word seen, attached to a number or not

    def __bool__(self) -> bool:
        return bool(self.numbers or self.quantities or self.phones)

    def all_numbers(self) -> set[str]:
        return set(self.numbers) | {n for n, _ in self.quantities}

    def describe(self) -> list[str]:
        out = [f"{n} {u[2:]}" for n, u in sorted(self.quantities)] + sorted(self.numbers)
        return out + sorted(self.phones)


def fact_tokens(text: str) -> list[str]:
    """The question tokenizer's tokens, without the number words that are rarely figures."""
    return tokenize(_IGNORED_WORDS.sub(" ", text))


def extract_facts(text: str) -> Facts:
    facts = Facts()
    words = _YEAR_SPAN.sub(r" from \1 to \2 ", strip_citations(text or ""))

    def take_phone(m: re.Match) -> str:
        digits = _phone_digits(m.group(0))
        if not digits:
            return m.group(0)
        facts.phones.add(digits)
        return " "

    words = _PHONE.sub(take_phone, words)  # in place: the same digits elsewhere stay what they are there
    tokens = fact_tokens(words)
    facts.units = {u for t in tokens if (u := unit_of(t, False))}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _CODE.match(tok):  # "215a" of "ICS 215A": a form code, compared as it is
            facts.numbers[tok] += 1
        if not is_number(tok):
            i += 1
            continue
        # a run of numbers sharing one unit: "2.5 to 3 litres", "10 or 20 l"
        run = [tok]
        j = i + 1
        while j + 1 < len(tokens) and tokens[j] in _JOINERS and is_number(tokens[j + 1]):
            run.append(tokens[j + 1])
            j += 2
        unit = unit_of(tokens[j], True) if j < len(tokens) else None
        if unit is None and j + 1 < len(tokens) and tokens[j] in ("square", "sq"):
            unit = "u:m2"
        for number in run:
            if unit:
                facts.quantities.add((number, unit))
            else:
                facts.numbers[number] += 1
        i = j
    return facts


def missing_facts(claim: Facts, statements: list[Facts], allowed: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Facts of the claim that no statement of the passage holds (numbers in ``allowed`` -
    the officer's own, from the question - are exempt)."""
    numbers = set().union(*(s.all_numbers() for s in statements)) if statements else set()
    phones = set().union(*(s.phones for s in statements)) if statements else set()
    missing: list[str] = []
    for n, unit in sorted(claim.quantities):
        if n in allowed:
            continue
        if not any((n, unit) in s.quantities or (n in s.numbers and unit in s.units) for s in statements):
            missing.append(f"{n} {unit[2:]}")
    for n in sorted(claim.numbers):
        if n not in allowed and n not in numbers and n not in phones:
            missing.append(n)
    for phone in sorted(claim.phones):
        if not any(_same_phone(phone, p) for p in phones):
            missing.append(phone)
    return missing


def _same_phone(a: str, b: str) -> bool:
    """Equal up to a trunk '0' or a country code written in front: 01-4200105 = +977 1 4200105."""
    a, b = a.lstrip("0"), b.lstrip("0")
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 6 and long_.endswith(short)
