"""Do the claim's figures belong to the things the claim says they belong to?

The facts check (``facts.py``) only asks whether a figure is *in* the passage.
Small models swap figures between neighbours: "Level 2 within 4 hours, Level 1
within 2 hours", "warning level 8.4 m, danger level 7.5 m" - every number is
in the passage, attached to something else. Two checks catch this:

1. **co-location** - the figures of one clause must stand together in one
   statement of the passage (one table row, one sentence, or two adjacent
   sentences). "Level 2 ... 4 hours" fails: "2" and "4 hours" are in
   different rows.
2. **context** - the words right before a figure in the claim that tell it
   apart from the claim's other figures ("warning" for 8.4, "danger" for 7.5)
   must also be right before it in the passage, unless they are not right
   before *any* figure of the same kind there (then the passage phrases it
   differently and this check abstains).

Negation, antonyms and swapped roles (``conflicting_polarity``): a claim that
negates what its best-matching statement says, uses a word's opposite
("closed" for "open", "formal" for "informal"), or swaps who does what
("prepared by A and given to B" for "prepared by B and given to A" - the
cache guard's relation check) is not supported by it.
"""

from __future__ import annotations

import re

from neoc_assistant.reading.guard import Guard, relation_swap
from neoc_assistant.language.normalize import is_number, light_stem, tokenize
from neoc_assistant.language.words import CODE_HEADS, NEGATORS, QUESTION_STOPWORDS, is_antonym
from neoc_assistant.verify.facts import fact_tokens, unit_of
from neoc_assistant.verify.sentences import Statement

_RELATIONS = Guard()  # only its reading of "by X" / "to Y" objects is used: no KB vocabulary needed
_CLAUSE = re.compile(r"[;,]|\b(?:and|while|whereas|but|whilst)\b", re.IGNORECASE)
_CONTEXT_WORDS = 3
_LOOKBACK = 6
_COLOCATION = 3  # statements (sentence, row) a clause's figures may be spread over


def _context(tokens: list[str], i: int) -> set[str]:
    """Content stems just before the number at ``tokens[i]`` (stopping at another number)."""
    out: set[str] = set()
    j = i - 1
    while j >= 0 and i - j <= _LOOKBACK and len(out) < _CONTEXT_WORDS:
        w = tokens[j]
        if is_number(w):
            break
        if w.isalpha() and w not in QUESTION_STOPWORDS and not unit_of(w, True):
            out.add(light_stem(w))
        j -= 1
    return out


def _numbers_with_context(text: str) -> list[tuple[str, set[str], str | None]]:
    """(number, the content stems before it, its unit or None)."""
    tokens = fact_tokens(text)
    return [(t, _context(tokens, i), unit_of(tokens[i + 1], True) if i + 1 < len(tokens) else None)
            for i, t in enumerate(tokens) if is_number(t)]


def clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE.split(text) if c and c.strip()]


def _labelled(text: str) -> set[str]:
    """Figures with the identifier word right before them: "level:2", "ward:5", "ics:214", "4"."""
    tokens = fact_tokens(text)
    out = set()
    for i, t in enumerate(tokens):
        if is_number(t):
            head = tokens[i - 1] if i and tokens[i - 1] in CODE_HEADS | {"ics"} else ""
            out.add(f"{head}:{t}" if head else t)
    return out


def misbound_figures(claim: str, statements: list[Statement], allowed: set[str]) -> str:
    """Why the claim's figures are attached to the wrong things ("" if they are not)."""
    texts = [st.text for st in statements]
    stmt_numbers = [_numbers_with_context(t) for t in texts]
    stmt_sets = [_labelled(t) for t in texts]
    for clause in clauses(claim):
        wanted = {f for f in _labelled(clause) if f.rsplit(":", 1)[-1] not in allowed}
        if len(wanted) < 2:
            continue
        together = False
        for i, st in enumerate(statements):
            # a table row stands alone; prose may spread a clause over a few sentences
            span = 1 if st.kind == "row" else _COLOCATION
            if wanted <= set().union(*stmt_sets[i:i + span]):
                together = True
                break
        if not together:
            return f"figures {', '.join(sorted(w.replace(':', ' ').strip() for w in wanted))} are not stated together"
    claim_numbers = [x for x in _numbers_with_context(claim) if x[0] not in allowed]
    for idx, (number, ctx, unit) in enumerate(claim_numbers):
        if unit is None:
            continue  # codes and levels: the co-location check covers them
        others = set().union(*(c for k, (_, c, _) in enumerate(claim_numbers) if k != idx))
        distinctive = ctx - others
        if not distinctive:
            continue
        own = max((len(c & distinctive) for nums in stmt_numbers for n, c, u in nums if n == number), default=0)
        rival = max((len(c & distinctive) for nums in stmt_numbers for n, c, u in nums
                     if n != number and u == unit), default=0)
        if rival > own:
            return f"'{number}' belongs to something else in the passage"
    return ""


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
        if t.isalpha() and t not in QUESTION_STOPWORDS:
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
