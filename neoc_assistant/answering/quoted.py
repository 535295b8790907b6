"""The answer in the documents' own words: the reader's composition, rendered and cited.

Used when there is no model, when the model chose the extracts (the model reader), when what the
model wrote did not survive verification or did not answer, and when every model slot is busy;
the notice says which.
"""

from __future__ import annotations

from dataclasses import dataclass

from neoc_assistant.answer import Answer
from neoc_assistant.answering.sources import source_dict
from neoc_assistant.compose.extracts import ExtractScorer
from neoc_assistant.compose.quotes import quoted_statements, render_extracts
from neoc_assistant.compose.reader import Composition
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.verify.support import PassageView


@dataclass(frozen=True)
class Composed:
    """The reader's work on one question: the passages read, cut into statements (``views``), the
    scorer that ranked their extracts, and the composition chosen."""

    passages: list[Hit]
    views: list[PassageView]
    scorer: ExtractScorer
    composition: Composition

    def with_composition(self, composition: Composition) -> "Composed":
        return Composed(self.passages, self.views, self.scorer, composition)


def quoted_answer(question: str, composed: Composed, notice: str, model_claims: dict | None = None) -> Answer:
    """``model_claims``: the verification record of what the model wrote instead, kept for the
    record (none of it shown)."""
    extracts = composed.composition.extracts
    number_of: dict[int, int] = {}
    for e in extracts:
        number_of.setdefault(e.passage, len(number_of) + 1)
    shown = quoted_statements(extracts, composed.views)
    claims = [{"text": text, "supported": True, "sources": [number_of[p]], "quoted": True}
              for p, texts in shown.items() for text in texts]
    if model_claims:
        written = [dict(c) for c in model_claims.get("claims", [])]
        for c in written:
            if c.get("supported"):
                c["reason"] = "true, but did not answer the question"
        claims = written + claims
    return Answer(
        question=question,
        answer=render_extracts(extracts, composed.views, number_of),
        mode="extractive",
        sources=[source_dict(composed.passages[p], n, shown.get(p))
                 for p, n in sorted(number_of.items(), key=lambda x: x[1])],
        notice=notice,
        verification={"status": "extractive", "claims": claims},
    )
