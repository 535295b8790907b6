"""Does a claim state anything? "Any details about the shift handover briefing" does not.

A small model asked "What must be covered in a duty officer shift handover?" wrote
"The answer to this question is: - Any details about the shift handover briefing [1]."
Every word of it is in the passage, so the support check passes it; but it tells the
officer nothing, and shown as a verified answer it would also be cached as one. A claim
that states nothing is not an answer: it is not shown (an answer with nothing else falls
back to the documents' own sentences).

"States nothing" is read the same way for every question: the claim adds **no content
word** beyond

- the question's own words (a restatement: "A shift handover must cover several things"),
- words about the documents or the answer rather than the world ("as described in the
  documents", "the answer is", "contains", "the following"), and
- when it uses a vague word ("details", "information", "various", "relevant", "steps"),
  the words of the passages' headings: naming the section that holds the answer
  ("details about the handover *briefing*", "several triggers for Level 2 - *Partial
  Activation*") is not giving it. Without a vague word a heading's words are content:
  "Level 3 is Monitoring" answers "What is Level 3 called?".

and no figure (number, time, phone, code) the question does not already hold. For a yes/no
question the question's words do not count as given: "A telephone handover is allowed"
answers "Is a telephone handover allowed?". Word lists: ``language/data/claims.toml``
``[vacuity]``.
"""

from __future__ import annotations

import re
from typing import Iterable

from neoc_assistant.language.normalize import tokenize
from neoc_assistant.language.words import AUXILIARIES, load
from neoc_assistant.verify.clauses import stem
from neoc_assistant.language.facts import extract_facts

_lists = load("claims")["vacuity"]
FRAMING = frozenset(s for w in _lists["framing"] if (s := stem(w)))
VAGUE = frozenset(s for w in _lists["vague"] if (s := stem(w)))
_HEADING_LINE = re.compile(r"^\s*(?:#{1,6}\s+(?P<md>.+)|(?P<crumb>.+ > .+))$", re.MULTILINE)


def _stems(text: str) -> set[str]:
    return {s for t in tokenize(text) if (s := stem(t))}


def heading_words(passages: Iterable[str]) -> set[str]:
    """Stems of the passages' headings ("## 4. Handover briefing", "Title > 4. Level 2 > 4.1 Triggers")."""
    out: set[str] = set()
    for text in passages:
        for m in _HEADING_LINE.finditer(text or ""):
            out |= _stems((m.group("md") or m.group("crumb")).replace(" > ", " "))
    return out


def is_yes_no(question: str) -> bool:
    tokens = tokenize(question)
    return bool(tokens) and tokens[0] in AUXILIARIES


def vacuous(claim: str, question: str, headings: set[str] | frozenset[str] = frozenset()) -> bool:
    """True when the claim adds no content word and no figure to the question (see module docstring)."""
    asked = extract_facts(question).all_numbers()
    facts = extract_facts(claim)
    if facts.phones or (facts.all_numbers() - asked):
        return False
    words = _stems(claim)
    given = FRAMING | VAGUE | (set() if is_yes_no(question) else _stems(question))
    if words & VAGUE:
        given |= headings
    return not (words - given)
