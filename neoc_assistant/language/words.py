"""The word lists the text-reading stages share, loaded once from ``language/data/*.toml``.

Why data files: the lists are knowledge about English and about how officers
ask, not logic - they are reviewed and grown (from evaluation splits) apart
from the code, and each file says what its lists are for. Derived tables
(stemmed synonyms, antonym pairs) are built here, once, at import.

Users: the response-cache guard and lexicon (``cache/``), BM25 query terms
(``retrieve/lexical.py``), and claim checking (``verify/``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from neoc_assistant.language.devanagari import is_word
from neoc_assistant.language.normalize import light_stem, tokenize

DATA_DIR = Path(__file__).resolve().parent / "data"


def load(name: str) -> dict:
    """One data file (``data/<name>.toml``) as a dict."""
    with open(DATA_DIR / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh)


_stop = load("stopwords")
BM25_STOPWORDS = frozenset(_stop["bm25"])
QUESTION_STOPWORDS = frozenset(_stop["question"])
ACRONYM_JOINERS = frozenset(_stop["acronym"])
EXPANSION_JOINERS = frozenset(_stop["expansion_joiners"])

_questions = load("question_words")
NEGATORS = frozenset(_questions["negators"])
DIRECTIONAL = frozenset(_questions["directional"])
PARTICLES = frozenset(_questions["particles"])
AUXILIARIES = frozenset(_questions["auxiliaries"])
CODE_HEADS = frozenset(_questions["code_heads"])
WH_SINGLE: dict[str, str] = dict(_questions["wh"])
LIGHT = frozenset(w if ":" in w else light_stem(w) for w in _questions["light"])

_units = load("units")
TIME_UNITS = frozenset(_units["time_units"])
UNITS: dict[str, str] = dict(_units["units"])
AMBIGUOUS_UNITS: dict[str, str] = dict(_units["ambiguous_units"])

_synonyms = load("synonyms")
SYNONYMS: dict[str, str] = {
    light_stem(member): light_stem(canon) for canon, members in _synonyms["synonyms"].items() for member in members
}
PHRASES: list[tuple[str, list[str]]] = list(_synonyms["phrases"].items())

_labels = load("labels")
GROUP_WORDS = frozenset(_labels["groups"])
TIME_WORDS = frozenset(_labels["time"])
HAZARD_SEED = frozenset(_labels["hazards"])

_antonyms = load("antonyms")
ANTONYMS = frozenset(frozenset((light_stem(x), light_stem(y))) for x, y in _antonyms["pairs"])
NEGATIVE_PREFIXES = tuple(_antonyms["negative_prefixes"])


def is_antonym(x: str, y: str) -> bool:
    """Two (stemmed) words that are opposites: a listed pair, or ``un``+word, ``de``+word, ..."""
    if frozenset((x, y)) in ANTONYMS:
        return True
    for prefix in NEGATIVE_PREFIXES:
        if (x == prefix + y or y == prefix + x) and min(len(x), len(y)) >= 3:
            return True
    return False


def content_stems(text: str) -> list[str]:
    """Canonical content words: what "the same content" is measured on."""
    out = []
    for tok in tokenize(text):
        if not is_word(tok) or len(tok) < 2 or tok in QUESTION_STOPWORDS:
            continue
        stem = light_stem(tok)
        out.append(SYNONYMS.get(stem, stem))
    return out
