"""Worked figures: the officer's own count put through a rate the shown answer quotes.

"Our shelter has 300 people, how many toilets?" answered with "1 toilet per 50 people" gets
"Worked figure (calculated from the quoted numbers, not stated in the documents): 300 people ÷ 50
people per toilet = 6 toilets (rounded up)". The arithmetic is done here, by code, from a count in
the question and a rate in the text already shown - never by the model - and only when the units
agree (people with "per person"/"per N people", households with "per household"). Counts of
things to provide are rounded up: 301 people at 1 toilet per 50 need 7 toilets, not 6.02.

Rates are written more ways than "X per person", and each way read here was found unread in the
documents (``rates.py`` has the readers): a number in words ("one gallon", "about six square
feet"), a rate said of its subject ("Adults require about six square feet of space": per adult), the
parts of a rate in brackets ("1 gallon per person, per day (3 quarts for drinking, ...)": the parts
are per person too), and a family package's contents ("Food basket: rice 30 kg, lentils 3 kg" under
a family kit: per household).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from neoc_assistant.compose.rates import NUMBER, PerHead, bracketed_parts, number, package_items, subject_rates
from neoc_assistant.language.words import content_stems

WORKED_LABEL = "Worked figure (calculated from the quoted numbers, not stated in the documents):"

_PEOPLE = r"(?:people|persons?|residents|idps|evacuees|individuals|workers|staff|students|inhabitants)"
_HOUSEHOLDS = r"(?:households?|hhs?|families|family)"
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?"
_COUNT = re.compile(rf"\b(?P<n>{_NUMBER})\s+(?:(?!per\b)[a-z\-]+\s+)?(?P<unit>{_PEOPLE}|{_HOUSEHOLDS})\b", re.IGNORECASE)
# "a shelter of 260", "camp for 2000": a count of people without the word
_PLACE_COUNT = re.compile(rf"\b(?:shelter|camp|centre|center|site|school|hall|settlement|building)\s+(?:of|for|with)\s+"
                          rf"(?P<n>{_NUMBER})\b(?!\s*(?:%|percent|m\b|km|hours?|days?))", re.IGNORECASE)
# "Roughly 20 percent of the population at risk"
_PERCENT = re.compile(rf"\b(?P<x>{_NUMBER})\s*(?:%|percent)\s+of\s+(?P<whom>(?:the\s+)?(?:population|evacuees|people|residents)"
                      rf"[a-z ]{{0,30}}?)\s+(?P<what>will|would|are|need|require|seek)\b(?P<rest>[^.;]*)", re.IGNORECASE)
# "1 toilet per 50 people", "1 hygiene promoter per 500 people"
_ONE_PER_N = re.compile(rf"\b(?P<x>{_NUMBER})\s+(?P<thing>[a-z][a-z \-]{{1,30}}?)\s+per\s+(?P<n>{_NUMBER})\s+"
                        rf"(?P<unit>{_PEOPLE}|{_HOUSEHOLDS})\b", re.IGNORECASE)
# "250 people per tap"
_N_PER_THING = re.compile(rf"\b(?P<n>{_NUMBER})\s+(?P<unit>{_PEOPLE}|{_HOUSEHOLDS})\s+per\s+(?P<thing>[a-z][a-z\-]{{1,20}}"
                          rf"(?:\s+[a-z][a-z\-]{{1,20}})?)", re.IGNORECASE)
# "15 litres per person per day", "200 g per person per month", "30 kg per household"
_MEASURE = r"(?:[a-z0-9²\-]+\s+){0,2}[a-z0-9²\-]+(?:\s+of\s+[a-z]+(?:\s+[a-z]+)?)?"  # "square feet of floor space"
_PER_HEAD = re.compile(rf"\b(?P<x>{NUMBER})\s+(?P<measure>{_MEASURE})\s+per\s+"
                       rf"(?P<unit>person|head|capita|household|family)\b(?P<per>(?:,?\s+per\s+[a-z]+)?)", re.IGNORECASE)
_HEADING = re.compile(r"^\s*(?![-•*])[^\n]{3,120}:\s*$")  # "Standard family relief kit (household of 5):"


@dataclass(frozen=True)
class Worked:
    text: str
    result: float


def _num(text: str) -> float:
    return number(text)


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _kind(unit: str) -> str:
    return "households" if re.fullmatch(_HOUSEHOLDS, unit, re.IGNORECASE) else "people"


def _plural(thing: str, n: float) -> str:
    """ "bus" -> "buses", "toilet" -> "toilets", "gallon of water" -> "gallons of water"; units kept."""
    thing = thing.strip()
    phrase, of, rest = thing.partition(" of ")
    words = phrase.split()
    last = words[-1] if words else ""
    if n == 1 or len(last) <= 2 or not last.isalpha() or last in _PLURAL_ALREADY:
        return thing
    if last.endswith(("us", "x", "ch", "sh")):
        last += "es"
    elif not last.endswith("s"):
        last += "s"
    return " ".join(words[:-1] + [last]) + (of + rest if of else "")


_PLURAL_ALREADY = {"feet", "people", "staff", "children", "men", "women", "data"}


def worked_figures(question: str, shown: str, limit: int = 2, earlier: Sequence[str] = ()) -> list[Worked]:
    """The figures for the counts in ``question`` and the rates in ``shown`` (the answer's text).
    Only rates on lines that share a word with the question (besides the count) are used: a toilet
    ratio for a toilet question, not the tap ratio quoted beside it. ``earlier``: the conversation's
    questions before it, oldest first - "and how many just go to friends?" after "9500 people in the
    zone..." goes on counting the 9,500 (only a question that carries on - "and/so how many/much" -
    and names no count of its own)."""
    counts = _counts(question)
    if not counts and _CARRIES_ON.match(question):
        counts = next((c for c in map(_counts, reversed(earlier)) if c), [])
    if not counts:
        return []
    asked = set(content_stems(question))
    scored: list[tuple[int, Worked]] = []
    seen: set[str] = set()
    heading = ""
    for line in shown.splitlines():
        if _HEADING.match(line):
            heading = line
            continue
        overlap = len(asked & set(content_stems(line)) - _COUNT_WORDS) or _asks_for_area(question, line)
        if overlap == 0:
            continue
        for count, kind, unit in counts:
            for text, result in _line_figures(line, count, kind, unit):
                if text not in seen:
                    seen.add(text)
                    scored.append((overlap, Worked(text, result)))
            for rate in _other_rates(line, heading):
                named = bool(rate.use) and set(content_stems(rate.use)) <= asked
                if rate.named_only and not named:
                    continue  # a package's item the question did not ask about
                worked = _per_head_figure(rate, count, kind, unit)
                if worked is not None and worked.text not in seen:
                    seen.add(worked.text)
                    scored.append((overlap + (2 if named else 0), worked))
    scored.sort(key=lambda x: -x[0])
    return [w for _, w in scored[:limit]]


_CARRIES_ON = re.compile(r"^\s*(?:and|also|so|then)\b[\s,]*(?:(?:just|only)\s+)?how\s+(?:many|much)\b", re.IGNORECASE)


def _counts(question: str) -> list[tuple[float, str, str]]:
    counts = [(_num(m.group("n")), _kind(m.group("unit")), m.group("unit")) for m in _COUNT.finditer(question)]
    return counts + [(_num(m.group("n")), "people", "people") for m in _PLACE_COUNT.finditer(question)]


_COUNT_WORDS = {"peopl", "person", "household", "famil", "day"}
# "how big does the shelter area need to be?" is answered by "six square feet of space" with no word in common
_AREA_ASK = re.compile(r"\b(?:how\s+(?:big|large)|area|floor\s+space|how\s+much\s+(?:space|room))\b", re.IGNORECASE)
_AREA = re.compile(r"\b(?:square\s+(?:feet|foot|metres?|meters?)|sq\.?\s*(?:ft|m)|m2|m²)\b", re.IGNORECASE)


def _asks_for_area(question: str, line: str) -> int:
    return int(bool(_AREA_ASK.search(question) and _AREA.search(line)))


def _other_rates(line: str, heading: str) -> list[PerHead]:
    """The rates ``rates.py`` reads (in words, said of the subject, bracketed parts, package contents)."""
    return subject_rates(line) + bracketed_parts(line) + package_items(line, heading)


def _per_head_figure(rate: PerHead, count: float, kind: str, unit: str) -> Worked | None:
    if (kind == "households") != (rate.per == "household"):
        return None
    result = count * rate.x
    return Worked(f"{_fmt(count)} {unit} at {rate.said} = {_fmt(result)} {_plural(rate.measure, result)}"
                  f"{rate.tail} ({_fmt(count)} × {_fmt(rate.x)})", result)


def _line_figures(line: str, count: float, kind: str, unit: str):
    for m in _ONE_PER_N.finditer(line):
        if _kind(m.group("unit")) != kind or _num(m.group("n")) == 0:
            continue
        x, n = _num(m.group("x")), _num(m.group("n"))
        result = math.ceil(count / n * x)
        rate = f"{_fmt(x)} {m.group('thing').strip()} per {_fmt(n)} {m.group('unit')}"
        sum_ = f"{_fmt(count)} ÷ {_fmt(n)}" + (f" × {_fmt(x)}" if x != 1 else "")
        yield f"{_fmt(count)} {unit} at {rate} = {_fmt(result)} {_plural(m.group('thing'), result)} ({sum_}, rounded up)", result
    for m in _N_PER_THING.finditer(line):
        if _kind(m.group("unit")) != kind or _num(m.group("n")) == 0:
            continue
        n = _num(m.group("n"))
        result = math.ceil(count / n)
        thing = m.group("thing").strip()
        yield (f"{_fmt(count)} {unit} at {_fmt(n)} {m.group('unit')} per {thing} = {_fmt(result)} "
               f"{_plural(thing, result)} ({_fmt(count)} ÷ {_fmt(n)}, rounded up)"), result
    for m in _PER_HEAD.finditer(line):
        per = m.group("unit").lower()
        if (kind == "households") != (per in ("household", "family")):
            continue
        x = _num(m.group("x"))
        result = count * x
        measure = m.group("measure")
        yield (f"{_fmt(count)} {unit} at {_fmt(x)} {measure} per {per}{m.group('per')} = "
               f"{_fmt(result)} {_plural(measure, result)}{m.group('per')} ({_fmt(count)} × {_fmt(x)})"), result
    for m in _PERCENT.finditer(line):
        if kind != "people":
            continue
        x = _num(m.group("x"))
        result = round(count * x / 100)
        yield (f"{_fmt(x)} percent of {_fmt(count)} {unit} = about {_fmt(result)} {unit} "
               f"{m.group('what')}{m.group('rest').rstrip()} ({_fmt(count)} × {_fmt(x)} / 100)"), result


def render_worked(figures: list[Worked]) -> str:
    return "\n".join([WORKED_LABEL] + [f"- {f.text}" for f in figures]) if figures else ""
