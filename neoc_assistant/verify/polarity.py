"""Does a claim say the opposite of the statement that best matches it?

A claim that negates what its best-matching statement says ("do not use the lift" against
"use the lift"), uses a word's opposite ("closed" for "open", "formal" for "informal"), or swaps
who does what ("prepared by A and given to B" for "prepared by B and given to A" - the cache
guard's relation check) is not supported by it, however close its words are. (Moved unchanged
from ``binding.py``, which now only binds figures.)
"""

from __future__ import annotations

import re

from neoc_assistant.reading.guard import Guard, relation_swap
from neoc_assistant.language.devanagari import is_word
from neoc_assistant.language.normalize import light_stem, tokenize
from neoc_assistant.language.words import NEGATORS, QUESTION_STOPWORDS, is_antonym

_RELATIONS = Guard()  # only its reading of "by X" / "to Y" objects is used: no KB vocabulary needed


# "no more than 30 minutes" is a limit, not a negation
_COMPARATIVE = re.compile(r"\b(?:no|not)\s+(?:more|less|later|earlier|fewer|longer|greater|higher|lower)\s+than\b",
                          re.IGNORECASE)


def _negated(tokens: list[str]) -> tuple[set[str], set[str]]:
    """(stems under a negator - the two content words after it -, all content stems)."""
    negated: set[str] = set()
    stems: set[str] = set()
    pending = 0
    for t in tokens:
        if t in NEGATORS:
            pending = 2
            continue
        if is_word(t) and t not in QUESTION_STOPWORDS:
            stem = light_stem(t)
            stems.add(stem)
            if pending:
                negated.add(stem)
                pending -= 1
    return negated, stems


def conflicting_polarity(claim: str, statement: str) -> str:
    """'negation' or 'antonym: x/y' when the claim says the opposite of the statement, else ''.

    A negation conflicts only where it bears on shared words: "do not use the lift" vs "use
    the lift" conflicts; a "no" elsewhere in the statement ("no resistance") does not.
    """
    c_tokens, s_tokens = tokenize(_COMPARATIVE.sub(" ", claim)), tokenize(_COMPARATIVE.sub(" ", statement))
    c_neg, c_all = _negated(c_tokens)
    s_neg, s_all = _negated(s_tokens)
    if (c_neg & (s_all - s_neg)) or (s_neg & (c_all - c_neg)):
        return "negation"
    for x in c_all - s_all:
        for y in s_all - c_all:
            if is_antonym(x, y):
                return f"antonym: {x}/{y}"
    swap = relation_swap(_RELATIONS.features(claim), _RELATIONS.features(statement))
    if swap:
        return f"roles swapped: {swap}"
    return ""
