"""Question normalisation: tokens and morphology for the exact-match key, the embedded text and the guard.

Two levels, each stricter about what it may change:

* ``tokenize`` - lower-case word and number tokens: Unicode NFKC, curly quotes,
  contractions expanded (``can't`` -> ``can not``, ``what's`` -> ``what is``,
  possessive ``'s`` dropped), thousands separators removed (``5,000`` -> ``5000``),
  numbers canonical (``07:00`` -> ``7:00``, ``6.0`` -> ``6``), number words to
  digits (``five`` -> ``5``), hyphens and punctuation split. Decimal points are
  kept, so ``6.2`` never becomes ``62``; a letter glued to a number stays a code
  (``215A`` -> ``215a``) unless it is a unit (``24h`` -> ``24 h``).
* what never changes an answer - courtesy, introductions, filler - is removed
  in ``discourse.py``, which also builds the **exact-match key**
  (``normalize_key``: tokens of the question without them). It never corrects
  spelling or applies synonyms, so an exact hit needs no guard.

``light_stem`` and ``canonical_spelling`` are the morphology used by the guard
(inflections only, plus ``-ation``/``-ate`` and British/American spelling);
they are deliberately weaker than a Porter stemmer, which would merge
``manager``/``management`` and ``officer``/``office``.
"""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import OSA

# -- tokens -------------------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})

_CONTRACTIONS = [
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bshan'?t\b"), "shall not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (re.compile(r"\b(what|where|who|when|how|why|which|that|there|it|here)'s\b"), r"\1 is"),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will"),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would"),
    (re.compile(r"\bi'm\b"), "i am"),
    (re.compile(r"\b(\w+)'s\b"), r"\1"),  # possessive
    (re.compile(r"\b(\w+s)'(?=\s|$)"), r"\1"),  # plural possessive
]

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TOKEN = re.compile(r"\d+(?:[.:]\d+)*(?:[a-z]+)?|[a-z]+")
_NUMBER = re.compile(r"^\d+(?:[.:]\d+)*$")

# Units that may be glued to a number ("24h", "500m", "10mm"); other glued letters form a code ("215a").
GLUED_UNITS = {
    "h", "hr", "hrs", "hour", "hours", "min", "mins", "m", "km", "cm", "mm", "kg", "g", "l", "ml",
    "mhz", "khz", "pm", "am", "st", "nd", "rd", "th", "s", "sec", "secs", "d", "days", "x",
}

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000",
}
ORDINAL_WORDS = {
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
}


def canonical_number(text: str) -> str:
    """``07`` -> ``7``, ``6.0`` -> ``6``, ``6.50`` -> ``6.5``, ``07:00`` -> ``7:00``."""
    if ":" in text:
        parts = text.split(":")
        return ":".join([parts[0].lstrip("0") or "0"] + parts[1:])
    if "." in text:
        head, _, tail = text.partition(".")
        tail = tail.rstrip("0")
        head = head.lstrip("0") or "0"
        return f"{head}.{tail}" if tail else head
    return text.lstrip("0") or "0"


def is_number(token: str) -> bool:
    return bool(_NUMBER.match(token)) or bool(re.match(r"^\d+(st|nd|rd|th)$", token))


def tokenize(text: str) -> list[str]:
    """Lower-case word/number tokens (see module docstring)."""
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES).lower()
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = _THOUSANDS.sub("", text)
    text = text.replace("%", " percent ").replace("\u00b0c", " degree ").replace("\u00b0", " degree ")
    out: list[str] = []
    for raw in _TOKEN.findall(text):
        if raw[0].isdigit():
            m = re.match(r"^(\d+(?:[.:]\d+)*)([a-z]+)?$", raw)
            if not m:
                out.append(raw)
                continue
            num, suffix = canonical_number(m.group(1)), m.group(2)
            if suffix is None:
                out.append(num)
            elif suffix in ("st", "nd", "rd", "th") and "." not in num and ":" not in num:
                out.append(num + suffix)  # ordinal 1st/2nd
            elif suffix in ("am", "pm") and ":" not in num and "." not in num and int(num) <= 12:
                hour = int(num) % 12 + (12 if suffix == "pm" else 0)
                out.append(f"{hour}:00")
            elif suffix in GLUED_UNITS:
                out.extend([num, suffix])
            elif len(suffix) == 1:
                out.append(num + suffix)  # a code such as ICS 215A
            else:
                out.extend([num, suffix])
            continue
        if raw in NUMBER_WORDS:
            out.append(NUMBER_WORDS[raw])
        elif raw in ORDINAL_WORDS:
            out.append(ORDINAL_WORDS[raw])
        else:
            out.append(raw)
    # "2 pm" / "9 am" written apart
    merged: list[str] = []
    for tok in out:
        if tok in ("am", "pm") and merged and merged[-1].isdigit() and int(merged[-1]) <= 12:
            hour = int(merged[-1]) % 12 + (12 if tok == "pm" else 0)
            merged[-1] = f"{hour}:00"
            continue
        merged.append(tok)
    return merged


# -- morphology -------------------------------------------------------------------------------

_SPELLING = {
    "center": "centre", "centers": "centres", "meter": "metre", "meters": "metres", "liter": "litre",
    "liters": "litres", "kilometer": "kilometre", "kilometers": "kilometres", "color": "colour",
    "behavior": "behaviour", "program": "programme", "programs": "programmes", "defense": "defence",
    "gray": "grey", "fiber": "fibre", "theater": "theatre", "labor": "labour", "favor": "favour",
    "neighbor": "neighbour", "neighbors": "neighbours", "honor": "honour", "catalog": "catalogue",
    "diarrhea": "diarrhoea", "traveling": "travelling", "traveler": "traveller", "travelers": "travellers",
    "tire": "tyre", "tires": "tyres", "enroll": "enrol", "fulfill": "fulfil", "aging": "ageing",
    "pediatric": "paediatric", "hemorrhage": "haemorrhage", "anemia": "anaemia", "mold": "mould",
    "plow": "plough", "sulfur": "sulphur", "ax": "axe", "check-out": "checkout", "percent": "percent",
    "winterization": "winterisation", "demobilisation": "demobilization", "organization": "organisation",
}
_IZE_EXCEPTIONS = {"size", "sizes", "sized", "prize", "prizes", "seize", "seized", "capsize", "downsize"}


def canonical_spelling(word: str) -> str:
    if word in _SPELLING:
        return _SPELLING[word]
    if word not in _IZE_EXCEPTIONS and len(word) > 5:
        m = re.match(r"^(\w{3,})iz(e|es|ed|ing|ation|ations|er|ers)$", word)
        if m:
            return f"{m.group(1)}is{m.group(2)}"
        m = re.match(r"^(\w{2,})yz(e|es|ed|ing)$", word)
        if m:
            return f"{m.group(1)}ys{m.group(2)}"
    return word


_VOWELS = set("aeiou")


def _undouble(stem: str) -> str:
    if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz" and stem[-1] not in _VOWELS:
        return stem[:-1]
    return stem


def light_stem(word: str) -> str:
    """Inflectional stem (plural, -ed, -ing, -ly) plus -ation/-ate; final 'e' dropped.

    ``activation``/``activate``/``activated`` -> ``activat``; ``deactivate`` -> ``deactivat``;
    ``shelters`` -> ``shelter``; ``manager`` and ``management`` stay apart.
    """
    w = canonical_spelling(word)
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("ches", "shes", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ed") and len(w) > 4 and not w.endswith("eed"):
        w = _undouble(w[:-2])
    elif w.endswith("ing") and len(w) > 5:
        w = _undouble(w[:-3])
    if w.endswith("ation") and len(w) > 7:
        w = w[:-5] + "at"
    elif w.endswith("ly") and len(w) > 5 and not w.endswith(("ply", "ally")):
        w = w[:-2]
    elif w.endswith("ally") and len(w) > 6:
        w = w[:-4] + "al"
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def damerau_levenshtein(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance (an adjacent transposition costs 1, no substring is edited
    twice), or ``limit + 1`` for anything above ``limit``: rapidfuzz's ``OSA``, which stops early too.
    Not its unrestricted ``DamerauLevenshtein``: that one scores ``ca``/``abc`` 2, the typo guard 3."""
    return OSA.distance(a, b, score_cutoff=limit)


def is_transposition(a: str, b: str) -> bool:
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def is_substitution(a: str, b: str) -> bool:
    """Same length, letters differ somewhere, and not just one adjacent swap (``humla``/``jumla``)."""
    return len(a) == len(b) and a != b and not is_transposition(a, b)
