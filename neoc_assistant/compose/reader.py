"""The reader: which extracts of the found passages answer the question - or that none does.

The relevance floor (``retrieve/``) measures topic; the reader measures *answer*. It ranks the
extracts of the passages (``extracts.py``) and composes the shown answer from the best one, plus a
second one only when it adds question words the first lacks (the toilet ratio *and* the
per-person figure live in two rows of one table, or two passages). It answers "none" when

* the question asks for a kind of thing - a figure, a time, a person, a contact, a form
  (``reading/asks.py``) - and no extract supplies it ("How many doses of oral cholera vaccine...":
  the passages discuss vaccination campaigns but give no dose count), or
* the best extract covers less than ``min_coverage`` of the question's IDF-weighted content words
  (it is about something else: "What overtime rate applies to county employees staffing the EOC?"
  against passages about who directs the EOC).

A question that asks for steps gets the whole list its best extract belongs to (up to
``max_list_items``): "what do I do" answered with three of seven steps is a dangerous answer.
The thresholds were chosen on the tune splits of the reader sets (``scripts/eval_reader.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neoc_assistant.compose.extracts import Extract, ExtractScorer, ExtractWeights
from neoc_assistant.reading.asks import Ask
from neoc_assistant.reading.weights import QuestionWeights
from neoc_assistant.verify.support import PassageView


@dataclass(frozen=True)
class ReaderRules:
    weights: ExtractWeights = field(default_factory=ExtractWeights)
    min_coverage: float = 0.3
    second_margin: float = 0.15
    max_extracts: int = 2
    max_list_items: int = 8
    max_block: int = 0  # show the whole paragraph/list/table of the best extract when it is this short
    second_from_other_passage: bool = False  # a close second from another passage is shown even if it adds no question word


@dataclass
class Composition:
    """What the reader chose: ``extracts`` in the order they are shown; ``candidates`` the ranked
    alternatives it chose from (a model reader re-chooses among them)."""

    extracts: list[Extract]
    answers: bool
    missing: str = ""  # what no extract gives (for the not-found message)
    candidates: list[Extract] = field(default_factory=list)
    best_coverage: float = 0.0


class Reader:
    def __init__(self, rules: ReaderRules):
        self.rules = rules

    def scorer(self, question: str, question_vector: np.ndarray, ask: Ask, views: list[PassageView],
               words: QuestionWeights | None = None, names: tuple[str, ...] = ()) -> ExtractScorer:
        return ExtractScorer(question, question_vector, ask, views, self.rules.weights, words, names)

    def compose(self, scorer: ExtractScorer, min_coverage: float | None = None) -> Composition:
        """``min_coverage`` overrides the rule's (passages below the relevance floor need more)."""
        rules = self.rules
        floor = rules.min_coverage if min_coverage is None else min_coverage
        candidates = scorer.candidates()
        if not candidates:
            return Composition([], False, "an answer", candidates)
        ask = scorer.ask
        pool = [c for c in candidates if c.supplies] if ask.constrains or scorer.names else candidates
        if not pool:
            named = [c for c in candidates if scorer.names <= scorer.stems_of(c)]
            missing = ask.describe() if named or not scorer.names else \
                "anything about " + " or ".join(f"'{n.title()}'" for n in scorer.name_words)
            return Composition([], False, missing, candidates, candidates[0].coverage)
        best = pool[0]
        if best.coverage < floor:
            return Composition([], False, "", candidates, best.coverage)
        best = self._with_what_follows(scorer, self._whole_block(scorer, best, ask.kind == "steps"))
        chosen = [best]
        covered = set(best.covered)
        for cand in pool[1:]:
            if len(chosen) >= rules.max_extracts or cand.score < best.score - rules.second_margin:
                break
            if any(cand.overlaps(c) or _same_text(scorer, cand, c) for c in chosen):
                continue
            other_passage = all(cand.passage != c.passage for c in chosen)
            if not (cand.covered - covered) and not (rules.second_from_other_passage and other_passage):
                continue
            chosen.append(cand)
            covered |= cand.covered
        return Composition(self.in_reading_order(chosen), True, "", candidates, best.coverage)

    def choose(self, scorer: ExtractScorer, picked: list[Extract], candidates: list[Extract]) -> Composition:
        """A composition from extracts someone else picked among ``candidates`` (the model reader)."""
        if not picked:
            return Composition([], False, "", candidates)
        picked = [self._whole_block(scorer, picked[0], scorer.ask.kind == "steps")] + picked[1:]
        distinct: list[Extract] = []
        for e in picked:
            if not any(e.overlaps(d) for d in distinct):
                distinct.append(e)
        return Composition(self.in_reading_order(distinct[: self.rules.max_extracts]), True, "", candidates,
                           max(e.coverage for e in distinct))

    def _whole_block(self, scorer: ExtractScorer, extract: Extract, steps: bool) -> Extract:
        """The whole paragraph, list or table the extract belongs to, when it is short (``max_block``)
        or when the question asks for steps and it is a list (``max_list_items``)."""
        view = scorer.views[extract.passage]
        block = view.statements[extract.statements[0]].block
        members = tuple(i for i, st in enumerate(view.statements) if st.block == block)
        is_list = view.statements[members[0]].kind == "item"
        limit = max(self.rules.max_block, self.rules.max_list_items if steps and is_list else 0)
        if members == extract.statements or len(members) > limit:
            return extract
        whole = scorer.measure(extract.passage, members)
        return whole if whole.supplies or not extract.supplies else extract

    def _with_what_follows(self, scorer: ExtractScorer, extract: Extract) -> Extract:
        """An extract that ends on a lead-in ("Main signs of shock:") promises what comes next: the
        statements after it, up to the end of their block (``max_list_items``). Why: on the FEMA PDFs
        the lead-in is often the best-scoring line (it repeats the question's words) while the signs
        themselves are the answer."""
        view = scorer.views[extract.passage]
        last = extract.statements[-1]
        if not view.statements[last].text.rstrip().endswith(":") or last + 1 >= len(view.statements):
            return extract
        block = view.statements[last + 1].block
        follow = [i for i in range(last + 1, len(view.statements)) if view.statements[i].block == block]
        follow = [i for i in follow if i not in extract.statements][: self.rules.max_list_items]
        return scorer.measure(extract.passage, tuple(sorted(set(extract.statements) | set(follow))))

    @staticmethod
    def in_reading_order(extracts: list[Extract]) -> list[Extract]:
        """Best passage first; within a passage, document order (a table read top to bottom)."""
        first_rank = {}
        for rank, e in enumerate(extracts):
            first_rank.setdefault(e.passage, rank)
        return sorted(extracts, key=lambda e: (first_rank[e.passage], e.statements[0]))


def _same_text(scorer: ExtractScorer, a: Extract, b: Extract) -> bool:
    """Overlapping chunks hold the same statements: an extract of the next chunk that repeats one
    already chosen adds nothing."""
    texts = {scorer.views[b.passage].statements[i].text for i in b.statements}
    return any(scorer.views[a.passage].statements[i].text in texts for i in a.statements)
