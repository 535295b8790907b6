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

    @classmethod
    def from_settings(cls, s: VerificationSettings) -> "ExtractiveSettings":
        return cls(max_sentences=s.extractive_max_sentences, term_weight=s.extractive_term_weight,
                   margin=s.extractive_margin)


@dataclass
class Quote:
    passage: int  # 1-based passage number
    text: str
    score: float


def pick_quotes(question_vector: np.ndarray, question: str, views: list[PassageView],
                settings: ExtractiveSettings) -> list[Quote]:
    q_stems = set(content_stems(question))
    candidates: list[tuple[int, int]] = [(p, s) for p, v in enumerate(views) for s in range(len(v.statements))]
    if not candidates:
        return []
    # coverage is of the statement itself: a heading that repeats the question's words
    # ("Activation Levels") must not make an unrelated line under it look like the answer
    candidates = [(p, s) for p, s in candidates if len(views[p].statements[s].text.split()) >= _MIN_WORDS]
    if not candidates:
        return []
    stems_of = {(p, s): set(content_stems(views[p].statements[s].text)) for p, s in candidates}
    df = Counter(w for stems in stems_of.values() for w in stems)
    n = len(candidates)
    idf = {w: math.log(1 + n / df.get(w, 0.5)) for w in q_stems}
    total = sum(idf.values()) or 1.0
    scored: list[Quote] = []
    for p, s in candidates:
        view = views[p]
        sim = float(view.vectors[s] @ question_vector) if view.vectors is not None else 0.0
        coverage = sum(idf[w] for w in q_stems if w in stems_of[(p, s)]) / total
        score = sim + settings.term_weight * coverage - settings.rank_bonus * p
        scored.append(Quote(p + 1, view.statements[s].text, score))
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


def render_quotes(quotes: list[Quote]) -> str:
    lines = [QUOTE_LABEL]
    for q in quotes:
        text = q.text if q.text.endswith((".", "!", "?")) else q.text + "."
        lines.append(f"- \u201c{text[:-1]}\u201d{text[-1]} [{q.passage}]")
    return "\n".join(lines)
