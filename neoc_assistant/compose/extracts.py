"""The units an answer can be composed of, and how well each answers the question.

An **extract** is a run of consecutive statements of one passage (``verify/sentences.py``: a
sentence, a list item, a table row), shown with the context it needs: its heading, a list's lead-in
sentence, a numbered item's step number, a table row's column names. Why runs and not the best
single sentences: the sentence that answers often scores below its neighbours (a heading-like line,
a caption, the next rule), and scattered sentences lose the list or table they belong to. Three
units were measured on the tune splits (``scripts/eval_reader.py``): scattered best sentences, the
best run within one paragraph/list/table (``window``), and the whole passage when short
(``passage``); the chosen one is ``reader.unit``.

The score of an extract is ``cosine + term_weight * coverage + ask_weight * supplies
- length_penalty * (statements - 1) - rank_penalty * passage_rank``: the best statement's cosine to
the question, the weighted share of the question's content words the extract holds with its
heading and lead-in (weights: ``reading/weights.py``), and whether it gives what the question asks
for (a figure, a time, a person, a contact: ``reading/asks.py``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from neoc_assistant.reading.asks import Ask, names_codes, supplies
from neoc_assistant.reading.weights import QuestionWeights
from neoc_assistant.language.words import content_stems
from neoc_assistant.verify.support import PassageView

_MIN_WORDS = 3  # a statement shorter than this is a label, not an answer on its own


@dataclass(frozen=True)
class ExtractWeights:
    term_weight: float = 0.5
    ask_weight: float = 0.3
    length_penalty: float = 0.06
    rank_penalty: float = 0.02
    max_statements: int = 3
    unit: str = "window"  # window | scattered | passage


@dataclass
class Extract:
    passage: int  # index into the passages the reader was given
    statements: tuple[int, ...]  # statement indices in that passage, in document order
    score: float = 0.0
    coverage: float = 0.0
    similarity: float = 0.0
    supplies: bool = True  # gives what the question asks for
    covered: frozenset[str] = field(default_factory=frozenset)  # question stems it holds

    @property
    def key(self) -> tuple[int, tuple[int, ...]]:
        return self.passage, self.statements

    def overlaps(self, other: "Extract") -> bool:
        return self.passage == other.passage and bool(set(self.statements) & set(other.statements))


class ExtractScorer:
    """Scores extracts of the passages against one question. ``words``: each question stem's weight
    and alternatives (``reading/weights.py``); without them, IDF over the passages' statements."""

    def __init__(self, question: str, question_vector: np.ndarray, ask: Ask, views: list[PassageView],
                 weights: ExtractWeights, words: QuestionWeights | None = None, names: tuple[str, ...] = ()):
        """``names``: words the question asks about by name; an extract that lacks one does not
        supply the answer."""
        self.vector = question_vector
        self.ask = ask
        self.views = views
        self.weights = weights
        if words is None:
            q_stems = set(content_stems(question))
            statements = [st for v in views for st in v.statements]
            df = Counter(w for st in statements for w in set(content_stems(st.with_context + " " + st.lead)))
            n = max(len(statements), 1)
            words = QuestionWeights({w: math.log(1 + n / df.get(w, 0.5)) for w in q_stems})
        self.words = words
        self.idf = words.weights
        self.total = sum(self.idf.values()) or 1.0
        self.counted = frozenset(content_stems(" ".join(ask.counted)))
        self.names = frozenset(s for n in names for s in content_stems(n))
        self.name_words = tuple(names)
        self._sims = [v.vectors @ question_vector if v.vectors is not None and len(v.statements) else np.zeros(0)
                      for v in views]
        self._codes_named = [names_codes(ask, v.text) for v in views]
        self._stems = [[set(content_stems(st.with_context + " " + st.lead)) for st in v.statements] for v in views]

    def stems_of(self, extract: Extract) -> set[str]:
        return set().union(*(self._stems[extract.passage][i] for i in extract.statements))

    def score_text(self, text: str, vector: np.ndarray) -> float:
        """The same score for any text (a model's verified claim), as a one-statement extract."""
        covered = self.words.covered(set(content_stems(text)))
        coverage = sum(self.idf[s] for s in covered) / self.total
        return float(vector @ self.vector) + self.weights.term_weight * coverage

    def text_of(self, passage: int, statements: tuple[int, ...]) -> str:
        view = self.views[passage]
        return " ".join(view.statements[i].text for i in statements)

    def measure(self, passage: int, statements: tuple[int, ...]) -> Extract:
        w = self.weights
        stems = set().union(*(self._stems[passage][i] for i in statements))
        covered = self.words.covered(stems)
        coverage = sum(self.idf[s] for s in covered) / self.total
        similarity = float(max(self._sims[passage][i] for i in statements))
        # a glossary alternative names the thing too: "HHs" is answered by "households"
        gives = self._codes_named[passage] and supplies(self.ask, self.text_of(passage, statements)) and (
            (self.counted | self.names) <= stems | covered)
        score = (similarity + w.term_weight * coverage + w.ask_weight * gives
                 - w.length_penalty * (len(statements) - 1) - w.rank_penalty * passage)
        return Extract(passage, statements, score, coverage, similarity, gives, covered)

    def candidates(self) -> list[Extract]:
        """Every extract of the configured unit, best first."""
        unit = self.weights.unit
        out: list[Extract] = []
        for p, view in enumerate(self.views):
            if view.vectors is None or not view.statements:
                continue
            if unit == "passage" and len(view.statements) <= 2 * self.weights.max_statements:
                out.append(self.measure(p, tuple(range(len(view.statements)))))
                continue
            for start, run in _runs(view, 1 if unit == "scattered" else self.weights.max_statements):
                out.append(self.measure(p, run))
        out.sort(key=lambda e: -e.score)
        return out


def _runs(view: PassageView, longest: int):
    """Consecutive statements within one block (paragraph, list, table) - a run never mixes a
    table's rows with the paragraph after it - of 1..``longest`` statements, skipping runs that
    start or end on a label-like fragment."""
    statements = view.statements
    n = len(statements)
    for start in range(n):
        for length in range(1, longest + 1):
            end = start + length
            if end > n or statements[end - 1].block != statements[start].block:
                break
            if len(statements[start].text.split()) < _MIN_WORDS and length == 1:
                continue
            yield start, tuple(range(start, end))
