#!/usr/bin/env python
"""Write a random-weight, llama-architecture GGUF chat model for tests and benchmarks.

Why: the test-suite and ``bench_generate.py`` need a real GGUF that the real
llama.cpp loads and runs, with real compute and memory costs, but nothing may
be downloaded. Random weights give noise tokens (expected); the shapes, the
tokenizer size, the quantization and the chat template are what matter.

What is written:
* a GPT-2/Qwen-style byte-level BPE tokenizer: the 256 byte symbols, a few
  hundred/thousand merges learned from a small built-in English text (so
  prompts tokenize to a realistic ~4 characters per token), filler word tokens
  up to the requested vocabulary size (151936 for the Qwen shapes), and the
  ChatML control tokens ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``;
* a ChatML Jinja template in ``tokenizer.chat_template`` (overridable, or
  omitted with ``chat_template=None`` to exercise the fallback);
* tied embeddings, like Qwen2.5 0.5B/1.5B. The rows of the control tokens are
  zero, so their logit is exactly 0 while ordinary tokens reach +2..3: the
  model never emits end-of-generation and can produce arbitrarily long
  outputs (cancellation tests, throughput benchmarks);
* F16 weights, then (default) ``llama_model_quantize`` to Q4_K_M.

The reusable function lives here, not in ``neoc_assistant`` (product code
stays free of test tooling); tests and the bench import this file by path
(see ``tests/generate_fixtures.py``).

    python scripts/make_test_model.py --preset tiny --out /tmp/tiny.gguf
    python scripts/make_test_model.py --preset qwen1.5b --out bench-output/models/qwen1.5b-shape-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


@dataclass(frozen=True)
class Dims:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    merges: int  # BPE merges learned from the built-in corpus
    context_length: int = 32768


PRESETS: dict[str, Dims] = {
    "tiny": Dims(hidden=256, layers=2, heads=4, kv_heads=2, ffn=512, vocab=2048, merges=900),
    "qwen0.5b": Dims(hidden=896, layers=24, heads=14, kv_heads=2, ffn=4864, vocab=151936, merges=3000),
    "qwen1.5b": Dims(hidden=1536, layers=28, heads=12, kv_heads=2, ffn=8960, vocab=151936, merges=3000),
}

# A small English corpus in the domain, so common words are single tokens.
_CORPUS = """
The National Emergency Operations Centre coordinates the response to floods, cyclones, earthquakes,
landslides, wildfires, droughts, epidemics and industrial accidents. The duty officer on shift keeps
the situation report up to date, logs every request for assistance, and escalates to the director
when a threshold in the standard operating procedure is reached. Evacuation orders are issued by the
district authority after consultation with the meteorological service and the police. Shelters must
have water, sanitation, lighting, first aid and a registration desk. Each shelter manager reports the
number of people, vulnerable persons, and needs every six hours. Logistics teams track stocks of food,
tents, blankets, hygiene kits, fuel and generators in the warehouse. Search and rescue teams are
deployed with radios and satellite phones; the communication plan lists the frequencies and call
signs. When the river level at the gauge rises above the warning line, the centre activates level two
and informs the communities downstream by SMS, radio and sirens. The health cluster monitors cholera,
dengue and malaria cases, and the water cluster tests wells after the flood. Damage and needs
assessment forms are collected within seventy-two hours. The public information officer prepares
press releases; rumours are checked before they are answered. Volunteers receive a briefing on safety,
code of conduct and reporting lines. Contact numbers: operations desk, logistics, health, police,
fire brigade, Red Cross, army liaison, airport, port authority, power company, telecom operator.
Question: what is the procedure for opening a shelter? Answer: the shelter is opened by the district
coordinator after the building has been inspected, the register is ready and the manager is named.
The mission of the centre is to save lives, reduce suffering, protect property and restore services
as quickly as possible, working with government ministries, local councils, humanitarian partners,
the private sector and the affected people themselves. Temperatures reached 45 °C during the heatwave;
rainfall of 320 mm in 24 hours was recorded at the station. Résumé, café, naïve: accents appear too.
You are a helpful assistant. Answer the user's questions only from the numbered passages of the documents
given in the message; do not use outside knowledge. After each statement, cite the passage it comes from.
If the passages do not contain the answer, say so plainly and do not guess. Be brief and practical: give
steps, figures, names and contact numbers exactly as written. Never invent sources. Rules, national,
their, own, which, where, when, who, how, many, much, must, should, could, would, first, next, then, last.
"""


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte-level mapping: every byte to a printable unicode symbol."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _pretokenize(text: str) -> list[str]:
    # Close to the GPT-2/Qwen pre-tokenizer: merges never cross these pieces,
    # so every merged token is reachable by llama.cpp's own pre-tokenizer.
    return re.findall(r" ?[A-Za-zÀ-ÿ]+| ?[0-9]| ?[^\sA-Za-z0-9À-ÿ]+|\s+", text)


def build_vocab(dims: Dims) -> tuple[list[str], list[int], list[str]]:
    """Return (tokens, token_types, merges) for a byte-level BPE of ``dims.vocab`` entries."""
    b2u = bytes_to_unicode()
    tokens: list[str] = [b2u[b] for b in sorted(b2u)]
    seen = set(tokens)
    words = collections.Counter(
        tuple(b2u[b] for b in piece.encode("utf-8")) for piece in _pretokenize(_CORPUS)
    )
    n_free = dims.vocab - len(SPECIAL_TOKENS) - len(tokens)
    merges: list[str] = []
    for _ in range(min(dims.merges, max(n_free, 0))):
        pairs: collections.Counter = collections.Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        # most frequent pair first; pairs seen once still merge (up to dims.merges) so every
        # corpus word ends up a single token, as in a real tokenizer trained on much more text
        (a, b), freq = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merged = a + b
        merges.append(f"{a} {b}")
        if merged not in seen:
            tokens.append(merged)
            seen.add(merged)
        new_words: collections.Counter = collections.Counter()
        for word, f in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += f
        words = new_words
    # Filler "words" (space + 2-4 lowercase letters): only ever produced by
    # sampling, and they decode to plain ASCII text.
    letters = "abcdefghijklmnopqrstuvwxyz"
    space = b2u[ord(" ")]

    def fillers():
        for length in (2, 3, 4, 5):
            idx = [0] * length
            while True:
                yield space + "".join(letters[i] for i in idx)
                for pos in range(length - 1, -1, -1):
                    idx[pos] += 1
                    if idx[pos] < len(letters):
                        break
                    idx[pos] = 0
                else:
                    break

    gen = fillers()
    while len(tokens) < dims.vocab - len(SPECIAL_TOKENS):
        tok = next(gen)
        if tok not in seen:
            tokens.append(tok)
            seen.add(tok)
    tokens.extend(SPECIAL_TOKENS)
    types = [1] * (len(tokens) - len(SPECIAL_TOKENS)) + [3] * len(SPECIAL_TOKENS)
    return tokens, types, merges


def _tensor_plan(dims: Dims) -> list[tuple[str, tuple[int, ...]]]:
    """(name, numpy shape) in file order. Numpy shape is (rows=out, cols=in)."""
    hd = dims.hidden // dims.heads
    plan = [("token_embd.weight", (dims.vocab, dims.hidden))]
    for i in range(dims.layers):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (dims.hidden,)),
            (p + "attn_q.weight", (dims.heads * hd, dims.hidden)),
            (p + "attn_k.weight", (dims.kv_heads * hd, dims.hidden)),
            (p + "attn_v.weight", (dims.kv_heads * hd, dims.hidden)),
            (p + "attn_output.weight", (dims.hidden, dims.heads * hd)),
            (p + "ffn_norm.weight", (dims.hidden,)),
            (p + "ffn_gate.weight", (dims.ffn, dims.hidden)),
            (p + "ffn_up.weight", (dims.ffn, dims.hidden)),
            (p + "ffn_down.weight", (dims.hidden, dims.ffn)),
        ]
    plan.append(("output_norm.weight", (dims.hidden,)))
    return plan


def write_f16_gguf(path: Path, dims: Dims, *, seed: int = 0, chat_template: str | None = CHATML_TEMPLATE,
                   name: str = "neoc-test-model") -> None:
    """Stream a random-weight F16 GGUF to ``path`` (one tensor in memory at a time)."""
    import gguf

    if dims.hidden % dims.heads or dims.heads % dims.kv_heads:
        raise ValueError("hidden must be divisible by heads, heads by kv_heads")
    tokens, types, merges = build_vocab(dims)
    special = {t: tokens.index(t) for t in SPECIAL_TOKENS}
    hd = dims.hidden // dims.heads

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(dims.context_length)
    w.add_embedding_length(dims.hidden)
    w.add_block_count(dims.layers)
    w.add_feed_forward_length(dims.ffn)
    w.add_head_count(dims.heads)
    w.add_head_count_kv(dims.kv_heads)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(dims.vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(special["<|endoftext|>"])
    w.add_eos_token_id(special["<|im_end|>"])
    w.add_pad_token_id(special["<|endoftext|>"])
    w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    plan = _tensor_plan(dims)
    for tname, shape in plan:
        dtype = np.float32 if len(shape) == 1 else np.float16
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(tname, shape, np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(seed)
    special_rows = np.array(sorted(special.values()))
    for tname, shape in plan:
        if len(shape) == 1:
            arr = np.ones(shape, dtype=np.float32)
        else:
            # Rows in chunks so the 1.5B shape never holds >1 tensor in float32.
            arr = np.empty(shape, dtype=np.float16)
            step = max(1, (1 << 24) // shape[1])
            for r in range(0, shape[0], step):
                arr[r:r + step] = (rng.standard_normal((min(step, shape[0] - r), shape[1]), dtype=np.float32) * 0.02)
            if tname == "token_embd.weight":
                arr[special_rows] = 0  # tied output: control tokens get logit 0 -> never sampled
        w.write_tensor_data(arr)
        del arr
    w.close()


def quantize_gguf(src: Path, dst: Path, ftype: str = "Q4_K_M", nthread: int = 0) -> None:
    """``llama_model_quantize`` src -> dst (llama.cpp's own quantizer, quietly)."""
    import ctypes

    import llama_cpp

    _quiet_llama_logs()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.nthread = nthread
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed with code {rc}")


_LOG_CB = None


def _quiet_llama_logs() -> None:
    global _LOG_CB
    if _LOG_CB is None:
        import ctypes

        import llama_cpp

        @llama_cpp.llama_log_callback
        def _cb(level, text, user_data):  # noqa: ARG001
            return None

        _LOG_CB = _cb
        llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


def make_test_model(path: str | os.PathLike, preset: str = "tiny", quantize: str = "Q4_K_M", *,
                    seed: int = 0, chat_template: str | None = CHATML_TEMPLATE, overwrite: bool = False,
                    **dims_override) -> Path:
    """Build (or reuse, if present) a test model at ``path``; returns the path.

    ``dims_override`` may set any ``Dims`` field (hidden, layers, heads,
    kv_heads, ffn, vocab, merges, context_length). ``quantize`` is a llama.cpp
    ftype suffix (``Q4_K_M``, ``Q8_0``...) or ``none`` to keep F16.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        return path
    dims = replace(PRESETS[preset], **{k: v for k, v in dims_override.items() if v is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    if quantize.lower() == "none":
        tmp = path.with_suffix(".tmp-f16.gguf")
        write_f16_gguf(tmp, dims, seed=seed, chat_template=chat_template)
        os.replace(tmp, path)
        return path
    with tempfile.TemporaryDirectory(dir=path.parent) as td:
        f16 = Path(td) / "f16.gguf"
        write_f16_gguf(f16, dims, seed=seed, chat_template=chat_template)
        out = Path(td) / "q.gguf"
        quantize_gguf(f16, out, quantize)
        os.replace(out, path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--quantize", default="Q4_K_M", help="Q4_K_M (default), Q8_0, ... or none (F16)")
    ap.add_argument("--seed", type=int, default=0)
    for field in ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab", "merges", "context_length"):
        ap.add_argument(f"--{field.replace('_', '-')}", type=int, default=None, dest=field)
    ap.add_argument("--no-chat-template", action="store_true", help="Omit tokenizer.chat_template.")
    ap.add_argument("--force", action="store_true", help="Overwrite an existing file.")
    args = ap.parse_args(argv)
    overrides = {f: getattr(args, f) for f in ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab", "merges", "context_length")}
    t0 = time.perf_counter()
    dims = replace(PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None})
    out = make_test_model(args.out, args.preset, args.quantize, seed=args.seed,
                          chat_template=None if args.no_chat_template else CHATML_TEMPLATE,
                          overwrite=args.force, **overrides)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB, {asdict(dims)}, {args.quantize}) in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
