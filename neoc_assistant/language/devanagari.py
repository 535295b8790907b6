"""Devanagari (Nepali) text: what a word is, one spelling of it, and its stem.

Nepal's EOCs write circulars and SOPs in Nepali. Three properties of the
script break tools written for English, and this module is the one place
that knows them (the question tokenizer, the sentence splitter, the search
index's text and its tokens all call it):

* **A word is letters *and* signs.** A vowel sign (``ा`` of ``पानी``), the
  virama (``्``) and anusvara/candrabindu are combining marks (Unicode
  categories Mc/Mn), so ``str.isalpha``, Python's ``\\w`` and SQLite's
  ``unicode61`` all cut ``पानी`` into ``प`` + ``न``; ``WORD_CHARS`` keeps them
  inside the word, and ``is_word`` is the ``isalpha`` that knows it.
* **One word, several encodings.** A nukta letter typed precomposed or as
  letter + nukta, and the zero-width (non-)joiners some keyboards put inside
  conjuncts, look the same and compare different; ``fold`` makes one
  spelling (NFC, joiners removed) and reads Devanagari digits
  (``१५`` -> ``15``) as the ASCII digits every number check compares.
* **Postpositions are written joined to the noun** (``स्थानमा`` "at the
  place", ``व्यक्तिलाई`` "to a person", ``पानीको`` "of water"), so a question's
  ``पानी`` would never meet the document's ``पानीको``; ``stem`` strips the
  common ones (``data/nepali.toml``), as ``light_stem`` strips English
  inflections.

Text without Devanagari is returned untouched by every function here, so
English behaviour cannot change through this module.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path

# Letters, vowel signs, virama, nukta, anusvara...: U+0900-U+0963 and U+0971-U+097F. Not the
# danda and double danda (U+0964/5, sentence ends), the digits (U+0966-F, read as numbers) or
# the abbreviation sign (U+0970).
WORD_CHARS = "\u0900-\u0963\u0971-\u097f"
_ANY = re.compile(r"[\u0900-\u097f]")
_WORD = re.compile(rf"^[{WORD_CHARS}]+$")
# The combining marks among them: what SQLite's unicode61 must be told are part of a word.
COMBINING_MARKS = "".join(
    ch for ch in map(chr, range(0x0900, 0x0980)) if unicodedata.category(ch) in ("Mn", "Mc")
)
DANDA = "\u0964"
DOUBLE_DANDA = "\u0965"
_DIGITS = str.maketrans("\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f", "0123456789")
_JOINERS = re.compile(r"(?<=[\u0900-\u097f])[\u200c\u200d]+|[\u200c\u200d]+(?=[\u0900-\u097f])")

with open(Path(__file__).resolve().parent / "data" / "nepali.toml", "rb") as _fh:
    _DATA = tomllib.load(_fh)
# longest first, so "हरूलाई" is tried before "लाई"
SUFFIXES = tuple(sorted(_DATA["suffixes"], key=len, reverse=True))
MIN_STEM = int(_DATA["min_stem"])
ABBREVIATIONS = frozenset(_DATA["abbreviations"])


def has_devanagari(text: str) -> bool:
    return bool(_ANY.search(text or ""))


def mostly_devanagari(text: str) -> bool:
    """More Devanagari characters than Latin letters: a Nepali question, English terms (EOC, ICS) mixed in or not."""
    nepali = len(_ANY.findall(text or ""))
    return nepali > 0 and nepali >= len(re.findall(r"[A-Za-z]", text))


def fold(text: str) -> str:
    """One spelling of Devanagari text (NFC, no zero-width joiners, ASCII digits); other text unchanged."""
    if not has_devanagari(text):
        return text
    return _JOINERS.sub("", unicodedata.normalize("NFC", text)).translate(_DIGITS)


def is_devanagari_word(token: str) -> bool:
    """A token made of Devanagari letters and signs only, with at least one letter."""
    return bool(_WORD.match(token)) and any(unicodedata.category(c).startswith("L") for c in token)


def is_word(token: str) -> bool:
    """``str.isalpha`` that counts a Devanagari word (letters + vowel signs) as a word."""
    return token.isalpha() or is_devanagari_word(token)


def stem(word: str) -> str:
    """The word without its joined postposition(s) (``व्यक्तिहरूलाई`` -> ``व्यक्ति``); others unchanged.

    At most two are stripped (a plural marker, then a case ending) and only while at least
    ``MIN_STEM`` characters are left, so short words (``आमा``, ``सीमा``) keep their ending.
    """
    if not is_devanagari_word(word):
        return word
    for _ in range(2):
        for suffix in SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
                word = word[: -len(suffix)]
                break
        else:
            break
    return word


_WORDS = re.compile(rf"[{WORD_CHARS}]+")


def index_form(text: str) -> str:
    """What the search index holds and is asked (``store/fulltext.py``): ``fold`` + each Devanagari
    word's ``stem``, so "पानीको" in a document and "पानी" in a question are one term."""
    if not has_devanagari(text):
        return text
    return _WORDS.sub(lambda m: stem(m.group(0)), fold(text))
