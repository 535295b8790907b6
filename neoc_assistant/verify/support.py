"""Is a claim supported by a passage? Facts first, then wording and meaning.

A claim (one sentence or list item of the model's answer) is supported by a
passage when

1. **every fact** in it - number with its unit, time, phone number, form code
   (``facts.py``) - stands in that passage (numbers the officer typed in the
   question are exempt: they are the officer's own), and
2. **its content is there**, locally (a window of three statements): the
   share of the claim's content words (stemmed, synonyms merged, function
   words dropped) found there reaches ``min_coverage``, the claim is close in
   meaning to one of those statements (cosine of the sentence embeddings, the
   statement read with its heading) by ``min_similarity``, and the two add up
   to ``min_sum`` - or the meaning alone is very close
   (``strong_similarity``); and every figure measures in the passage what it
   measures in the claim (``binding.py``), nothing is negated or turned into
   its opposite (``polarity.py``). A compound claim - two or more clauses with
   figures of their own - is checked clause by clause: each clause's facts in
   its own window, and the wording of the whole claim or of every clause.
3. With ``nli_model_path`` set (a local sentence-transformers cross-encoder
   trained for NLI, none ships), the best statement must also *entail* the
   claim with probability >= ``nli_min_entailment``.

Why two signals: word overlap alone passes "Do not open the shelter" against
"Open the shelter"; similarity alone passes fluent general knowledge that is
on topic. Their thresholds were chosen on the tuning split of
``tests/data/claims_labelled.jsonl`` (``scripts/eval_claims.py`` prints
both splits). The numbers check is what stops the dangerous errors; the
thresholds decide how much rewording is tolerated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from neoc_assistant.language.words import content_stems
from neoc_assistant.settings import VerificationSettings
from neoc_assistant.verify.binding import PassageFigures, misbound
from neoc_assistant.verify.clauses import read_clauses
from neoc_assistant.language.facts import Facts, extract_facts, missing_facts
from neoc_assistant.verify.polarity import conflicting_polarity
from neoc_assistant.verify.sentences import Statement, split_passage


# "According to the documents, ..." / "The passage states that ..." - attribution, not content
_FRAMING = re.compile(
    r"^\s*(?:according to (?:the )?(?:documents?|passages?|sop|guidelines?|manual|text)(?: provided)?,?\s*"
    r"|(?:the )?(?:documents?|passages?|sop|text) (?:says?|states?|notes?|mentions?)(?: that)?,?\s*"
    r"|as (?:stated|mentioned|noted) in (?:the )?(?:documents?|passages?)(?: \[\d+\])?,?\s*"
    r"|(?:the )?answer(?: to (?:this|the|your) question)? is:?\s*(?:[-*\u2022]\s+)?"
    r"|(?:here (?:is|are) (?:the |some )?(?:answer|information|details?|steps?)\s*:?\s*)"
    r"|based on the (?:documents?|passages?|information)(?: provided)?,?\s*)",
    re.IGNORECASE,
)


def claim_core(text: str) -> str:
    """The claim without its attribution ("According to the documents, ...")."""
    return _FRAMING.sub("", text)


WINDOW = 3  # statements around the best match that a claim may draw on


class SentenceEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class EntailmentScorer(Protocol):
    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class SupportThresholds:
    min_coverage: float
    min_similarity: float
    min_sum: float  # coverage + similarity
    strong_similarity: float
    nli_min_entailment: float = 0.5

    @classmethod
    def from_settings(cls, s: VerificationSettings) -> "SupportThresholds":
        return cls(s.min_coverage, s.min_similarity, s.min_sum, s.strong_similarity, s.nli_min_entailment)


@dataclass
class PassageView:
    """A passage cut into statements, with their facts, words and vectors (computed once)."""

    text: str
    statements: list[Statement]
    facts: list[Facts]
    stems: list[set[str]]  # per statement, heading included
    vectors: np.ndarray | None = None  # one row per statement (with its heading)
    _figures: PassageFigures | None = field(default=None, repr=False)

    @property
    def figures(self) -> PassageFigures:
        """Where its figures stand and what they measure (built on first use: only claims need it)."""
        if self._figures is None:
            self._figures = PassageFigures(self.statements)
        return self._figures

    @classmethod
    def of(cls, text: str) -> "PassageView":
        statements = split_passage(text) or [Statement(" ".join(text.split()))]
        return cls(
            text=text,
            statements=statements,
            facts=[extract_facts(s.with_context) for s in statements],
            stems=[set(content_stems(s.with_context)) for s in statements],
        )


@dataclass
class Support:
    supported: bool
    coverage: float = 0.0
    similarity: float = 0.0
    entailment: float | None = None
    missing: list[str] = field(default_factory=list)  # facts not found
    statement: int = -1  # best statement
    conflict: str = ""  # figures bound to other things, or the opposite polarity
    parts: list["Support"] = field(default_factory=list)  # one per clause of a compound claim
    wordless: bool = False  # a clause with nothing but its figure ("..., ideally 5"): no wording to test

    @property
    def score(self) -> float:
        return self.coverage + self.similarity


class SupportChecker:
    """Decides claim-vs-passage support (see module docstring)."""

    def __init__(self, encoder: SentenceEncoder, thresholds: SupportThresholds,
                 entailment: EntailmentScorer | None = None):
        self.encoder = encoder
        self.t = thresholds
        self.entailment = entailment
        self._clause_vectors: dict[str, np.ndarray] = {}

    def prepare(self, passages: Sequence[str]) -> list[PassageView]:
        views = [PassageView.of(p) for p in passages]
        texts = [s.with_context for v in views for s in v.statements]
        if texts:
            vectors = self.encoder.encode(texts)
            row = 0
            for v in views:
                v.vectors = vectors[row:row + len(v.statements)]
                row += len(v.statements)
        return views

    def measure(self, claim: str, claim_vector: np.ndarray, view: PassageView,
                allowed_numbers: set[str] | frozenset[str] = frozenset()) -> Support:
        """The evidence for the claim in this passage (no decision yet).

        Support must be *local*: the claim's facts and words are looked for in a window of
        ``WINDOW`` consecutive statements, not anywhere in the passage - "Level 6" is not
        supported by a "6 hours" three rows away. A compound claim - two or more clauses with
        figures of their own ("Tier 2 within 30 minutes, and Tier 3 within 60 minutes") - is
        measured clause by clause (``parts``): each clause, read with the subject it inherits,
        must be supported on its own, in its own window. Then every clause's figures must
        measure the same things in the passage as in the claim (``binding.py``).
        """
        claim = claim_core(claim)
        clauses = read_clauses(claim)
        if len(clauses) >= 2:
            parts = [self._local(c.text, self._vector(c.text), view, allowed_numbers) for c in clauses]
            for part, clause in zip(parts, clauses):
                part.wordless = clause.wordless
                if not part.missing:
                    part.conflict = conflicting_polarity(clause.text, view.statements[part.statement].text)
            # the wording of the whole claim, wherever its facts are: enough for the wording test
            # (each clause's facts were looked for in its own window)
            best = self._local(claim, claim_vector, view, allowed_numbers, facts_first=False)
            best.missing = sorted({m for p in parts for m in p.missing})
            best.conflict = next((p.conflict for p in parts if p.conflict), "")
            best.parts = parts
        else:
            best = self._local(claim, claim_vector, view, allowed_numbers)
            if not best.missing and best.statement >= 0:
                best.conflict = conflicting_polarity(claim, view.statements[best.statement].text)
        if not best.missing and not best.conflict:
            best.conflict = misbound(clauses, view.figures, allowed_numbers)
        return best

    def _local(self, text: str, vector: np.ndarray, view: PassageView, allowed_numbers: set[str] | frozenset[str],
               facts_first: bool = True) -> Support:
        """The best window for ``text``: the one holding every fact with the highest coverage +
        similarity (or, if none holds them all, the most similar; ``facts_first=False``: the
        most similar, facts or not)."""
        facts = extract_facts(text)
        stems = content_stems(text)
        n = len(view.statements)
        sims = view.vectors @ vector if view.vectors is not None and n else np.zeros(max(n, 1))
        best: Support | None = None
        for center in range(n):
            window = range(max(0, center - WINDOW // 2), min(n, center + WINDOW // 2 + 1))
            missing = missing_facts(facts, [view.facts[j] for j in window], allowed_numbers)
            words = set().union(*(view.stems[j] for j in window))
            coverage = (sum(1 for w in stems if w in words) / len(stems)) if stems else 0.0
            top = max(window, key=lambda j: sims[j])
            cand = Support(False, coverage, float(sims[top]), None, missing, top)
            if best is None or (facts_first and not cand.missing, cand.score) > \
                    (facts_first and not best.missing, best.score):
                best = cand
        return best if best is not None else Support(False, missing=facts.describe())

    def _vector(self, text: str) -> np.ndarray:
        """A clause's sentence vector, cached: the same clause is checked against every passage."""
        vector = self._clause_vectors.get(text)
        if vector is None:
            if len(self._clause_vectors) > 2048:
                self._clause_vectors.clear()
            vector = self._clause_vectors[text] = self.encoder.encode([text])[0]
        return vector

    def decide(self, support: Support, thresholds: SupportThresholds | None = None) -> bool:
        """Supported: no fact missing, no conflict, and the wording close enough - of the whole
        claim, or (a compound claim) of every clause in its own window."""
        t = thresholds or self.t
        if support.missing or support.conflict:
            return False
        if support.parts and not self._close(support, t):
            return all(p.wordless or self._close(p, t) for p in support.parts)
        return self._close(support, t)

    @staticmethod
    def _close(support: Support, t: SupportThresholds) -> bool:
        return support.coverage > 0 and (
            (support.coverage >= t.min_coverage and support.similarity >= t.min_similarity
             and support.coverage + support.similarity >= t.min_sum)
            or support.similarity >= t.strong_similarity
        )

    def check(self, claim: str, claim_vector: np.ndarray, view: PassageView,
              allowed_numbers: set[str] | frozenset[str] = frozenset()) -> Support:
        support = self.measure(claim, claim_vector, view, allowed_numbers)
        support.supported = self.decide(support)
        if support.supported and self.entailment is not None:
            premise = view.statements[support.statement].with_context
            support.entailment = float(self.entailment.entailment([premise], [claim])[0])
            support.supported = support.entailment >= self.t.nli_min_entailment
        return support
