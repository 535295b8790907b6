"""Claim-against-passage support with the real embedding model and the shipped thresholds: facts
first, then the wording; a compound claim clause by clause; an entailment gate when one is set."""

from __future__ import annotations

import numpy as np
import pytest

from neoc_assistant.settings import Settings
from neoc_assistant.verify.support import SupportChecker, SupportThresholds, claim_core

PASSAGE = ("# Water\nEach person needs at least 15 litres of water per day. Toilets: 1 toilet per 50 people.\n\n"
           "Do not drink water from flooded wells.")


@pytest.fixture(scope="module")
def checker(embedder):
    return SupportChecker(embedder, SupportThresholds.from_settings(Settings().verification))


@pytest.fixture(scope="module")
def view(checker):
    return checker.prepare([PASSAGE])[0]


def _check(checker, view, claim, **kw):
    return checker.check(claim, checker.encoder.encode([claim])[0], view, **kw)


@pytest.mark.parametrize("claim", [
    "Each person needs at least 15 litres of water per day.",
    "People need 15 litres of water daily.",  # reworded
    "According to the documents, each person needs at least 15 litres of water per day.",
    "Each person needs 15 litres of water per day, and 1 toilet per 50 people.",  # compound, both clauses there
])
def test_what_the_passage_says_is_supported(checker, view, claim):
    assert _check(checker, view, claim).supported


def test_a_figure_the_passage_does_not_give_is_missing(checker, view):
    support = _check(checker, view, "Each person needs at least 20 litres of water per day.")
    assert not support.supported and support.missing == ["20 l"]
    assert support.coverage == 1.0  # every word is there: the figure alone decides


def test_a_number_the_officer_typed_is_theirs(checker, view):
    claim = "Each person needs at least 20 litres of water per day."
    assert _check(checker, view, claim, allowed_numbers={"20"}).missing == []


def test_a_compound_claim_is_checked_clause_by_clause(checker, view):
    support = _check(checker, view, "Each person needs 15 litres of water per day, and 1 toilet per 20 people.")
    assert not support.supported and len(support.parts) == 2 and support.missing == ["20 people"]


def test_the_opposite_and_the_off_topic_are_not_supported(checker, view):
    negated = _check(checker, view, "Drink water from flooded wells.")
    assert not negated.supported and negated.conflict == "negation"
    off_topic = _check(checker, view, "The cafeteria opens at noon.")
    assert not off_topic.supported and off_topic.coverage == 0.0


def test_attribution_is_not_content():
    assert claim_core("According to the documents, boats are at the depot.") == "boats are at the depot."
    assert claim_core("The answer to this question is: - Boats are at the depot.") == "Boats are at the depot."


class Entailment:
    def __init__(self, probability: float):
        self.probability, self.calls = probability, []

    def entailment(self, premises, hypotheses):
        self.calls.append((list(premises), list(hypotheses)))
        return np.full(len(premises), self.probability)


def test_with_an_entailment_model_the_best_statement_must_entail_the_claim(embedder):
    thresholds = SupportThresholds.from_settings(Settings().verification)
    claim = "Each person needs at least 15 litres of water per day."
    for probability, supported in ((0.9, True), (0.2, False)):
        scorer = Entailment(probability)
        checker = SupportChecker(embedder, thresholds, scorer)
        support = _check(checker, checker.prepare([PASSAGE])[0], claim)
        assert support.supported is supported and support.entailment == pytest.approx(probability)
        (premises, hypotheses), = scorer.calls  # one call: the best statement, read with its heading
        assert hypotheses == [claim] and premises[0].endswith(": " + claim) and "Water" in premises[0]
