"""The model reader can only answer with a choice it was offered (llama.cpp grammar), on both engines."""

from __future__ import annotations

import re

import pytest
from generate_fixtures import make_engine, messages, smollm2, tiny_model  # noqa: F401

from neoc_assistant.compose.extracts import Extract
from neoc_assistant.compose.model_choice import grammar_for, parse_choice

VALID = re.compile(r"^(?:none|[ABC](?:,[ABC])?)$")


@pytest.mark.parametrize("batching", [True, False])
def test_random_weights_under_the_grammar_still_give_a_valid_choice(make_engine, tiny_model, batching):
    # a random-weight model writes noise; only the grammar can make its output a valid choice
    engine = make_engine(tiny_model, batching=batching, n_ctx=512, max_tokens=6)
    free = engine.generate(messages("Which of A, B or C?"), max_tokens=6)
    assert not VALID.match(free.strip()), free
    for n, question in enumerate(["Which of A, B or C?", "Pick one", "water per person", "who approves", "x"]):
        text = engine.generate(messages(question), max_tokens=6, grammar=grammar_for(3))
        assert VALID.match(text), (question, text)
    # the same slot answers freely again afterwards (the grammar belonged to that answer only)
    assert not VALID.match(engine.generate(messages("Which of A, B or C?"), max_tokens=6).strip())


def test_a_real_model_picks_under_the_grammar(make_engine, smollm2):
    engine = make_engine(smollm2, batching=True, n_ctx=1024, max_tokens=6)
    prompt = [{"role": "system", "content": "Reply with the letter of the extract that answers, or none."},
              {"role": "user", "content": "Question: How much water per person per day?\n\nExtracts:\n"
               "A) Shelters open at 18:00.\nB) 15 litres per person per day.\nC) Toilets: 1 per 50 people."}]
    text = engine.generate(prompt, max_tokens=6, grammar=grammar_for(3))
    assert VALID.match(text), text


def test_parsing_a_choice():
    offered = [Extract(0, (1,)), Extract(0, (4, 5)), Extract(2, (0,))]
    assert parse_choice("B", offered) == [offered[1]]
    assert parse_choice("C,A", offered) == [offered[2], offered[0]]
    assert parse_choice("none", offered) == []
    assert parse_choice("D", offered) is None and parse_choice("The answer is B", offered) is None
    assert grammar_for(2).endswith("L ::= [AB]\n")
