"""How much each word of a question matters for "does this text answer it?".

IDF over the knowledge base's documents (``KBLexicon.idf``): a word every document uses
("need", "report") says little, a word few use ("latrine", "overtime") says much, and a question
word that the knowledge base uses but a passage lacks is the sign that the passage is about
something else. Words the knowledge base never uses are the officer's own situation ("gym",
"tanker", "actually") when they are ordinary English - they weigh ``common_weight`` - or a
specific term it does not know ("temephos") - they weigh as much as the rarest word.

The officer's own counts ("300 people", "120 households") are inputs, not the topic: their unit
words weigh nothing, so "water for 300 people per day" is matched on water and day.

Words outside the clause that asks ("Lab result shows 2 E.coli per 100 ml. *What's the standard
we must meet?*") are the situation around the question: they count ``background_weight`` times
as much. A glossary term ("sitrep", "khola") is covered by the term itself or by its meaning
("situation report", "stream" or "river": all the words of one alternative), since documents use
either; the meaning's words, written into the question by the glossary, weigh nothing of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from neoc_assistant.language.normalize import tokenize
from neoc_assistant.reading.asks import asking_clause
from neoc_assistant.reading.glossary import Glossary
from neoc_assistant.reading.lexicon import KBLexicon
from neoc_assistant.language.words import content_stems


_OWN_COUNT = re.compile(r"\b\d[\d,]*\s+(?P<unit>people|persons|residents|idps|evacuees|households|hhs|families|workers|"
                        r"staff|students|children)\b", re.IGNORECASE)


_PER_ONE = {"households": "household", "hhs": "household", "families": "family"}


def per_head(question: str) -> str:
    """The question as the documents state it: "how much water for 300 people per day?" ->
    "how much water for each person per day?". The documents give rates per person; the officer's
    count is an input (kept in the cached question and used for the worked figure), and read as a
    count it pulls retrieval towards sentences about numbers of people."""
    return _OWN_COUNT.sub(lambda m: "each " + _PER_ONE.get(m.group("unit").lower(), "person"), question)


@dataclass(frozen=True)
class WeightRules:
    common_weight: float = 1.0
    background_weight: float = 0.5


@dataclass
class QuestionWeights:
    weights: dict[str, float] = field(default_factory=dict)  # content stem -> weight
    # a stem also counts as covered when all the stems of one of its alternatives are there
    alternatives: dict[str, list[frozenset[str]]] = field(default_factory=dict)

    def covered(self, stems: set[str]) -> frozenset[str]:
        out = {s for s in self.weights if s in stems}
        for stem, options in self.alternatives.items():
            if stem not in out and any(opt and opt <= stems for opt in options):
                out.add(stem)
        return frozenset(out)


def _weight(token: str, lex: KBLexicon | None, rules: WeightRules) -> float:
    if lex is None:
        return 1.0
    if lex.in_kb(token):
        return lex.idf(token)
    return rules.common_weight if lex.common_or_english(token) else lex.idf(token)


def question_weights(question: str, lex: KBLexicon | None, glossary: Glossary,
                     rules: WeightRules = WeightRules()) -> QuestionWeights:
    """``question``: as written by the officer (not glossed)."""
    asking = set(tokenize(asking_clause(question)))
    own = {w for m in _OWN_COUNT.finditer(question) for w in tokenize(m.group("unit"))}
    out = QuestionWeights()
    for token in tokenize(question):
        if token in own:  # "300 people": the officer's own situation, an input to the answer, not its topic
            continue
        stems = content_stems(token)
        if not stems:
            continue
        weight = _weight(token, lex, rules) * (1.0 if token in asking else rules.background_weight)
        for stem in stems:
            out.weights[stem] = max(out.weights.get(stem, 0.0), weight)
    for term, meaning in glossary.found(question):
        meaning_stems = frozenset(content_stems(meaning))
        for stem in content_stems(term):
            out.alternatives.setdefault(stem, []).extend(
                frozenset(content_stems(option)) for option in glossary.alternatives(meaning))
            if lex is not None and not lex.in_kb(term.lower()):
                heaviest = max((_weight(t, lex, rules) for t in tokenize(meaning)), default=1.0)
                scale = 1.0 if term.lower() in asking else rules.background_weight
                out.weights[stem] = heaviest * scale
        for stem in meaning_stems:
            out.weights.setdefault(stem, 0.0)
    return out
