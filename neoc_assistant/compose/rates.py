"""Per-head rates written the ways "X per person" is not, read from a shown answer's lines.

``worked.py`` multiplies the officer's count by a rate; these are the rates its "X ... per person"
reader missed in the documents, each form a class rather than one sentence:

* a number in words - "one gallon of water per person", "about six square feet";
* a rate said of its subject - "Adults require about six square feet of space" is per adult,
  "each person needs 2 blankets" per person;
* the parts of a rate in brackets - "1 gallon of water per person, per day (3 quarts for drinking,
  1 quart for food preparation)": each part is per person (per day) too;
* a family package's contents - "Food basket: rice 30 kg, lentils 3 kg" under "Standard family
  relief kit (household of 5)": one package per household, so each item is per household.

Each reader returns ``PerHead`` records; which one answers the question is ``worked.py``'s choice
(the line must share a word with the question; a part whose use the question names comes first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
                 "fifty": 50, "hundred": 100}
WORD_NUMBER = r"(?:" + "|".join(_WORD_NUMBERS) + r")"
DIGITS = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?"
NUMBER = rf"(?:{DIGITS}|{WORD_NUMBER})"
# what a rate is measured in: one to three words, "of" and what ("square feet of floor space")
MEASURE = r"(?:[a-z0-9²\-]+\s+){0,2}[a-z0-9²\-]+(?:\s+of\s+[a-z]+(?:\s+[a-z]+)?)?"
_HEDGE = r"(?:(?:about|approximately|roughly|around|at\s+least|a\s+minimum\s+of|up\s+to|some)\s+)?"
_SUBJECTS = (r"(?:adults?|people|persons?|each\s+(?:person|adult|individual|evacuee|occupant)|every\s+(?:person|adult)|"
             r"everyone|evacuees|residents|occupants|individuals|survivors)")
# the measure said of a subject: a unit ("square feet", "litres", "blankets"), then "of" what
_UNIT = r"(?:(?:square|cubic)\s+)?[a-z²0-9\-]+(?:\s+of\s+[a-z]+)?"
_SUBJECT_RATE = re.compile(rf"\b(?P<who>{_SUBJECTS})\s+(?:will\s+|should\s+|must\s+)?(?:require|requires|need|needs|"
                           rf"get|gets|receive|receives|should\s+have|must\s+have)\s+(?P<hedge>{_HEDGE})(?P<x>{NUMBER})\s+"
                           rf"(?P<measure>{_UNIT})", re.IGNORECASE)
# "1 gallon of water per person, per day (3 quarts for drinking, 1 quart for food ..." - the bracket
# may run off the end of a quoted line
_BRACKETED = re.compile(rf"\b(?P<x>{NUMBER})\s+(?P<measure>{MEASURE})\s+per\s+(?P<unit>person|head|capita|household|"
                        rf"family)\b(?P<per>(?:,?\s+per\s+[a-z]+)?)\s*\((?P<parts>[^)]*)", re.IGNORECASE)
_PART = re.compile(rf"\b(?P<x>{NUMBER})\s+(?P<measure>[a-z]+)\s+for\s+(?P<use>[a-z][a-z ]*?)\s*(?=,|;|\)|$|\band\b)",
                   re.IGNORECASE)
_PACKAGE = re.compile(r"\b(?:basket|kit|package|parcel|ration|hamper)s?\b", re.IGNORECASE)
_PER_FAMILY = re.compile(r"\b(?:family|families|household|households|hh)\b", re.IGNORECASE)
_UNITS = r"(?:kg|g|grams?|kilograms?|litres?|liters?|l|ml|pieces?|pcs|packets?|bars?|tins?|cans?|bottles?)"
# "rice 30 kg", "cooking oil 2 litres": an item, then its quantity
_ITEM = re.compile(rf"(?:^|[:,;(]|\band\b)\s*(?P<item>[a-z][a-z\-]*(?:\s+[a-z][a-z\-]*)?)\s+(?P<x>{DIGITS})\s*"
                   rf"(?P<measure>{_UNITS})\b", re.IGNORECASE)


@dataclass(frozen=True)
class PerHead:
    x: float
    measure: str  # "square feet of space", "quarts"
    per: str  # "person" | "household"
    tail: str = ""  # " per day", ", per day"
    said: str = ""  # how the text gives it, when not "X measure per person": "Adults require about six ..."
    use: str = ""  # the part's use ("drinking"): a question naming it prefers this part
    named_only: bool = False  # offered only when the question names ``use`` (a package's item: "rice")


def number(text: str) -> float:
    """ "1,800" -> 1800.0, "six" -> 6.0."""
    word = _WORD_NUMBERS.get(text.lower())
    return float(word) if word is not None else float(text.replace(",", ""))


def subject_rates(line: str) -> list[PerHead]:
    """ "Adults require about six square feet of space" -> 6 square feet of space per person."""
    out = []
    for m in _SUBJECT_RATE.finditer(line):
        measure = _squash(m.group("measure"))
        if re.search(r"\bper\b", line[m.end():m.end() + 12]):  # "... 2 blankets per ...": the per reader's
            continue
        if re.search(rf"\b{NUMBER}\s+(?:[a-z\-]+\s+)?$", line[:m.start()], re.IGNORECASE):
            continue  # "every 20 people need 1 toilet" is a rate per 20, not per person
        who = re.sub(r"^(?:each|every)\s+|s$", "", _squash(m.group("who")).lower())
        who = "person" if who in ("people", "everyone", "individual", "resident", "evacuee", "survivor") else who
        said = f"{m.group('hedge')}{m.group('x')} {measure} per {who}"
        out.append(PerHead(number(m.group("x")), measure, "person", said=_squash(said)))
    return out


def bracketed_parts(line: str) -> list[PerHead]:
    """The parts in brackets after a per-head rate, each per head like the whole."""
    out = []
    for m in _BRACKETED.finditer(line):
        per = "household" if m.group("unit").lower() in ("household", "family") else "person"
        tail = re.sub(r"^,", "", m.group("per"))
        whole = _squash(f"{m.group('x')} {m.group('measure')} per {m.group('unit')}{m.group('per')}")
        for part in _PART.finditer(m.group("parts")):
            out.append(PerHead(number(part.group("x")), part.group("measure"), per, tail,
                               said=f"{_squash(part.group(0))} (of {whole})", use=part.group("use").strip()))
    return out


def package_items(line: str, heading: str = "") -> list[PerHead]:
    """ "Food basket ...: rice 30 kg, lentils 3 kg" - per household when the line or its heading says
    the package is a family's or a household's; nothing otherwise (per what would be a guess)."""
    if not _PACKAGE.search(line) and not _PACKAGE.search(heading):
        return []
    if not _PER_FAMILY.search(line) and not _PER_FAMILY.search(heading):
        return []
    package = _PACKAGE.search(line) or _PACKAGE.search(heading)
    name = package.group(0).lower().rstrip("s") if package else "package"
    return [PerHead(float(m.group("x").replace(",", "")), m.group("measure"), "household",
                    said=f"{m.group('item').strip()} {m.group('x')} {m.group('measure')} in each {name}",
                    use=m.group("item").strip(), named_only=True)
            for m in _ITEM.finditer(line)]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
