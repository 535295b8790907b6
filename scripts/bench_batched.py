#!/usr/bin/env python
"""Aggregate decode tokens/s when several sequences share one llama_decode, and prefill speed, per model.

Usage::

    python scripts/bench_batched.py [--models smollm2-135m,smollm2-135m-q4_0,gemma3-270m] [--threads 2]
        [--seqs 1,4,8] [--prompt-tokens 256] [--gen-tokens 64]

The raw llama.cpp low-level API, no engine in between: one context with
``n_seq_max`` = the largest batch, the prompt evaluated once and copied to the
other sequences (``llama_memory_seq_cp``), then one token per sequence per
``llama_decode`` (greedy). ``smollm2-135m-q4_0`` is the shipped Q4_1 file
requantized to Q4_0 with ``llama_model_quantize`` (made once, cached beside
it). Prints the table and one JSON line.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant.generate.model_install import install  # noqa: E402
from neoc_assistant.generate.quantize import quantize  # noqa: E402

CACHE = Path.home() / ".cache/neoc-assistant/models"


def model_file(key: str) -> Path:
    if key.endswith("-q4_0"):
        base = install(key[: -len("-q4_0")], CACHE)
        target = base.with_name(base.stem.split(".")[0] + ".Q4_0.gguf")
        return target if target.is_file() else quantize(base, target, "Q4_0")
    return install(key, CACHE)


def measure(path: Path, seqs: list[int], threads: int, prompt_tokens: int, gen_tokens: int) -> dict:
    import llama_cpp as ll

    ll.llama_backend_init()
    mparams = ll.llama_model_default_params()
    model = ll.llama_model_load_from_file(str(path).encode(), mparams)
    vocab = ll.llama_model_get_vocab(model)
    n_seq_max = max(seqs)
    cparams = ll.llama_context_default_params()
    cparams.n_ctx = n_seq_max * (prompt_tokens + gen_tokens + 16)
    cparams.n_batch = cparams.n_ubatch = max(512, prompt_tokens)
    cparams.n_seq_max = n_seq_max
    cparams.n_threads = cparams.n_threads_batch = threads
    cparams.no_perf = True
    ctx = ll.llama_init_from_model(model, cparams)
    mem = ll.llama_get_memory(ctx)

    text = (ROOT / "knowledge_base/03-flood-response-sop.md").read_text() * 3
    data = text.encode()
    buf = (ll.llama_token * (len(data) + 8))()
    n = ll.llama_tokenize(vocab, data, len(data), buf, len(data) + 8, True, False)
    prompt = list(buf[:prompt_tokens]) if n >= prompt_tokens else list(buf[:n])
    batch = ll.llama_batch_init(max(len(prompt), n_seq_max), 0, 1)

    def fill(tokens_pos_seq: list[tuple[int, int, int]], logits_last_only: bool) -> None:
        for i, (tok, pos, seq) in enumerate(tokens_pos_seq):
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = 1 if (not logits_last_only or i == len(tokens_pos_seq) - 1) else 0
        batch.n_tokens = len(tokens_pos_seq)

    # prefill speed: the prompt in one sequence, twice (the first warms the repacked weights)
    prefill = []
    for _ in range(2):
        ll.llama_memory_clear(mem, True)
        fill([(t, p, 0) for p, t in enumerate(prompt)], True)
        t0 = time.perf_counter()
        assert ll.llama_decode(ctx, batch) == 0
        prefill.append(len(prompt) / (time.perf_counter() - t0))

    result = {"prefill_tok_s": round(max(prefill), 1)}
    for n_seqs in seqs:
        ll.llama_memory_clear(mem, True)
        fill([(t, p, 0) for p, t in enumerate(prompt)], True)
        assert ll.llama_decode(ctx, batch) == 0
        for s in range(1, n_seqs):
            ll.llama_memory_seq_cp(mem, 0, s, -1, -1)
        samplers = []
        for _ in range(n_seqs):
            chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
            samplers.append(chain)
        first = ll.llama_sampler_sample(samplers[0], ctx, -1)
        current = [first] * n_seqs
        pos = len(prompt)
        t0 = time.perf_counter()
        for _ in range(gen_tokens):
            fill([(current[s], pos, s) for s in range(n_seqs)], False)
            assert ll.llama_decode(ctx, batch) == 0
            current = [ll.llama_sampler_sample(samplers[s], ctx, s) for s in range(n_seqs)]
            pos += 1
        elapsed = time.perf_counter() - t0
        result[f"decode_{n_seqs}_tok_s"] = round(n_seqs * gen_tokens / elapsed, 1)
        for chain in samplers:
            ll.llama_sampler_free(chain)
    ll.llama_batch_free(batch)
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2-135m,smollm2-135m-q4_0,gemma3-270m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seqs", default="1,4,8")
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--gen-tokens", type=int, default=64)
    args = ap.parse_args(argv)
    seqs = [int(x) for x in args.seqs.split(",")]
    rows = {}
    for key in args.models.split(","):
        path = model_file(key)
        rows[key] = measure(path, seqs, args.threads, args.prompt_tokens, args.gen_tokens)
        rows[key]["file"] = path.name
    head = "| model (file) | " + " | ".join(f"{n} seq" for n in seqs) + " | prefill |"
    print(head)
    print("|" + "---|" * (len(seqs) + 2))
    for key, r in rows.items():
        print(f"| {key} ({r['file']}) | " + " | ".join(str(r[f'decode_{n}_tok_s']) for n in seqs)
              + f" | {r['prefill_tok_s']} tok/s |")
    for key, r in rows.items():
        base = r[f"decode_{seqs[0]}_tok_s"]
        print(f"{key}: " + ", ".join(f"{n} seqs = {r[f'decode_{n}_tok_s'] / base:.2f}x" for n in seqs[1:]))
    print(json.dumps({"threads": args.threads, "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
                      "results": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
