"""The bare llama.cpp decode loop ``bench_generate.py`` compares the engine with.

Tokenize, ``llama_decode`` one token at a time, greedy ``llama_sampler_sample``,
``llama_token_to_piece``: nothing the engine adds (prefix reuse, stop
scanning, pooling). Kept beside the benchmark, apart from it, so the baseline
being measured against is easy to read in one place. Both run in the
engine's process environment (``init_backend``: same quiet logging and
OpenMP policy).
"""

from __future__ import annotations

import time
from pathlib import Path


def raw_decode(path: Path, prompt: list[int], n_tokens: int, n_ctx: int, n_threads: int) -> dict:
    """The bare llama.cpp loop the engine is compared with (same process environment as the engine)."""
    import ctypes

    from neoc_assistant.generate.llama_backend import init_backend

    ll = llama_cpp = init_backend()  # same quiet logging (and OpenMP policy) as the engine
    mp = llama_cpp.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = ll.llama_model_load_from_file(str(path).encode(), mp)
    vocab = ll.llama_model_get_vocab(model)
    cp = ll.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, 256, 256, 1
    cp.n_threads = cp.n_threads_batch = n_threads
    cp.no_perf = True
    ctx = ll.llama_init_from_model(model, cp)
    smpl = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    ll.llama_sampler_chain_add(smpl, ll.llama_sampler_init_greedy())
    buf = ctypes.create_string_buffer(256)
    t0 = time.perf_counter()
    for i in range(0, len(prompt), 256):
        chunk = prompt[i:i + 256]
        arr = (ll.llama_token * len(chunk))(*chunk)
        assert ll.llama_decode(ctx, ll.llama_batch_get_one(arr, len(chunk))) == 0
    t_prefill = time.perf_counter() - t0
    tok = ll.llama_sampler_sample(smpl, ctx, -1)
    ttft = time.perf_counter() - t0
    one = (ll.llama_token * 1)()
    t1 = time.perf_counter()
    for _ in range(n_tokens - 1):
        ll.llama_token_to_piece(vocab, tok, buf, 256, 0, False)
        one[0] = tok
        assert ll.llama_decode(ctx, ll.llama_batch_get_one(one, 1)) == 0
        tok = ll.llama_sampler_sample(smpl, ctx, -1)
    t_decode = time.perf_counter() - t1
    ll.llama_sampler_free(smpl)
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    return {"prefill_tps": len(prompt) / t_prefill, "ttft_s": ttft, "decode_tps": (n_tokens - 1) / t_decode}


class RawLoop:
    """The same bare loop as ``raw_decode``, steppable, for interleaving with the engine."""

    def __init__(self, path: Path, prompt: list[int], n_ctx: int, n_threads: int):
        import ctypes

        from neoc_assistant.generate.llama_backend import init_backend

        ll = self.ll = init_backend()
        mp = ll.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = ll.llama_model_load_from_file(str(path).encode(), mp)
        self.vocab = ll.llama_model_get_vocab(self.model)
        cp = ll.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, 256, 256, 1
        cp.n_threads = cp.n_threads_batch = n_threads
        cp.no_perf = True
        self.ctx = ll.llama_init_from_model(self.model, cp)
        self.smpl = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        ll.llama_sampler_chain_add(self.smpl, ll.llama_sampler_init_greedy())
        self.buf = ctypes.create_string_buffer(256)
        self.one = (ll.llama_token * 1)()
        for i in range(0, len(prompt), 256):
            chunk = prompt[i:i + 256]
            arr = (ll.llama_token * len(chunk))(*chunk)
            assert ll.llama_decode(self.ctx, ll.llama_batch_get_one(arr, len(chunk))) == 0
        self.tok = ll.llama_sampler_sample(self.smpl, self.ctx, -1)

    def step(self, n: int) -> None:
        ll, ctx, smpl, one, buf, vocab = self.ll, self.ctx, self.smpl, self.one, self.buf, self.vocab
        tok = self.tok
        for _ in range(n):
            ll.llama_token_to_piece(vocab, tok, buf, 256, 0, False)
            one[0] = tok
            assert ll.llama_decode(ctx, ll.llama_batch_get_one(one, 1)) == 0
            tok = ll.llama_sampler_sample(smpl, ctx, -1)
        self.tok = tok

    def close(self) -> None:
        self.ll.llama_sampler_free(self.smpl)
        self.ll.llama_free(self.ctx)
        self.ll.llama_model_free(self.model)
