"""The llama.cpp sampler chain for factual answers.

Defaults favour copying the passages faithfully: greedy decoding
(``temperature`` 0), a mild repetition penalty over the last 64 tokens, and
the DRY ("don't repeat yourself") sampler, which penalises extending a
sequence that already occurred - the loop "Level 1: ... Level 46:" of a small
model. DRY's sequence breakers (newline, colon, quotes, asterisk) keep list
layouts and "Level 2: Partial Activation"-style labels legal. These are
llama.cpp's own samplers (``llama_sampler_init_penalties``,
``llama_sampler_init_dry``), used as llama.cpp's server uses them.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

_TOP_K = 40
_TOP_P = 0.95
DRY_BREAKERS = ("\n", ":", "\"", "*")


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    dry_multiplier: float = 0.8
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = -1  # -1 = the whole context
    seed: int = 1234
    # A GBNF grammar the output must follow (llama.cpp's grammar sampler): the model reader's choice
    # of extract letters, which can then only be letters the reader offered.
    grammar: str | None = None


def build_sampler(ll, vocab, n_vocab: int, params: SamplingParams):
    """A new sampler chain (caller frees it with ``llama_sampler_free``).

    Signatures are those of the llama.cpp vendored by llama-cpp-python 0.3.36
    (``penalties`` still takes ``n_vocab``; ``dry`` takes no ``n_ctx_train``)."""
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    add = ll.llama_sampler_chain_add
    if params.grammar:
        add(chain, ll.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root"))
    if params.repeat_penalty and params.repeat_penalty != 1.0:
        add(chain, ll.llama_sampler_init_penalties(n_vocab, params.repeat_last_n, params.repeat_penalty, 0.0, 0.0))
    if params.dry_multiplier > 0:
        breakers = [b.encode() for b in DRY_BREAKERS]
        arr = (ctypes.c_char_p * len(breakers))(*breakers)
        add(chain, ll.llama_sampler_init_dry(vocab, params.dry_multiplier, params.dry_base,
                                             params.dry_allowed_length, params.dry_last_n, arr, len(breakers)))
    if params.temperature <= 0:
        add(chain, ll.llama_sampler_init_greedy())
    else:
        add(chain, ll.llama_sampler_init_top_k(_TOP_K))
        add(chain, ll.llama_sampler_init_top_p(_TOP_P, 1))
        add(chain, ll.llama_sampler_init_temp(params.temperature))
        add(chain, ll.llama_sampler_init_dist(params.seed & 0xFFFFFFFF))
    return chain
