"""The extractive answer: the few sentences of the passages that answer the question.

Used when there is no model, when the model's answer did not survive
verification, and when the model is too busy to answer in time. Every line is
a statement copied from a passage (a sentence, list item or table row - see
``sentences.py``), cited, and labelled as a quotation, so it can be acted on
as the documents' own word.

Scoring, per statement (read with its heading):
``similarity(question, statement) + term_weight * coverage`` where coverage
is the IDF-weighted share of the question's content words found in the
statement or its heading (IDF over the candidate statements, so words every
passage shares count for little), plus a small bonus for the retrieval rank of
its passage. The best statements within ``margin`` of the top score are kept
(at most ``max_sentences``, at most two per passage), best first. Weights were
chosen on the tuning split of the answer sets (``scripts/eval_answers.py``).

The same score tells whether a model's *verified* answer answers the question
at all: true sentences about the wrong thing ("the IRA covers these sectors"
for a toilet-ratio question) pass verification. If the best verified claim
scores ``off_topic_margin`` below the best quote, the quotes are shown instead.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from neoc_assistant.settings import VerificationSettings
from neoc_assistant.verify.support import PassageView, content_stems

QUOTE_LABEL = "Quoted from the documents:"
_MIN_WORDS = 4


@dataclass(frozen=True)
class ExtractiveSettings:
    max_sentences: int = 3
    term_weight: float = 0.5
    rank_bonus: float = 0.02
    margin: float = 0.25
    off_topic_margin: float = 0.25  # a verified answer scoring this far below the best quote is off topic

    @classmethod
    def from_settings(cls, s: VerificationSettings) -> "ExtractiveSettings":
        return cls(max_sentences=s.extractive_max_sentences, term_weight=s.extractive_term_weight,
                   margin=s.extractive_margin, off_topic_margin=s.extractive_off_topic_margin)


@dataclass
class Quote:
    passage: int  # 1-based passage number
    text: str
    score: float


class QuestionScorer:
    """How well a piece of text answers the question (see the module docstring): one formula for
    the passages' statements and for the model's verified claims, so they can be compared."""

    def __init__(self, question_vector: np.ndarray, question: str, views: list[PassageView],
                 settings: ExtractiveSettings):
        self.vector = question_vector
        self.settings = settings
        self.q_stems = set(content_stems(question))
        statements = [st.text for v in views for st in v.statements]
        df = Counter(w for text in statements for w in set(content_stems(text)))
        n = max(len(statements), 1)
        self.idf = {w: math.log(1 + n / df.get(w, 0.5)) for w in self.q_stems}
        self.total = sum(self.idf.values()) or 1.0

    def score(self, text: str, vector: np.ndarray, rank: int = 0) -> float:
        stems = set(content_stems(text))
        coverage = sum(self.idf[w] for w in self.q_stems if w in stems) / self.total
        return float(vector @ self.vector) + self.settings.term_weight * coverage - self.settings.rank_bonus * rank


def pick_quotes(scorer: QuestionScorer, views: list[PassageView]) -> list[Quote]:
    settings = scorer.settings
    scored: list[Quote] = []
    for p, view in enumerate(views):
        for s, statement in enumerate(view.statements):
            # a heading that repeats the question's words ("Activation Levels") must not make an
            # unrelated line under it look like the answer: coverage is of the statement itself
            if len(statement.text.split()) < _MIN_WORDS or view.vectors is None:
                continue
            scored.append(Quote(p + 1, statement.text, scorer.score(statement.text, view.vectors[s], p)))
    if not scored:
        return []
    scored.sort(key=lambda q: -q.score)
    best = scored[0].score
    picked: list[Quote] = []
    per_passage: Counter = Counter()
    seen: set[str] = set()
    for quote in scored:
        if len(picked) >= settings.max_sentences or quote.score < best - settings.margin:
            break
        key = " ".join(quote.text.lower().split())
        if key in seen or per_passage[quote.passage] >= 2:
            continue
        seen.add(key)
        per_passage[quote.passage] += 1
        picked.append(quote)
    return picked


def select_statements(scorer: QuestionScorer, views: list[PassageView], per_passage: int,
                      drop_margin: float) -> list[tuple[int, list[int]]]:
    """The statements worth sending to the model: (passage index, statement indices in passage order).

    Every passage keeps its ``per_passage`` best statements; a passage whose best statement scores
    more than ``drop_margin`` below the best of all adds nothing and is dropped. Fewer prompt tokens
    is the only thing that shortens a CPU model's time to first token.
    """
    best_of: list[tuple[int, list[tuple[float, int]]]] = []
    for p, view in enumerate(views):
        if view.vectors is None or not view.statements:
            continue
        scored = sorted(((scorer.score(st.text, view.vectors[i]), i) for i, st in enumerate(view.statements)),
                        reverse=True)
        best_of.append((p, scored))
    if not best_of:
        return []
    top = max(scored[0][0] for _, scored in best_of)
    return [(p, sorted(i for _, i in scored[:per_passage]))
            for p, scored in best_of if scored[0][0] >= top - drop_margin]


def render_statements(view: PassageView, indices: list[int]) -> str:
    """The chosen statements as the model sees them: under their headings, one per line."""
    lines: list[str] = []
    heading = None
    for i in indices:
        statement = view.statements[i]
        if statement.heading != heading:
            heading = statement.heading
            if heading:
                lines.append(f"{heading}:")
        lines.append(f"- {statement.text}")
    return "\n".join(lines)


def render_quotes(quotes: list[Quote]) -> str:
    lines = [QUOTE_LABEL]
    for q in quotes:
        text = q.text if q.text.endswith((".", "!", "?")) else q.text + "."
        lines.append(f"- \u201c{text[:-1]}\u201d{text[-1]} [{q.passage}]")
    return "\n".join(lines)
